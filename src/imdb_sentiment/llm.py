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
from dataclasses import asdict, dataclass, field, fields
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .batching import batch_slices, default_batch_size, default_batch_tokens
from .classifier import Classifier, Details, Progress, check_texts
from .config import TRAIN_TRUNCATIONS, InferenceConfig, check_choice
from .encoding import TextEncoder, cut_windows, head_budget, max_model_length, special_tokens
from .errors import UserError, first_line
from .inference import DEFAULT_TRUNCATION, InputSettings
from .modeling import check_model_folder, folder_config, is_classifier_config

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

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
CLEANING = "basic"
"""Reviews are cleaned as the fine-tuned models' are by default (``<br />`` to a space)."""
_SLOT_MARK = "\uE000review\uE000"
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

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PromptSettings:
        """Settings from a TOML (or YAML/JSON) file: top-level keys and a ``[verbalizers]`` table."""
        from .config import read_config_file

        data = read_config_file(path)
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown key(s) in {path}: {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(known))})")
        return cls(**data)

    def to_toml(self) -> str:
        """The settings as TOML that :meth:`from_file` reads back."""
        values = asdict(self)
        verbalizers = values.pop("verbalizers")
        lines = [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines += ["", "[verbalizers]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in verbalizers.items()]
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the settings (the bias included) atomically to ``path``."""
        from .artifacts import atomic_write_text

        return atomic_write_text(path, self.to_toml())


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
    if is_gguf(id_or_path):
        return True
    folder = Path(str(id_or_path)).expanduser()
    if not (folder / "config.json").is_file():
        return False
    config = folder_config(folder)
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
    """Render the template once with a mark for the review and tokenize the text around it."""
    user = settings.user.replace(REVIEW_SLOT, _SLOT_MARK)
    chat = bool(getattr(tokenizer, "chat_template", None))
    if chat:
        text = _render_chat(tokenizer, settings.system, user)
        start: tuple[int, ...] = ()  # the chat template writes its own start tokens
    else:
        text = "\n\n".join(part for part in (settings.system, user) if part) + "\n" + settings.answer_cue
        start = special_tokens(tokenizer).prefix  # e.g. <s>; an end-of-text token would end the prompt
    if text.count(_SLOT_MARK) != 1:
        raise UserError("the chat template does not place the user message in the prompt exactly once")
    before, after = text.split(_SLOT_MARK)
    kept = before.rstrip()
    before, lead = kept, before[len(kept):]
    prefix = start + tuple(_bare_ids(tokenizer, before))
    suffix = tuple(_bare_ids(tokenizer, after))
    after_space = (after or before + lead)[-1:].isspace()
    label_ids = tuple(verbalizer_id(tokenizer, settings.verbalizers[label], after_space)
                      for label in VERBALIZER_LABELS)
    if label_ids[0] == label_ids[1]:
        raise UserError(f"the verbalizers {settings.verbalizers['negative']!r} and "
                        f"{settings.verbalizers['positive']!r} are the same token for this tokenizer")
    return Prompt(prefix, suffix, (label_ids[0], label_ids[1]), chat, lead)


def _render_chat(tokenizer: PreTrainedTokenizerBase, system: str, user: str) -> str:
    messages = [{"role": "user", "content": user}]
    if not system:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    try:
        return tokenizer.apply_chat_template([{"role": "system", "content": system}, *messages],
                                             tokenize=False, add_generation_prompt=True)
    except Exception:  # templates without a system role raise their own error types
        merged = [{"role": "user", "content": f"{system}\n\n{user}"}]
        try:
            return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        except Exception as error:  # a broken template: one line, not a Jinja traceback
            raise UserError(f"cannot render the tokenizer's chat template: {first_line(error)}") from error


def _bare_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def verbalizer_id(tokenizer: PreTrainedTokenizerBase, word: str, after_space: bool) -> int:
    """The one token of ``word`` as it follows the prompt: without a leading space after
    whitespace (a chat template's new line), with one otherwise; the other form when only it is
    one token. A word that is one token in neither form is a one-line error."""
    forms = (word, " " + word) if after_space else (" " + word, word)
    found = {form: _bare_ids(tokenizer, form) for form in forms}
    unknown = getattr(tokenizer, "unk_token_id", None)
    for form in forms:
        ids = found[form]
        if len(ids) == 1 and ids[0] != unknown:
            return ids[0]
    counts = " and ".join(f"{len(found[form])}" for form in (word, " " + word))
    raise UserError(f"the verbalizer {word!r} is not one token for this tokenizer ({counts} tokens without "
                    "and with a leading space, or unknown); choose a word that is one token")


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
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings or PromptSettings()
        self.name = name
        self.device = device
        self.precision = precision
        self.cleaning = CLEANING
        self.encoder = TextEncoder.from_transformers(tokenizer)
        self.prompt = build_prompt(tokenizer, self.settings)
        check_choice("truncation", truncation, TRAIN_TRUNCATIONS)  # one window per review
        self.truncation = truncation
        self.max_length = self.settings.max_review_tokens if inputs.max_length is None else inputs.max_length
        """Review tokens per prompt (the prompt's own tokens come on top)."""
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length <= 0:
            raise UserError(f"max review tokens must be positive, got {self.max_length!r}")
        overhead = len(self.prompt.prefix) + len(self.prompt.suffix)
        limit = max_model_length(model.config, tokenizer)
        if overhead + self.max_length > limit:
            raise UserError(f"{self.max_length} review tokens plus the prompt's {overhead} exceed this "
                            f"model's {limit} positions; lower max_review_tokens (or --max-length)")
        if head_tokens is not None and not 0 <= head_tokens <= self.max_length:
            raise UserError(f"head tokens must be in [0, {self.max_length}], got {head_tokens}")
        self.head_tokens = head_budget(self.max_length, head_tokens)
        self.batch_size = default_batch_size(device) if batch_size is None else batch_size
        if self.batch_size <= 0:
            raise UserError(f"batch size must be positive, got {self.batch_size}")
        self.max_batch_tokens = default_batch_tokens(inputs.max_batch_tokens, device)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._pass = _forward_options(model)

    @classmethod
    def load(cls, id_or_path: str | os.PathLike[str], config: InferenceConfig | None = None, *,
             settings: PromptSettings | str | os.PathLike[str] | None = None, **options: Any
             ) -> LLMClassifier:
        """Load a causal LM folder or a GGUF model (:func:`is_gguf`). ``config`` (then keyword
        ``options``) as for every classifier: ``max_length`` sets the review tokens per prompt,
        ``truncation`` is ``head`` or ``head-tail``.
        ``settings``: prompt settings or a file of them (default: the folder's ``prompt.toml``,
        else :class:`PromptSettings`)."""
        import torch
        from transformers import AutoModelForCausalLM

        from .backends import check_device
        from .modeling import (
            default_device,
            hub_error,
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
        if files and run.precision == "auto" and device == "cpu":
            precision = "fp32"  # transformers runs GGUF weights fastest in fp32 on a CPU (bf16 is cast)
        else:
            precision = resolve_precision(run.precision, device)
        tokenizer = _load_gguf_tokenizer(source, files) if files else load_tokenizer(source,
                                                                                     run.trust_remote_code)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        load_errors = GGUF_READ_ERRORS if files else (OSError, ValueError)
        try:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **files,
                                                         trust_remote_code=run.trust_remote_code)
        except load_errors as error:
            raise (gguf_error(source, files, error) if files else hub_error(source, error)) from error
        model.to(device).eval()
        inputs = InputSettings(max_length=run.max_length, truncation=run.truncation or DEFAULT_TRUNCATION,
                               head_tokens=run.head_tokens, batch_size=run.batch_size,
                               max_batch_tokens=run.max_batch_tokens)
        return cls(model, tokenizer, settings, inputs, name=str(id_or_path), device=device,
                   precision=precision)

    # ------------------------------------------------------------------ the protocol

    def info(self) -> dict[str, Any]:
        from . import __version__

        return {
            "model": self.name,
            "backend": "torch",
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
            "engine_reason": "a prompted causal language model (next-token probabilities of the label words)",
            "llm": {"chat_template": self.prompt.chat, "verbalizers": dict(self.settings.verbalizers),
                    "prompt_tokens": len(self.prompt.prefix) + len(self.prompt.suffix),
                    "bias": self.settings.bias},
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

    def label_log_odds(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Per review, the positive word's next-token logit minus the negative word's (no bias)."""
        return self._label_log_odds(texts, batch_size, None)[0]

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
                              self.head_tokens, prefix=self.prompt.prefix, suffix=self.prompt.suffix)
        lengths = windows.lengths
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
        prompts = windows.input_ids
        log_odds = np.zeros(len(cleaned), dtype=np.float64)
        for part in batch_slices(lengths[order], batch_size or self.batch_size, self.max_batch_tokens):
            rows = order[part]
            log_odds[rows] = self._run([prompts[row] for row in rows])
            if progress is not None:
                progress(len(rows))
        return log_odds, windows.tokens, windows.truncated

    def _run(self, prompts: list[list[int]]) -> np.ndarray:
        """The label log-odds of prompts, padded on the left so each one's last token is the last column."""
        import torch

        width = max(len(ids) for ids in prompts)
        ids = np.full((len(prompts), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(prompts), width), dtype=np.int64)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt):] = prompt
            mask[row, width - len(prompt):] = 1
        inputs: dict[str, Any] = {"input_ids": torch.from_numpy(ids).to(self.device),
                                  "attention_mask": torch.from_numpy(mask).to(self.device)}
        if "position_ids" in self._pass:  # positions count from each prompt's first real token
            inputs["position_ids"] = torch.from_numpy(np.maximum(mask.cumsum(axis=1) - 1, 0)).to(self.device)
        if "logits_to_keep" in self._pass:  # the next-token logits only, not the whole vocabulary per token
            inputs["logits_to_keep"] = 1
        with torch.inference_mode():
            logits = self.model(**inputs).logits[:, -1, list(self.prompt.label_ids)].float()
        return (logits[:, 1] - logits[:, 0]).cpu().numpy().astype(np.float64)


def _load_gguf_tokenizer(folder: str, files: dict[str, str]) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, **files)
    except GGUF_READ_ERRORS as error:
        raise gguf_error(folder, files, error) from error


def gguf_error(folder: str, files: dict[str, str], error: Exception) -> UserError:
    """The one-line error for a GGUF file that cannot be read (damaged, truncated, unknown architecture)."""
    return UserError(f"cannot load the GGUF model {Path(folder) / files['gguf_file']}: {first_line(error)}")


def _forward_options(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters) & {"position_ids", "logits_to_keep"}


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
