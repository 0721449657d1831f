"""Interpret a review with an instruction LLM: sentiment, rating, the aspects judged (with the words
that say so), the emotions expressed and a one-sentence summary, as one JSON object.

The answer is generated under a JSON schema (:func:`answer_schema`, enforced token by token by
:mod:`imdb_sentiment.generation`), so it always parses and only uses the configured aspect and
emotion names. By default each ``quote`` is chosen by the grammar from the review's own clauses
(:func:`review_clauses`), so it is verbatim and the page can highlight it; with ``quotes = "free"``
the model writes quotes and those not found in the review are marked ``verbatim: false``.

When a classifier is given, the headline sentiment and its score are the classifier's and the LLM
is asked to explain that verdict (the schema fixes ``sentiment``); ``sources`` says which model
gave which field. The settings (prompt, aspect and emotion sets, token budgets) live in a TOML file:
``interpret.toml`` next to this module is the default.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .classifier import Classifier, Progress
from .errors import UserError
from .llm import VERBALIZER_LABELS

if TYPE_CHECKING:
    import pandas as pd

    from .config import InferenceConfig
    from .generation import Generated

DEFAULT_SETTINGS_FILE = Path(__file__).with_name("interpret.toml")
QUOTE_MODES = ("clauses", "free")
RATING_CHOICES = ("median", "likeliest")
"""How the rating is chosen from the model's distribution over the allowed ratings."""
SENTIMENTS = VERBALIZER_LABELS
RATING_RANGES = {"negative": (1, 5), "positive": (6, 10)}
"""The ratings a sentiment allows (IMDB's own split: negative reviews rate 1-4, positive 7-10)."""
ANSWER_FIELDS = ("sentiment", "rating", "aspects", "emotions", "summary")
"""The generated fields, in the order the model writes them."""
REVIEW_SLOT = "{review}"
GAP_MARK = "\n[...]\n"
"""Stands, in the prompt, for the middle of a review too long for the budget."""
DEFAULT_BATCH_SIZE = 8
"""Reviews decoded together (``--batch-size``): decoding is bound by reading the weights, which a batch
shares. Qwen2.5-Coder-0.5B on 2 CPU cores, 16 reviews, two runs each: 4.67 s/review one at a time,
2.32 in fours, 2.03 in eights."""
_CLAUSE_BREAK = re.compile(
    r"(?<=[.!?])[\"')\]]*\s+|<br\s*/?>|\n+|;\s*|\s+-{1,2}\s+|,\s+(?=(?:and|but|yet|so|although|though|while|"
    r"whereas|however|because|which)\b)", re.IGNORECASE)
_LEADING_LINK = re.compile(r"^(?:and|but|yet|so|although|though|while|whereas|however|because)\b[\s,]*",
                           re.IGNORECASE)
_SOFT_BREAK = re.compile(r",\s+|\s+(?=(?:and|but)\s)", re.IGNORECASE)
"""Where a long clause may be cut again, when both sides keep :data:`MIN_CLAUSE_WORDS` words."""
MIN_CLAUSE_WORDS = 3
_EDGE = " \t\r\n.,;:!?\"'()[]-"
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
MAX_CLAUSES = 80
"""Quote choices per review; a 512-token view of a review has about 30-50 clauses."""


# --------------------------------------------------------------------------- settings


