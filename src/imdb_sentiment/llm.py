"""A prompted instruction-tuned causal language model as a sentiment classifier (zero-shot).

Each review is put into a prompt (the tokenizer's chat template when it has one, a plain template
otherwise) and the model reads it in one forward pass; P(positive) is the softmax over the
next-token logits of the two label words (the verbalizers), so no text is generated. A review
longer than the budget keeps its first and last tokens (:func:`~imdb_sentiment.encoding.cut_windows`),
like the fine-tuned models. An optional ``bias`` on the label log-odds, fitted on validation data
by :meth:`LLMClassifier.fit_bias`, recalibrates a model that leans towards one word.

A local folder whose ``config.json`` names a causal LM (``*ForCausalLM``) loads as an
:class:`LLMClassifier` wherever a model is loaded (:func:`imdb_sentiment.hybrid.load_model`).
So does a GGUF model (llama.cpp's single-file format): a ``.gguf`` file, or a folder holding one
and no ``config.json``; transformers de-quantizes its weights to full precision (this needs the
``gguf`` package, the ``llm`` extra). Its prompt settings come from ``prompt.toml`` in the folder
when there is one, else the defaults (``configs/llm-zero-shot.toml``).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .batching import batch_slices, default_batch_size, default_batch_tokens
from .classifier import Classifier, Details, Progress, check_texts
from .config import LLAMA_CPP, TRAIN_TRUNCATIONS, InferenceConfig, check_choice
from .encoding import TextEncoder, cut_windows, head_budget, max_model_length, special_tokens
from .errors import UserError, first_line
from .inference import DEFAULT_TRUNCATION, InputSettings
from .modeling import check_model_folder, folder_config, is_classifier_config

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROMPTED_FILE = "prompted.json"
"""Marks a prompted folder (made by the ``prompt`` command) and names the language model it prompts."""
PROMPT_FILE = "prompt.toml"
"""A model folder's own prompt settings (with a fitted bias), read in place of the defaults."""
REVIEW_SLOT = "{review}"
GGUF_SUFFIX = ".gguf"
GGUF_MIN_VERSION = "0.10"
"""The oldest ``gguf`` that transformers reads GGUF files with (as the ``llm`` extra requires)."""
GGUF_INSTALL = "pip install 'imdb-sentiment[llm]'"
"""What installs the ``gguf`` package that loading a GGUF model needs."""
GGUF_READ_ERRORS = (OSError, ValueError, KeyError, struct.error)
"""What reading a damaged or truncated GGUF file raises (a missing key, a short header)."""
CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")
"""How ``transformers`` names causal language models in ``config.json`` ``architectures``."""
VERBALIZER_LABELS = ("negative", "positive")
DEMONSTRATION_KEYS = ("review", "label")
CLEANING = "basic"
"""Reviews are cleaned as the fine-tuned models' are by default (``<br />`` to a space)."""
CACHE_ARGUMENTS = ("cache", "past_key_values")
"""What a model's ``forward`` calls the key/value cache (newer transformers first)."""
SLOT_MARK = "\uE000review\uE000"
"""Stands for the review while a prompt is rendered (a private-use character: never in a template)."""


# --------------------------------------------------------------------------- settings


@dataclass
class PromptSettings:
    """How a review becomes a prompt and which next words mean each label."""

    verbalizers: dict[str, str] = field(default_factory=lambda: {"negative": "negative",
                                                                 "positive": "positive"})
    """The word whose next-token probability stands for each label; each must be one token."""
    system: str = ("You are a sentiment classifier for movie reviews. "
                   "Answer with exactly one word: positive or negative.")
    """The system message (chat template), or the first paragraph of a plain prompt."""
    user: str = ("Is the sentiment of this movie review positive or negative?\n\n"
                 "Review: {review}")
    """The user message; ``{review}`` marks where the review goes."""
    answer_cue: str = "Sentiment:"
    """Ends a plain prompt (a tokenizer without a chat template), right before the label word."""
    max_review_tokens: int = 512
    """Review tokens kept in the prompt; a longer review keeps its first and last tokens."""
    bias: float = 0.0
    """Added to the label log-odds, log P(positive) - log P(negative), before the softmax."""
    demonstrations: list[dict[str, str]] = field(default_factory=list)
    """Solved examples put before the review (k-shot), each ``{"review": ..., "label": ...}``; drawn
    from training reviews by :func:`draw_demonstrations` (the ``prompt`` command)."""

    def __post_init__(self) -> None:
        if not isinstance(self.verbalizers, dict) or sorted(self.verbalizers) != sorted(VERBALIZER_LABELS):
            raise UserError(f"verbalizers must name exactly {' and '.join(VERBALIZER_LABELS)}, "
                            f"got {self.verbalizers!r}")
        for label, word in self.verbalizers.items():
            if not isinstance(word, str) or not word.strip():
                raise UserError(f"the {label} verbalizer must be a non-empty word, got {word!r}")
        self.verbalizers = {label: self.verbalizers[label].strip() for label in VERBALIZER_LABELS}
        if self.verbalizers["negative"] == self.verbalizers["positive"]:
            raise UserError("the negative and positive verbalizers must differ")
        for name in ("system", "user", "answer_cue"):
            if not isinstance(getattr(self, name), str):
                raise UserError(f"prompt {name} must be text, got {getattr(self, name)!r}")
        if self.user.count(REVIEW_SLOT) != 1:
            raise UserError(f"the user template must contain {REVIEW_SLOT} exactly once, "
                            f"found it {self.user.count(REVIEW_SLOT)} times")
        size = self.max_review_tokens
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise UserError(f"max review tokens must be positive, got {size!r}")
        if isinstance(self.bias, bool) or not isinstance(self.bias, Real) or not math.isfinite(self.bias):
            raise UserError(f"bias must be a finite number, got {self.bias!r}")
        self.bias = float(self.bias)
        self.demonstrations = [_checked_demonstration(item) for item in self.demonstrations or []]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PromptSettings:
        """Settings from a TOML (or YAML/JSON) file: top-level keys and a ``[verbalizers]`` table."""
        from .config import settings_from_file

        return settings_from_file(cls, path)

    def to_toml(self) -> str:
        """The settings as TOML that :meth:`from_file` reads back."""
        values = asdict(self)
        verbalizers = values.pop("verbalizers")
        demonstrations = values.pop("demonstrations")
        lines = [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines += ["", "[verbalizers]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in verbalizers.items()]
        for item in demonstrations:
            lines += ["", "[[demonstrations]]"]
            lines += [f"{key} = {_toml_value(item[key])}" for key in DEMONSTRATION_KEYS]
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the settings (the bias included) atomically to ``path``."""
        from .artifacts import atomic_write_text

        return atomic_write_text(path, self.to_toml())


def _checked_demonstration(item: Any) -> dict[str, str]:
    if not isinstance(item, dict) or sorted(item) != sorted(DEMONSTRATION_KEYS):
        raise UserError(f"each demonstration must have exactly the keys {' and '.join(DEMONSTRATION_KEYS)}, "
                        f"got {item!r}"[:300])
    review, label = item["review"], item["label"]
    if not isinstance(review, str) or not review.strip():
        raise UserError("a demonstration's review must be non-empty text")
    if label not in VERBALIZER_LABELS:
        raise UserError(f"a demonstration's label must be {' or '.join(VERBALIZER_LABELS)}, got {label!r}")
    return {"review": review, "label": label}


def _toml_value(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


# --------------------------------------------------------------------------- recognition


def is_gguf(id_or_path: str | os.PathLike[str]) -> bool:
    """True for a local ``.gguf`` file, or a folder with a ``.gguf`` file and no ``config.json``."""
    path = Path(str(id_or_path)).expanduser()
    if path.is_file():
        return path.suffix.lower() == GGUF_SUFFIX
    return path.is_dir() and not (path / "config.json").exists() and bool(_gguf_files(path))


def read_prompted_folder(id_or_path: str | os.PathLike[str]) -> str | None:
    """The language model a prompted folder prompts (a path or a Hub id), or ``None`` for anything else."""
    from .artifacts import read_json

    record_file = Path(str(id_or_path)).expanduser() / PROMPTED_FILE
    if not record_file.is_file():
        return None
    try:
        record = read_json(record_file)
        model = record["model"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"cannot read the prompted folder's {record_file}: {first_line(error)}") from error
    if not isinstance(model, str) or not model:
        raise UserError(f"{record_file} names no language model")
    from .modeling import is_local

    if is_local(model) and not Path(model).exists():
        raise UserError(f"the prompted folder {record_file.parent} prompts {model}, which is not found; "
                        "fetch the model again or fit the prompt anew")
    return model


def _gguf_files(folder: Path) -> list[Path]:
    return sorted(item for item in folder.iterdir() if item.suffix.lower() == GGUF_SUFFIX and item.is_file())


def gguf_location(id_or_path: str | os.PathLike[str]) -> tuple[Path, str]:
    """The folder and file name of a GGUF model (as ``from_pretrained(folder, gguf_file=name)`` takes);
    a folder with several ``.gguf`` files is a one-line error naming them."""
    path = Path(str(id_or_path)).expanduser()
    if path.is_file():
        return path.parent, path.name
    found = _gguf_files(path)
    if len(found) != 1:
        raise UserError(f"{path} holds {len(found)} GGUF files ({', '.join(item.name for item in found)}); "
                        "pass the path of the one to load")
    return path, found[0].name


def check_gguf_package() -> None:
    """A one-line error with the install command when the ``gguf`` package is missing or too old."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        import gguf  # noqa: F401

        found = version("gguf")
    except (ImportError, PackageNotFoundError) as error:
        raise UserError(f"loading a GGUF model needs the gguf package: {GGUF_INSTALL}") from error
    if Version(found) < Version(GGUF_MIN_VERSION):
        raise UserError(f"loading a GGUF model needs gguf>={GGUF_MIN_VERSION} (found {found}): "
                        f"{GGUF_INSTALL}")


def is_causal_lm_folder(id_or_path: str | os.PathLike[str]) -> bool:
    """True for a GGUF model (:func:`is_gguf`) or a local model folder whose ``config.json`` names a
    causal LM and no classifier head.

    Read without transformers; a folder without ``architectures`` counts when its ``model_type``
    is a decoder-only causal LM.
    """
    if is_gguf(id_or_path) or read_prompted_folder(id_or_path) is not None:
        return True
    folder = Path(str(id_or_path)).expanduser()
    if not (folder / "config.json").is_file():
        return False
    return is_causal_lm_config(folder_config(folder))


def is_causal_lm_config(config: Any) -> bool:
    """A model config that names a causal LM and no classifier head; without ``architectures``, a
    decoder-only causal-LM ``model_type``."""
    if is_classifier_config(config):
        return False
    architectures = getattr(config, "architectures", None) or []
    if architectures:
        return any(str(name).endswith(CAUSAL_LM_SUFFIXES) for name in architectures)
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    # Encoders such as BERT also have a causal-LM class; only decoder-only types count.
    return (model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def is_causal_lm(id_or_path: str | os.PathLike[str], trust_remote_code: bool = False) -> bool:
    """:func:`is_causal_lm_folder` for a local path; for a Hub id, what its config (downloaded, or
    from the local cache) names: Hub ids and folders take the same path."""
    from .modeling import is_local, load_config

    if is_local(id_or_path):
        return is_causal_lm_folder(id_or_path)
    return is_causal_lm_config(load_config(id_or_path, trust_remote_code))


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """A prompt's token ids around the review and the ids of the two label words."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    label_ids: tuple[int, int]
    """Token id of the negative and the positive verbalizer."""
    chat: bool
    """Built with the tokenizer's chat template."""
    review_lead: str = ""
    """Whitespace of the template right before the review, tokenized with the review (``Review: A``
    is ``Review``, ``:``, `` A`` as one prompt, not a lone space token and ``A``)."""


def build_prompt(tokenizer: PreTrainedTokenizerBase, settings: PromptSettings) -> Prompt:
    """Render the template once with a mark for the review and tokenize the text around it.

    Demonstrations come first, each as a solved exchange: in a chat, a user turn with the review
    and an assistant turn with its label word; in a plain prompt, the review and the answer cue
    followed by the word."""
    user = settings.user.replace(REVIEW_SLOT, SLOT_MARK)
    solved = [(settings.user.replace(REVIEW_SLOT, item["review"]), settings.verbalizers[item["label"]])
              for item in settings.demonstrations]
    chat = bool(getattr(tokenizer, "chat_template", None))
    if chat:
        text = render_chat(tokenizer, settings.system, solved, user)
        start: tuple[int, ...] = ()  # the chat template writes its own start tokens
    else:
        answered = [f"{question}\n{settings.answer_cue} {answer}" for question, answer in solved]
        text = ("\n\n".join(part for part in (settings.system, *answered, user) if part)
                + "\n" + settings.answer_cue)
        start = special_tokens(tokenizer).prefix  # e.g. <s>; an end-of-text token would end the prompt
    if text.count(SLOT_MARK) != 1:
        raise UserError("the chat template does not place the user message in the prompt exactly once")
    before, after = text.split(SLOT_MARK)
    kept = before.rstrip()
    before, lead = kept, before[len(kept):]
    prefix = start + tuple(bare_ids(tokenizer, before))
    suffix = tuple(bare_ids(tokenizer, after))
    after_space = (after or before + lead)[-1:].isspace()
    label_ids = tuple(verbalizer_id(tokenizer, settings.verbalizers[label], after_space)
                      for label in VERBALIZER_LABELS)
    if label_ids[0] == label_ids[1]:
        raise UserError(f"the verbalizers {settings.verbalizers['negative']!r} and "
                        f"{settings.verbalizers['positive']!r} are the same token for this tokenizer")
    return Prompt(prefix, suffix, (label_ids[0], label_ids[1]), chat, lead)


def render_chat(tokenizer: PreTrainedTokenizerBase, system: str, solved: list[tuple[str, str]],
                 user: str) -> str:
    turns: list[dict[str, str]] = []
    for question, answer in solved:
        turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    turns.append({"role": "user", "content": user})
    if not system:
        return _apply_chat_template(tokenizer, turns)
    try:
        return tokenizer.apply_chat_template([{"role": "system", "content": system}, *turns],
                                             tokenize=False, add_generation_prompt=True)
    except Exception:  # templates without a system role raise their own error types
        first = {"role": "user", "content": f"{system}\n\n{turns[0]['content']}"}
        return _apply_chat_template(tokenizer, [first, *turns[1:]])


def _apply_chat_template(tokenizer: PreTrainedTokenizerBase, turns: list[dict[str, str]]) -> str:
    try:
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    except Exception as error:  # a broken template: one line, not a Jinja traceback
        raise UserError(f"cannot render the tokenizer's chat template: {first_line(error)}") from error


def bare_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def verbalizer_id(tokenizer: PreTrainedTokenizerBase, word: str, after_space: bool) -> int:
    """The one token of ``word`` as it follows the prompt: without a leading space after
    whitespace (a chat template's new line), with one otherwise; the other form when only it is
    one token. A word that is one token in neither form is a one-line error."""
    forms = (word, " " + word) if after_space else (" " + word, word)
    found = {form: bare_ids(tokenizer, form) for form in forms}
    unknown = getattr(tokenizer, "unk_token_id", None)
    for form in forms:
        ids = found[form]
        if len(ids) == 1 and ids[0] != unknown:
            return ids[0]
    counts = " and ".join(f"{len(found[form])}" for form in (word, " " + word))
    raise UserError(f"the verbalizer {word!r} is not one token for this tokenizer ({counts} tokens without "
                    "and with a leading space, or unknown); choose a word that is one token")


# --------------------------------------------------------------------------- engines


@runtime_checkable
class PromptRunner(Protocol):
    """Runs a causal LM over prompts that share one fixed first part (the prefix)."""

    engine: str
    """How it runs, for ``info()``: e.g. ``torch fp32``, ``llama.cpp``."""
    max_positions: int
    """The most tokens (prefix included) one prompt may have."""

    def set_prefix(self, prefix: Sequence[int]) -> None:
        """The prompt's fixed first tokens (system text, demonstrations): computed once, reused per review."""

    def label_log_odds(self, continuations: Sequence[Sequence[int]], label_ids: tuple[int, int]
                       ) -> np.ndarray:
        """Per continuation (the tokens after the prefix), the next-token logit of ``label_ids[1]``
        minus that of ``label_ids[0]`` after prefix + continuation."""


class TorchPromptRunner:
    """A transformers causal LM; the prefix's keys and values are computed once and copied to each
    batch, so a review costs its own tokens only (a 4-shot prefix is ~3x a review's length)."""

    def __init__(self, model: Any, tokenizer: PreTrainedTokenizerBase, *, device: str = "cpu",
                 precision: str = "fp32") -> None:
        self.model = model
        self.device = device
        self.engine = f"torch {precision}"
        self.max_positions = max_model_length(model.config, tokenizer)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._options = forward_options(model)
        # transformers 5.x renames ``past_key_values`` to ``cache`` (in arguments and outputs).
        self._cache_name = next((name for name in CACHE_ARGUMENTS if name in self._options), None)
        self._prefix: tuple[int, ...] = ()
        self._cache: Any = None

    def set_prefix(self, prefix: Sequence[int]) -> None:
        self._prefix, self._cache = tuple(prefix), None
        if self._prefix and self._cache_name is not None:
            self._cache = prefix_cache(self.model, self._prefix, self.device)

    def label_log_odds(self, continuations: Sequence[Sequence[int]], label_ids: tuple[int, int]
                       ) -> np.ndarray:
        """Left padding between the prefix and each continuation, so every prompt's last token is the
        last column; positions count real tokens only."""
        import copy

        import torch

        if self._cache is None:  # no prefix, or a model that takes no cache: whole prompts
            continuations = [self._prefix + tuple(ids) for ids in continuations]
        start = len(self._prefix) if self._cache is not None else 0
        width = max(len(ids) for ids in continuations)
        ids = np.full((len(continuations), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(continuations), start + width), dtype=np.int64)
        mask[:, :start] = 1
        for row, tokens in enumerate(continuations):
            ids[row, width - len(tokens):] = tokens
            mask[row, start + width - len(tokens):] = 1
        positions = np.maximum(mask.cumsum(axis=1) - 1, 0)[:, start:]
        inputs: dict[str, Any] = {"input_ids": torch.from_numpy(ids).to(self.device),
                                  "attention_mask": torch.from_numpy(mask).to(self.device),
                                  **self._keep_last()}
        if "position_ids" in self._options:
            inputs["position_ids"] = torch.from_numpy(positions).to(self.device)
        if self._cache is not None:
            cache = copy.deepcopy(self._cache)  # the model appends to the cache it is given
            cache.batch_repeat_interleave(len(continuations))
            inputs.update({self._cache_name: cache, "use_cache": True})
        with torch.inference_mode():
            logits = self.model(**inputs).logits[:, -1, list(label_ids)].float()
        return (logits[:, 1] - logits[:, 0]).cpu().numpy().astype(np.float64)

    def _keep_last(self) -> dict[str, int]:
        # The next-token logits only, not the whole vocabulary at every position.
        return {"logits_to_keep": 1} if "logits_to_keep" in self._options else {}


# --------------------------------------------------------------------------- the classifier


class LLMClassifier(Classifier):
    """A causal LM that labels a review by the next-token probabilities of the two label words."""

    def __init__(self, model: Any, tokenizer: PreTrainedTokenizerBase, settings: PromptSettings | None = None,
                 inputs: InputSettings | None = None, *, name: str = "", device: str = "cpu",
                 precision: str = "fp32") -> None:
        """``inputs.max_length`` is the review tokens per prompt (default: the prompt settings');
        one window per review, so ``chunks`` and ``chunk_overlap`` do not apply."""
        inputs = inputs or InputSettings()
        truncation, head_tokens, batch_size = inputs.truncation, inputs.head_tokens, inputs.batch_size
        self.runner: PromptRunner = model if isinstance(model, PromptRunner) else TorchPromptRunner(
            model, tokenizer, device=device, precision=precision)
        self.tokenizer = tokenizer
        self.settings = settings or PromptSettings()
        self.name = name
        self.base_model = name
        self.engine_reason = f"a prompted causal language model on {self.runner.engine}"
        """The language model prompted (``name`` is the prompted folder's when loaded from one)."""
        self.device = device
        self.precision = precision
        self.cleaning = CLEANING
        self.encoder = TextEncoder.from_transformers(tokenizer)
        check_choice("truncation", truncation, TRAIN_TRUNCATIONS)  # one window per review
        self.truncation = truncation
        self.max_length = self.settings.max_review_tokens if inputs.max_length is None else inputs.max_length
        """Review tokens per prompt (the prompt's own tokens come on top)."""
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length <= 0:
            raise UserError(f"max review tokens must be positive, got {self.max_length!r}")
        if head_tokens is not None and not 0 <= head_tokens <= self.max_length:
            raise UserError(f"head tokens must be in [0, {self.max_length}], got {head_tokens}")
        self.head_tokens = head_budget(self.max_length, head_tokens)
        self.batch_size = default_batch_size(device) if batch_size is None else batch_size
        if self.batch_size <= 0:
            raise UserError(f"batch size must be positive, got {self.batch_size}")
        self.max_batch_tokens = default_batch_tokens(inputs.max_batch_tokens, device)
        self.prompt = self._set_prompt()

    def use_settings(self, settings: PromptSettings) -> LLMClassifier:
        """Prompt with these settings from now on (new demonstrations: their prefix is computed once)."""
        previous = self.settings
        self.settings = settings
        try:
            self.prompt = self._set_prompt()
        except UserError:
            self.settings = previous
            raise
        return self

    def _set_prompt(self) -> Prompt:
        prompt = build_prompt(self.tokenizer, self.settings)
        overhead = len(prompt.prefix) + len(prompt.suffix)
        limit = self.runner.max_positions
        if overhead + self.max_length > limit:
            raise UserError(f"{self.max_length} review tokens plus the prompt's {overhead} exceed this "
                            f"model's {limit} positions; lower max_review_tokens (or --max-length), or use "
                            "fewer or shorter demonstrations")
        self.runner.set_prefix(prompt.prefix)
        return prompt

    @classmethod
    def load(cls, id_or_path: str | os.PathLike[str], config: InferenceConfig | None = None, *,
             settings: PromptSettings | str | os.PathLike[str] | None = None, **options: Any
             ) -> LLMClassifier:
        """Load a causal LM folder or a GGUF model (:func:`is_gguf`). ``config`` (then keyword
        ``options``) as for every classifier: ``max_length`` sets the review tokens per prompt,
        ``truncation`` is ``head`` or ``head-tail``.
        ``settings``: prompt settings or a file of them (default: the folder's ``prompt.toml``,
        else :class:`PromptSettings`)."""
        from .backends import check_device
        from .engines import LLAMA_CPP_ENGINE, Engine, check_llama_cpp_request, choose_llm_engine
        from .modeling import (
            default_device,
            load_tokenizer,
            quiet_if_asked,
            resolve_model_source,
            resolve_precision,
        )

        quiet_if_asked()

        run = (config or InferenceConfig()).with_options(**options)
        if run.truncation is not None:
            check_choice("truncation (one prompt per review)", run.truncation, TRAIN_TRUNCATIONS)
        if run.backend == "onnx":
            raise UserError("the onnx backend does not run prompted language models; use --backend torch")
        if run.precision == "int8":
            raise UserError("int8 does not apply to prompted language models; use --precision fp32 or bf16")
        prompted = read_prompted_folder(id_or_path)
        if prompted is not None:  # a prompted folder: its own prompt settings over the model it names
            if settings is None:
                settings = Path(str(id_or_path)).expanduser() / PROMPT_FILE
            return cls.load(prompted, run, settings=settings)._named(str(id_or_path))
        if is_gguf(id_or_path):
            folder, gguf_file = gguf_location(id_or_path)
            check_gguf_package()
            source, files = str(folder), {"gguf_file": gguf_file}
        else:
            source, files = resolve_model_source(id_or_path), {}
            check_model_folder(source, classifier=False)
            folder = Path(source)
        if settings is None:
            settings = folder / PROMPT_FILE if (folder / PROMPT_FILE).is_file() else PromptSettings()
        if not isinstance(settings, PromptSettings):
            settings = PromptSettings.from_file(settings)
        device = run.device or default_device()
        check_device(device)
        tokenizer = _load_gguf_tokenizer(source, files) if files else load_tokenizer(source,
                                                                                     run.trust_remote_code)
        inputs = InputSettings(max_length=run.max_length, truncation=run.truncation or DEFAULT_TRUNCATION,
                               head_tokens=run.head_tokens, batch_size=run.batch_size,
                               max_batch_tokens=run.max_batch_tokens)
        prompt_settings = settings
        built: dict[Engine, LLMClassifier] = {}  # what the engine choice loaded is used, not loaded again

        def build(engine: Engine) -> LLMClassifier:
            if engine in built:
                return built[engine]
            if engine.backend == LLAMA_CPP:
                model = _llama_cpp_runner(folder / files["gguf_file"], tokenizer, prompt_settings, inputs)
            else:
                model = _load_torch_model(source, files, engine.precision, device, run.trust_remote_code)
            built[engine] = cls(model, tokenizer, prompt_settings, inputs, name=str(id_or_path),
                                device="cpu" if engine.backend == LLAMA_CPP else device,
                                precision=engine.precision)
            return built[engine]

        if run.backend == LLAMA_CPP:
            check_llama_cpp_request(bool(files), run.device, run.precision)
            return build(LLAMA_CPP_ENGINE)
        if files and run.backend == "auto" and run.precision == "auto" and device == "cpu":
            choice = choose_llm_engine(folder, build)
            classifier = build(choice.engine)
            built.clear()  # the engines that lost are freed
            classifier.engine_reason = choice.reason
            return classifier
        if files and run.precision == "auto" and device == "cpu":
            precision = "fp32"  # transformers runs GGUF weights fastest in fp32 on a CPU (bf16 is cast)
        else:
            precision = resolve_precision(run.precision, device)
        return build(Engine("torch", precision))

    def _named(self, name: str) -> LLMClassifier:
        self.base_model, self.name = self.name, name
        return self

    # ------------------------------------------------------------------ the protocol

    def info(self) -> dict[str, Any]:
        from . import __version__

        return {
            "model": self.name,
            "backend": self.runner.engine.split()[0],
            "engine": self.runner.engine,
            "device": self.device,
            "precision": self.precision,
            "labels": list(self.labels),
            "max_length": self.max_length,
            "truncation": self.truncation,
            "head_tokens": self.head_tokens if self.truncation == "head-tail" else None,
            "tail_tokens": self.max_length - self.head_tokens if self.truncation == "head-tail" else None,
            "cleaning": self.cleaning,
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "engine_reason": self.engine_reason,
            "llm": {"chat_template": self.prompt.chat, "verbalizers": dict(self.settings.verbalizers),
                    "prompt_tokens": len(self.prompt.prefix) + len(self.prompt.suffix),
                    "bias": self.settings.bias, "shots": len(self.settings.demonstrations),
                    "prefix_tokens": len(self.prompt.prefix), "base_model": self.base_model},
            "version": __version__,
        }

    def gradient_classifier(self) -> Classifier:
        raise UserError(f"{self.name} is a prompted language model; explanations need a fine-tuned "
                        "sequence classifier")

    def predict_details(self, texts: Sequence[str], batch_size: int | None = None,
                        progress: Progress | None = None, *, cache: bool = False) -> Details:
        """As :meth:`Classifier.predict_details`; one window (prompt) per review. ``cache`` is not used."""
        log_odds, tokens, truncated = self._label_log_odds(texts, batch_size, progress)
        positive = 1.0 / (1.0 + np.exp(-(log_odds + self.settings.bias)))
        probabilities = np.column_stack([1.0 - positive, positive]).astype(np.float32)
        return Details(probabilities, tokens, truncated, np.ones(len(tokens), dtype=np.int64))

    def label_log_odds(self, texts: Sequence[str], batch_size: int | None = None,
                       progress: Progress | None = None) -> np.ndarray:
        """Per review, the positive word's next-token logit minus the negative word's (no bias)."""
        return self._label_log_odds(texts, batch_size, progress)[0]

    def fit_bias(self, texts: Sequence[str], labels: Sequence[int], batch_size: int | None = None) -> float:
        """Choose and keep the bias that maximizes accuracy on these (validation) reviews.

        Of the shifts with the best accuracy, the one nearest zero (the middle of its gap between
        reviews' log-odds). Save it with :meth:`save_settings`.
        """
        texts = check_texts(texts)
        targets = np.asarray(list(labels))
        if len(targets) != len(texts) or not len(texts):
            raise UserError(f"fit the bias on some reviews with one label each ({len(texts)} texts, "
                            f"{len(targets)} labels)")
        if not np.isin(targets, (0, 1)).all():
            raise UserError("bias labels must be 0 (negative) or 1 (positive)")
        self.settings.bias = best_bias(self.label_log_odds(texts, batch_size), targets.astype(int))
        return self.settings.bias

    def save_settings(self, path: str | os.PathLike[str]) -> Path:
        """Write the prompt settings (the bias included); in a model folder as ``prompt.toml``,
        they are what it loads with."""
        return self.settings.save(path)

    # ------------------------------------------------------------------ internals

    def _label_log_odds(self, texts: Sequence[str], batch_size: int | None, progress: Progress | None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from .data import clean_text

        cleaned = [self.prompt.review_lead + clean_text(text, self.cleaning) for text in check_texts(texts)]
        windows = cut_windows(self.encoder.tokenize(cleaned), self.max_length, self.truncation,
                              self.head_tokens, suffix=self.prompt.suffix)  # the runner holds the prefix
        lengths = windows.lengths
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
        prompts = windows.input_ids
        log_odds = np.zeros(len(cleaned), dtype=np.float64)
        for part in batch_slices(lengths[order], batch_size or self.batch_size, self.max_batch_tokens):
            rows = order[part]
            log_odds[rows] = self.runner.label_log_odds([prompts[row] for row in rows], self.prompt.label_ids)
            if progress is not None:
                progress(len(rows))
        return log_odds, windows.tokens, windows.truncated


LLAMA_CPP_ROOM = 2048
"""Context kept free beyond the prompt llama.cpp is loaded for, so demonstrations can be added later
(``prompt --shots``: 4 of up to 160 tokens take ~720); its cache costs ~12-28 KB per token here."""


def _llama_cpp_runner(gguf_file: Path, tokenizer: PreTrainedTokenizerBase, settings: PromptSettings,
                      inputs: InputSettings) -> PromptRunner:
    from .llama_cpp_engine import load_llama_cpp_runner

    prompt = build_prompt(tokenizer, settings)
    review_tokens = settings.max_review_tokens if inputs.max_length is None else inputs.max_length
    needed = len(prompt.prefix) + len(prompt.suffix) + int(review_tokens)
    return load_llama_cpp_runner(gguf_file, n_ctx=needed + LLAMA_CPP_ROOM)


def _load_torch_model(source: str, files: dict[str, str], precision: str, device: str,
                      trust_remote_code: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from .modeling import hub_error

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    load_errors = GGUF_READ_ERRORS if files else (OSError, ValueError)
    if files:
        _quiet_gguf_conversion()
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **files,
                                                     trust_remote_code=trust_remote_code)
    except load_errors as error:
        raise (gguf_error(source, files, error) if files else hub_error(source, error)) from error
    return model.to(device).eval()


def _quiet_gguf_conversion() -> None:
    """transformers' GGUF reader draws its own tqdm bar, which its progress-bar switch misses; off
    where the command line asked for quiet loading."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") != "1":
        return
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_reading

    bar = getattr(gguf_reading, "tqdm", None)
    if bar is not None and not isinstance(bar, functools.partial):
        gguf_reading.tqdm = functools.partial(bar, disable=True)


def _load_gguf_tokenizer(folder: str, files: dict[str, str]) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, **files)
    except GGUF_READ_ERRORS as error:
        raise gguf_error(folder, files, error) from error


def gguf_error(folder: str, files: dict[str, str], error: Exception) -> UserError:
    """The one-line error for a GGUF file that cannot be read (damaged, truncated, unknown architecture)."""
    return UserError(f"cannot load the GGUF model {Path(folder) / files['gguf_file']}: {first_line(error)}")


def prefix_cache(model: Any, prefix: Sequence[int], device: str) -> Any:
    """The key/value cache of ``model`` after ``prefix`` (one forward pass, next-token logits only),
    to be copied for every prompt that starts with it."""
    import torch

    options = forward_options(model)
    keep_last = {"logits_to_keep": 1} if "logits_to_keep" in options else {}
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    with torch.inference_mode():
        output = model(input_ids=ids, use_cache=True, **keep_last)
    return getattr(output, next(name for name in CACHE_ARGUMENTS if name in options))


def forward_options(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters) & {"position_ids", "logits_to_keep",
                                                                *CACHE_ARGUMENTS}


def best_bias(log_odds: np.ndarray, labels: np.ndarray) -> float:
    """The shift ``b`` with the most ``(log_odds + b > 0) == labels``: no shift (0) when that is
    among the best, else the best candidate nearest zero; each lies midway between two reviews'
    log-odds (or beyond them all)."""
    cuts, index = np.unique(-np.asarray(log_odds, dtype=np.float64), return_inverse=True)
    positive = np.asarray(labels) == 1  # review i is called positive once b > cuts[index[i]]
    positives_at = np.bincount(index, weights=positive, minlength=len(cuts))
    negatives_at = np.bincount(index, weights=~positive, minlength=len(cuts))
    # Candidate k has the k lowest cuts below it: those reviews are called positive, the rest negative.
    correct = (np.concatenate([[0.0], np.cumsum(positives_at)])
               + negatives_at.sum() - np.concatenate([[0.0], np.cumsum(negatives_at)]))
    candidates = np.concatenate([[cuts[0] - 1.0], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1.0]])
    if correct[np.searchsorted(cuts, 0.0, side="left")] == correct.max():
        return 0.0
    best = np.flatnonzero(correct == correct.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best]))]])