@dataclass
class InterpretSettings:
    """What the interpreter asks for and how: the prompt, the aspect and emotion sets, the budgets."""

    system: str
    """Instructions; ``{aspects}``, ``{emotions}``, ``{max_aspects}`` and ``{emotion_scale}`` are
    filled in."""
    user: str = "Review:\n" + REVIEW_SLOT
    aspects: list[str] = field(default_factory=lambda: ["acting", "story", "other"])
    emotions: list[str] = field(default_factory=lambda: ["joy", "sadness", "neutral"])
    emotion_scale: int = 10
    max_aspects: int = 4
    quotes: str = "clauses"
    rating: str = "median"
    """``median`` of the model's distribution over the allowed ratings, or the ``likeliest`` one."""
    max_review_tokens: int = 512
    head_tokens: int | None = None
    """Of a long review's ``max_review_tokens``, how many come from its start (default a quarter)."""
    max_new_tokens: int = 384
    max_summary_chars: int = 160
    examples: list[dict[str, Any]] = field(default_factory=list)
    """Solved examples shown before each review, each a ``review`` and its ``answer`` (schema fields)."""

    def __post_init__(self) -> None:
        from .config import check_choice

        for name in ("system", "user"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise UserError(f"interpretation {name} must be non-empty text")
        if self.user.count(REVIEW_SLOT) != 1:
            raise UserError(f"the interpretation user template must contain {REVIEW_SLOT} exactly once")
        for name in ("aspects", "emotions"):
            values = getattr(self, name)
            if (not isinstance(values, list) or not values
                    or not all(isinstance(value, str) and value.strip() for value in values)):
                raise UserError(f"interpretation {name} must be a non-empty list of names, got {values!r}")
            if len(set(values)) != len(values):
                raise UserError(f"interpretation {name} has duplicates: {values!r}")
        for name, low in (("emotion_scale", 1), ("max_aspects", 0), ("max_review_tokens", 1),
                          ("max_new_tokens", 16), ("max_summary_chars", 8)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"interpretation {name} must be an integer >= {low}, got {value!r}")
        if self.head_tokens is not None and not 0 <= self.head_tokens <= self.max_review_tokens:
            raise UserError(f"interpretation head_tokens must be in [0, {self.max_review_tokens}]")
        check_choice("quotes", self.quotes, QUOTE_MODES)
        check_choice("rating", self.rating, RATING_CHOICES)
        if not isinstance(self.examples, list):
            raise UserError("interpretation examples must be a list of [[examples]] tables")
        for number, example in enumerate(self.examples, start=1):
            if (not isinstance(example, dict) or sorted(example) != ["answer", "review"]
                    or not isinstance(example["answer"], dict)):
                raise UserError(f"interpretation example {number} needs a review and an answer table")
            missing = [name for name in ANSWER_FIELDS if name not in example["answer"]]
            if missing:
                raise UserError(f"interpretation example {number}'s answer lacks {', '.join(missing)}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] = DEFAULT_SETTINGS_FILE) -> InterpretSettings:
        """Settings from a TOML (or YAML/JSON) file of these fields (``[[examples]]`` tables)."""
        from .config import settings_from_file

        return settings_from_file(cls, path)

    def instructions(self) -> str:
        """The system text with the sets and limits filled in."""
        values = {"{aspects}": ", ".join(self.aspects), "{emotions}": ", ".join(self.emotions),
                  "{max_aspects}": str(self.max_aspects), "{emotion_scale}": str(self.emotion_scale)}
        text = self.system
        for mark, value in values.items():
            text = text.replace(mark, value)
        return text


# --------------------------------------------------------------------------- the schema and the review


def answer_schema(settings: InterpretSettings, quotes: Sequence[str] | None,
                  sentiment: str | None = None) -> dict[str, Any]:
    """The JSON schema the answer is generated under. ``quotes``: the allowed quotes (clause mode) or
    None (any text). ``sentiment``: fixed by a classifier, or None (the model chooses)."""
    quote: dict[str, Any] = ({"enum": list(quotes)} if quotes else
                             {"type": "string", "minLength": 1, "maxLength": 300})
    aspect = {"type": "object", "additionalProperties": False, "required": ["aspect", "sentiment", "quote"],
              "properties": {"aspect": {"enum": list(settings.aspects)},
                             "sentiment": {"enum": list(SENTIMENTS)}, "quote": quote}}
    emotions = {"type": "object", "additionalProperties": False, "required": list(settings.emotions),
                "properties": {name: {"type": "integer", "minimum": 0, "maximum": settings.emotion_scale}
                               for name in settings.emotions}}

    def verdict(label: str) -> dict[str, Any]:
        low, high = RATING_RANGES[label]
        aspects: dict[str, Any] = {"type": "array", "items": aspect, "maxItems": settings.max_aspects}
        if quotes is not None and not quotes:
            aspects["maxItems"] = 0  # nothing to quote
        return {"type": "object", "additionalProperties": False, "required": list(ANSWER_FIELDS),
                "properties": {"sentiment": {"const": label},
                               "rating": {"type": "integer", "minimum": low, "maximum": high},
                               "aspects": aspects, "emotions": emotions,
                               "summary": {"type": "string", "minLength": 8,
                                           "maxLength": settings.max_summary_chars}}}

    if sentiment is not None:
        return verdict(sentiment)
    return {"anyOf": [verdict(label) for label in SENTIMENTS]}


def review_clauses(text: str, spans: Sequence[tuple[int, int]] = ()) -> list[str]:
    """The review's clauses within ``spans`` (default: all of it), each a verbatim part of ``text``:
    split at sentence ends, line breaks, semicolons, dashes and a comma before a conjunction, without
    a leading conjunction or edge punctuation; first occurrences, at most :data:`MAX_CLAUSES`."""
    found: list[str] = []
    for start, end in spans or [(0, len(text))]:
        for piece in (part for sentence in _CLAUSE_BREAK.split(text[start:end])
                      for part in _soft_split(sentence)):
            clause = _LEADING_LINK.sub("", piece.strip(_EDGE)).strip(_EDGE)
            if len(clause) >= 3 and any(char.isalpha() for char in clause) and clause not in found:
                found.append(clause)
    return found[:MAX_CLAUSES]


def _soft_split(sentence: str) -> list[str]:
    """``sentence`` cut at commas and before "and"/"but" where both sides have a few words, so a
    quote can point at one judgement ("the acting was wooden") rather than a whole sentence."""
    pieces, start = [], 0
    for found in _SOFT_BREAK.finditer(sentence):
        left, rest = sentence[start:found.start()], sentence[found.end():]
        if len(left.split()) >= MIN_CLAUSE_WORDS and len(rest.split()) >= MIN_CLAUSE_WORDS:
            pieces.append(left)
            start = found.end()
    return [*pieces, sentence[start:]]


@dataclass
class ReviewView:
    """What the model is shown of one review."""

    text: str
    spans: list[tuple[int, int]]
    review_tokens: int

    @property
    def truncated(self) -> bool:
        return self.spans != [(0, len(self.text))]

    def shown(self) -> str:
        """The visible parts, line breaks for ``<br />``, the gap marked."""
        return GAP_MARK.join(_BR.sub("\n", self.text[start:end]).strip() for start, end in self.spans)


def locate_quotes(text: str, aspects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each aspect with the character span of its quote in ``text`` (``start``/``end``) and
    ``verbatim``: whether the quote is in the review word for word (otherwise no span). An aspect
    or a quote already given is dropped: greedy decoding of a small model tends to repeat one."""
    located: list[dict[str, Any]] = []
    for item in aspects:
        if any(item["aspect"] == seen["aspect"] or item["quote"] == seen["quote"] for seen in located):
            continue
        start = text.find(item["quote"]) if item["quote"] else -1
        located.append({**item, "verbatim": start >= 0, "start": start if start >= 0 else None,
                        "end": start + len(item["quote"]) if start >= 0 else None})
    return located


def median_rating_token(tokenizer: Any, tokens: list[int], token_ids: np.ndarray, probabilities: np.ndarray
                        ) -> int | None:
    """Where ``tokens`` (the answer so far) end at the rating: the token that starts the median of
    the model's distribution over the ratings the sentiment allows (IMDB ratings are bimodal: the
    likeliest one is often an extreme); None elsewhere, for the likeliest token."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    if not text.endswith('"rating":'):
        return None
    label = "positive" if '"sentiment":"positive"' in text else "negative"
    low, high = RATING_RANGES[label]
    mass = np.zeros(high + 1)
    starts: dict[int, tuple[int, float]] = {}
    for token, probability in zip(token_ids.tolist(), probabilities.tolist(), strict=True):
        piece = tokenizer.decode([token]).strip()
        ratings = [r for r in range(low, high + 1) if piece and str(r).startswith(piece)]
        if len(ratings) != 1:
            return None  # a token that starts several ratings: no one rating to weigh it to
        mass[ratings[0]] += probability
        if probability > starts.get(ratings[0], (0, -1.0))[1]:
            starts[ratings[0]] = (token, probability)
    median = int(np.searchsorted(np.cumsum(mass), 0.5 * mass.sum()))
    return starts[median][0] if median in starts else None


def _median_chooser(tokenizer: Any, _: int, tokens: list[int], token_ids: np.ndarray,
                    probabilities: np.ndarray) -> int | None:
    return median_rating_token(tokenizer, tokens, token_ids, probabilities)


# --------------------------------------------------------------------------- the interpreter


class StreamClosed(Exception):
    """Stops a streamed generation whose reader has gone."""


class Interpreter:
    """An instruction LLM that explains reviews; with ``classifier``, it explains that model's verdict."""

    def __init__(self, model: Any, tokenizer: Any, settings: InterpretSettings | None = None, *,
                 classifier: Classifier | None = None, name: str = "", device: str = "cpu",
                 precision: str = "fp32", batch_size: int | None = None) -> None:
        from .generation import TorchGenerator, grammar_tokenizer

        if not getattr(tokenizer, "chat_template", None):
            raise UserError(f"{name or 'this model'} has no chat template; interpretation needs an "
                            "instruction-tuned (chat) language model")
        self.settings = settings or InterpretSettings.from_file()
        self.tokenizer = tokenizer
        self.classifier = classifier
        self.name = name
        self.device = device
        self.precision = precision
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        if self.batch_size <= 0:
            raise UserError(f"batch size must be positive, got {self.batch_size}")
        self.generator = TorchGenerator(model, tokenizer, device=device)
        self.grammar_tokenizer = grammar_tokenizer(tokenizer, self.generator.vocabulary_size)
        self._prefix, self._suffix, self._lead = self._build_prompt()
        self._check_room(model, tokenizer)
        self.generator.set_prefix(self._prefix)

    @classmethod
    def load(cls, id_or_path: str | os.PathLike[str], config: InferenceConfig | None = None, *,
             settings: InterpretSettings | str | os.PathLike[str] | None = None,
             classifier: Classifier | None = None) -> Interpreter:
        """Load an instruction LLM (a folder, a Hub id or a GGUF file, as for the prompted classifier)
        on PyTorch; ``precision`` auto is bf16 where the device has bf16 units, else fp32."""
        from .backends import check_device
        from .config import InferenceConfig
        from .llm import LLMClassifier, is_causal_lm, is_gguf, read_prompted_folder
        from .modeling import default_device, resolve_precision

        run = config or InferenceConfig()
        if run.backend not in ("auto", "torch"):
            raise UserError(f"interpretation runs on PyTorch; --backend {run.backend} does not apply")
        if not (is_gguf(id_or_path) or read_prompted_folder(id_or_path) is not None
                or is_causal_lm(id_or_path, run.trust_remote_code)):
            raise UserError(f"{id_or_path} is not a causal language model; --interpreter needs an "
                            "instruction-tuned LLM (a GGUF file, or a folder or Hub id of a *ForCausalLM)")
        device = run.device or default_device()
        check_device(device)
        precision = resolve_precision(run.precision, device)
        language_model = LLMClassifier.load(id_or_path, run.with_options(backend="torch", precision=precision,
                                                                         device=device))
        if not isinstance(settings, InterpretSettings):
            settings = InterpretSettings.from_file(settings or DEFAULT_SETTINGS_FILE)
        return cls(language_model.runner.model, language_model.tokenizer, settings, classifier=classifier,
                   name=str(id_or_path), device=device, precision=precision, batch_size=run.batch_size)

    def info(self) -> dict[str, Any]:
        return {"interpreter": self.name, "engine": f"torch {self.precision}", "device": self.device,
                "classifier": self.classifier.name if self.classifier is not None else None,
                "aspects": list(self.settings.aspects), "emotions": list(self.settings.emotions),
                "emotion_scale": self.settings.emotion_scale, "quotes": self.settings.quotes,
                "max_review_tokens": self.settings.max_review_tokens,
                "max_new_tokens": self.settings.max_new_tokens, "prompt_prefix_tokens": len(self._prefix)}

    def interpret(self, texts: Sequence[Any], progress: Progress | None = None) -> list[dict[str, Any]]:
        """One answer per review, in order; a review that cannot be interpreted gets ``error`` (and
        the rest of the batch goes on)."""
        from .tables import row_problem

        answers: list[dict[str, Any]] = [{"error": row_problem(text)} for text in texts]
        good = [i for i, answer in enumerate(answers) if answer["error"] is None]
        verdict_of = dict(zip(good, self._verdicts([texts[i] for i in good]), strict=True))
        views = {i: self.view(texts[i]) for i in good}
        order = sorted(good, key=lambda i: -views[i].review_tokens)  # similar lengths decode together
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            for i, answer in zip(rows, self._run([views[i] for i in rows],
                                                 [verdict_of[i] for i in rows]), strict=True):
                answers[i] = answer
            if progress is not None:
                progress(len(rows))
        if progress is not None and len(good) < len(texts):
            progress(len(texts) - len(good))
        return answers

    def stream(self, text: str) -> Iterator[dict[str, Any]]:
        """``{"delta": text}`` events as the answer is generated, then ``{"result": answer}``."""
        from .tables import row_problem

        problem = row_problem(text)
        if problem is not None:
            raise UserError(problem)
        verdict = self._verdicts([text])[0]
        view = self.view(text)
        events: queue.Queue[dict[str, Any] | BaseException] = queue.Queue()
        tokens: list[int] = []
        sent = [""]
        stopped = threading.Event()  # the reader went away (a closed connection): stop generating

        def heard(_: int, added: list[int]) -> None:
            if stopped.is_set():
                raise StreamClosed
            tokens.extend(added)
            decoded = self.tokenizer.decode(tokens, skip_special_tokens=True)
            if not decoded.endswith("\ufffd") and len(decoded) > len(sent[0]):  # a whole character
                events.put({"delta": decoded[len(sent[0]):]})
                sent[0] = decoded

        def work() -> None:
            try:
                events.put({"result": self._run([view], [verdict], heard)[0]})
            except StreamClosed:
                pass
            except BaseException as error:  # handed to the reader, raised there
                events.put(error)

        threading.Thread(target=work, daemon=True).start()
        try:
            while True:
                event = events.get()
                if isinstance(event, BaseException):
                    raise event
                yield event
                if "result" in event:
                    return
        finally:
            stopped.set()

    # ------------------------------------------------------------------ internals

    def _build_prompt(self) -> tuple[list[int], list[int], str]:
        from .llm import SLOT_MARK, bare_ids, render_chat

        solved = []
        for example in self.settings.examples:
            answer = {name: example["answer"][name] for name in ANSWER_FIELDS}
            solved.append((self.settings.user.replace(REVIEW_SLOT, example["review"]),
                           json.dumps(answer, ensure_ascii=False, separators=(",", ":"))))
        text = render_chat(self.tokenizer, self.settings.instructions(), solved,
                           self.settings.user.replace(REVIEW_SLOT, SLOT_MARK))
        if text.count(SLOT_MARK) != 1:
            raise UserError("the chat template does not place the user message in the prompt exactly once")
        before, after = text.split(SLOT_MARK)
        kept = before.rstrip()
        return bare_ids(self.tokenizer, kept), bare_ids(self.tokenizer, after), before[len(kept):]

    def _check_room(self, model: Any, tokenizer: Any) -> None:
        from .encoding import max_model_length

        limit = max_model_length(model.config, tokenizer)
        needed = (len(self._prefix) + len(self._suffix) + self.settings.max_review_tokens + 16
                  + self.settings.max_new_tokens)
        if needed > limit:
            raise UserError(f"the interpretation prompt ({len(self._prefix) + len(self._suffix)} tokens), "
                            f"{self.settings.max_review_tokens} review tokens and "
                            f"{self.settings.max_new_tokens} new tokens exceed this model's {limit} "
                            "positions; lower max_review_tokens or max_new_tokens")

    def view(self, text: str) -> ReviewView:
        """What the model is shown of ``text``: all of it, or its first and last tokens."""
        from .encoding import head_tail_spans

        spans, count = head_tail_spans(self.tokenizer, text, self.settings.max_review_tokens,
                                       self.settings.head_tokens)
        return ReviewView(text, spans, count)

    def _verdicts(self, texts: list[str]) -> list[tuple[str, float] | None]:
        """The classifier's label and score per review, or None per review without a classifier."""
        if self.classifier is None or not texts:
            return [None] * len(texts)
        positive = self.classifier.predict_proba(texts)[:, 1]
        return [("positive", float(p)) if p >= 0.5 else ("negative", float(1 - p)) for p in positive]

    def _run(self, views: list[ReviewView], verdicts: list[tuple[str, float] | None],
             on_step: Any = None) -> list[dict[str, Any]]:
        from .generation import Grammar
        from .llm import bare_ids

        clause_lists = [review_clauses(view.text, view.spans) if self.settings.quotes == "clauses" else None
                        for view in views]
        matchers = [Grammar(self.grammar_tokenizer, answer_schema(
            self.settings, clauses, verdict[0] if verdict else None)).matcher()
            for clauses, verdict in zip(clause_lists, verdicts, strict=True)]
        prompts = [bare_ids(self.tokenizer, self._lead + view.shown()) + self._suffix for view in views]
        chooser = None
        if self.settings.rating == "median":
            chooser = functools.partial(_median_chooser, self.tokenizer)
        generated = self.generator.generate(prompts, matchers, self.settings.max_new_tokens, on_step, chooser)
        return [self._answer(view, result, verdict)
                for view, result, verdict in zip(views, generated, verdicts, strict=True)]

    def _answer(self, view: ReviewView, result: Generated, verdict: tuple[str, float] | None
                ) -> dict[str, Any]:
        answer: dict[str, Any] = {"truncated": view.truncated, "review_tokens": view.review_tokens}
        if not result.finished:
            return {**answer, "error": result.error or "the answer did not finish"}
        raw = self.tokenizer.decode(result.tokens, skip_special_tokens=True)
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {**answer, "error": "the model's answer did not parse as JSON"}
        if verdict is None:
            label, score = parsed["sentiment"], self._word_probability(result, parsed["sentiment"])
        else:
            label, score = verdict
        sources = {name: "interpreter" for name in ANSWER_FIELDS}
        if verdict is not None:
            sources["sentiment"] = "classifier"
        return {"sentiment": label, "score": score, "rating": parsed["rating"],
                "aspects": locate_quotes(view.text, parsed["aspects"]), "emotions": parsed["emotions"],
                "summary": parsed["summary"], **answer, "sources": sources, "error": None}

    def _word_probability(self, result: Generated, word: str) -> float | None:
        """P(the chosen sentiment word) at the first free choice (where the two words part), among
        the tokens the grammar allowed there: the tokens that begin the word."""
        choice = result.first_choice
        if choice is None:
            return None
        starts = np.array([word.startswith(piece) and piece != "" for piece in
                           (self.tokenizer.decode([token]) for token in choice.token_ids.tolist())])
        return float(choice.probabilities[starts].sum())


def load_interpreter(id_or_path: str | os.PathLike[str], config: InferenceConfig | None = None, *,
                     settings: str | os.PathLike[str] | None = None, classifier: str | None = None,
                     mode: str | None = None, threshold: float | None = None) -> Interpreter:
    """An :class:`Interpreter`, with the classifier at ``classifier`` (any model ``predict`` takes,
    a hybrid with its ``mode`` and ``threshold``)."""
    from .hybrid import load_model

    headline = None
    if classifier is not None:
        headline = load_model(classifier, config, mode=mode, threshold=threshold)
    return Interpreter.load(id_or_path, config, settings=settings, classifier=headline)


INTERPRET_COLUMNS = ("label", "score", "rating", "aspects", "emotions", "summary", "truncated", "error")


def interpret_frame(interpreter: Interpreter, frame: pd.DataFrame, text_column: str = "text",
                    progress: Progress | None = None) -> pd.DataFrame:
    """``frame`` plus one column per answer field and ``error``, named as ``predict`` names its
    columns (no input column is overwritten). Aspects and emotions stay lists and objects: nested in
    JSON output, JSON text in CSV."""
    import pandas as pd

    from .tables import add_columns

    answers = interpreter.interpret(frame[text_column].tolist(), progress)
    columns: dict[str, Any] = {name: [answer.get("sentiment" if name == "label" else name)
                                      for answer in answers] for name in INTERPRET_COLUMNS}
    columns["rating"] = pd.array(columns["rating"], dtype="Int64")  # whole stars, missing where failed
    return add_columns(frame, columns)[0]
