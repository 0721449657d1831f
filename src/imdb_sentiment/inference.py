"""Fast, safe batched prediction with a fine-tuned sentiment classifier.

Texts are tokenized once without any cut; each review is then cut (``head``, ``head-tail``) or
split into overlapping windows (``chunks``) by a recorded strategy, so a long review is never
an error and never silently shortened. Windows are sorted by length so each batch pads little,
and results come back in input order.

Two back ends share that path (:mod:`imdb_sentiment.backends`): PyTorch (fp32, bf16 autocast
where the hardware has bf16 units, int8 dynamic quantization) and ONNX Runtime for folders
written by ``imdb-sentiment export``; :mod:`imdb_sentiment.engines` chooses between them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backends import Backend, OnnxBackend, TorchBackend, check_device
from .batching import batch_slices, default_batch_size, default_batch_tokens, prefetch
from .classifier import Classifier, Details, Progress, check_texts
from .config import BACKENDS, PRECISIONS, TRUNCATIONS, InferenceConfig, check_choice
from .encoding import (
    TextEncoder,
    TokenArrays,
    Windows,
    check_length,
    chunk_spans,
    head_budget,
    make_windows,
    max_model_length,
)
from .engines import check_encoder_backend, choose_cpu_engine, measures_engine, wants_onnx
from .errors import UserError
from .exporters.onnx import ONNX_META
from .modeling import check_model_folder, folder_config, label_order, resolve_model_source

__all__ = ["BACKENDS", "PRECISIONS", "TRUNCATIONS", "InferenceConfig", "SentimentClassifier", "TextEncoder",
           "Windows", "batch_slices", "chunk_spans", "make_windows"]

DEFAULT_TRUNCATION = "head-tail"
DEFAULT_MAX_LENGTH = 512
DEFAULT_CHUNK_OVERLAP = 128

_GRADIENT_LOADING = threading.Lock()
"""One PyTorch load at a time for :meth:`SentimentClassifier.gradient_classifier`."""


# --------------------------------------------------------------------------- classifier


@dataclasses.dataclass(frozen=True)
class InputSettings:
    """How a :class:`SentimentClassifier` turns reviews into model inputs, as it is built
    (``load`` resolves them from its options, the model's ``train_config.toml`` and the defaults).
    ``None``: the model's limit (length), the device's default (batch size) or a quarter of the
    window (chunk overlap)."""

    max_length: int | None = None
    truncation: str = DEFAULT_TRUNCATION
    head_tokens: int | None = None
    chunk_overlap: int | None = None
    cleaning: str = "basic"
    batch_size: int | None = None
    max_batch_tokens: int | str | None = "auto"


class SentimentClassifier(Classifier):
    """A loaded transformer classifier: ``predict`` gives labels, ``predict_proba`` class probabilities."""

    def __init__(self, backend: Backend, encoder: TextEncoder, model_config: Any,
                 inputs: InputSettings | None = None, *, name: str = "", tokenizer: Any = None) -> None:
        from .data import CLEANINGS
        from .modeling import rating_outputs

        inputs = inputs or InputSettings()
        max_length, truncation, head_tokens = inputs.max_length, inputs.truncation, inputs.head_tokens
        chunk_overlap, cleaning, batch_size = inputs.chunk_overlap, inputs.cleaning, inputs.batch_size

        self.backend = backend
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.name = name
        self.engine_reason: str | None = None
        """Why this back end and precision run the model (set when they were measured)."""
        self._pytorch_source: tuple[str, bool] | None = None
        """The PyTorch folder or Hub id this model was loaded from, and whether to trust its remote
        code; ``None`` for an ONNX export folder, which has no PyTorch weights."""
        self._gradient_model: SentimentClassifier | None = None
        self.label_order = label_order(model_config)
        """The model's output index of each of :data:`~imdb_sentiment.classifier.LABELS`."""
        self._stars = rating_outputs(model_config)
        self._outputs = len(getattr(model_config, "id2label", None) or {}) or 2
        limit = max_model_length(model_config, encoder)
        self.max_length = check_length(min(DEFAULT_MAX_LENGTH, limit) if max_length is None
                                       else max_length, limit, encoder.special_count)
        check_choice("truncation", truncation, TRUNCATIONS)
        budget = self.max_length - encoder.special_count
        if head_tokens is not None and not 0 <= head_tokens <= budget:
            raise UserError(f"head tokens must be in [0, {budget}], got {head_tokens}")
        if chunk_overlap is None:  # a quarter of the window at most, so short windows still advance
            chunk_overlap = min(DEFAULT_CHUNK_OVERLAP, budget // 4)
        if not 0 <= chunk_overlap < budget:
            raise UserError(f"chunk overlap must be in [0, {budget}), got {chunk_overlap}")
        device = getattr(backend, "device", "cpu")
        batch_size = default_batch_size(device) if batch_size is None else batch_size
        if batch_size <= 0:
            raise UserError(f"batch size must be positive, got {batch_size}")
        check_choice("cleaning", cleaning, CLEANINGS)
        self.truncation = truncation
        self.head_tokens = head_budget(budget, head_tokens)
        self.chunk_overlap = chunk_overlap
        self.cleaning = cleaning
        self.batch_size = batch_size
        self.max_batch_tokens = default_batch_tokens(inputs.max_batch_tokens, device)

    @property
    def model(self) -> Any:
        """The underlying ``transformers`` model (PyTorch back end) or ONNX Runtime session."""
        if isinstance(self.backend, TorchBackend):
            return self.backend.model
        return getattr(self.backend, "session", None)

    @property
    def precision(self) -> str:
        return self.backend.precision

    @property
    def device(self) -> str:
        return getattr(self.backend, "device", "cpu")

    @classmethod
    def load(cls, id_or_path: str | os.PathLike[str], *, config: InferenceConfig | None = None,
             device: str | None = None, precision: str | None = None, backend: str | None = None,
             max_length: int | None = None, truncation: str | None = None, head_tokens: int | None = None,
             chunk_overlap: int | None = None, batch_size: int | None = None,
             max_batch_tokens: int | str | None = "auto", trust_remote_code: bool | None = None
             ) -> SentimentClassifier:
        """Load a fine-tuned model folder, a Hub id, or a folder from ``imdb-sentiment export``.

        Settings come as an :class:`InferenceConfig` (``config``) or as keyword options, which
        override it (an option left at its default keeps the config's value). ``precision``:
        ``auto`` (bf16 on GPUs and CPUs with bf16 units, else fp32), ``fp32``, ``bf16`` or
        ``int8`` (CPU). ``backend``: ``torch`` (default); ``onnx`` (ONNX Runtime on a cached
        one-time export, int8 unless ``precision="fp32"``); or ``auto``: ONNX Runtime int8 on CPUs
        without bf16 units (the fastest there, accuracy close to fp32: see benchmarks/), else
        torch. A folder from ``imdb-sentiment export`` always runs on ONNX
        Runtime. Unset input options fall back to what the model was trained with
        (``train_config.toml``: length, truncation, cleaning), then to the defaults, so
        predictions see reviews the way training did. ``max_batch_tokens`` caps the padded tokens
        per batch (``auto``: 1,024 on CPUs, where a few long inputs per batch run fastest; 64 Ki
        on GPUs, where many rows per batch do); the default batch size is 32 rows on CPUs and
        1,024 on GPUs.
        """
        settings = (config or InferenceConfig()).with_options(
            device=device, precision=precision, backend=backend, max_length=max_length, truncation=truncation,
            head_tokens=head_tokens, chunk_overlap=chunk_overlap, batch_size=batch_size,
            trust_remote_code=trust_remote_code)
        if max_batch_tokens != "auto":  # None is a setting here (rows only), so "auto" means not given
            settings = dataclasses.replace(settings, max_batch_tokens=max_batch_tokens)
        device, precision, backend = settings.device, settings.precision, settings.backend
        check_encoder_backend(backend)
        trust_remote_code = settings.trust_remote_code
        folder = Path(str(id_or_path)).expanduser()
        if not folder.is_dir():  # a file, a missing path or an unreachable Hub fails before any slow import
            resolve_model_source(id_or_path)
        else:  # files, tokenizer and labels: one line now, before any export starts or says so
            check_model_folder(folder, weights=not (folder / ONNX_META).is_file())
        trained = trained_settings(folder) if folder.is_dir() else {}
        options = {**trained, **settings.input_settings(), "max_batch_tokens": settings.max_batch_tokens}
        if (folder / ONNX_META).is_file():  # an export folder has no PyTorch weights
            return cls._load_onnx(folder, device or "cpu", precision, options)
        if folder.is_dir() and measures_engine(backend, device, precision):
            return cls._load_fastest(folder, trust_remote_code, options)
        if folder.is_dir() and wants_onnx(backend, device, precision):
            return cls._load_cached_onnx(folder, device, precision, trust_remote_code, options)
        if backend == "onnx":
            raise UserError("the onnx backend needs a local model folder or an export folder")
        return cls._load_torch(id_or_path, device, precision, trust_remote_code, options)

    @classmethod
    def _load_fastest(cls, folder: Path, trust_remote_code: bool, options: dict[str, Any]
                      ) -> SentimentClassifier:
        """The engine measured fastest for this model on this CPU (see ``engines``)."""
        loaded: dict[str, SentimentClassifier] = {}

        def load(engine: Any) -> SentimentClassifier:
            load_engine = cls._load_cached_onnx if engine.backend == "onnx" else cls._load_torch
            loaded[engine.name] = load_engine(folder, "cpu", engine.precision, trust_remote_code, options)
            return loaded[engine.name]

        choice = choose_cpu_engine(folder, load)
        classifier = loaded.get(choice.engine.name) or load(choice.engine)
        classifier.engine_reason = choice.reason
        return classifier

    @classmethod
    def _load_cached_onnx(cls, folder: Path, device: str | None, precision: str, trust_remote_code: bool,
                          options: dict[str, Any]) -> SentimentClassifier:
        from .exporters.onnx import cached_export

        export, _ = cached_export(folder, None if precision == "fp32" else "int8",
                                  trust_remote_code=trust_remote_code)
        loaded = cls._load_onnx(export, device or "cpu", "auto", options)
        loaded.name = str(folder)
        loaded._pytorch_source = (str(folder), trust_remote_code)
        return loaded

    @classmethod
    def _load_torch(cls, id_or_path: str | os.PathLike[str], device: str | None, precision: str,
                    trust_remote_code: bool, options: dict[str, Any]) -> SentimentClassifier:
        from .modeling import default_device, load_classifier, resolve_precision

        device = device or default_device()
        check_device(device)
        if precision != "int8":
            precision = resolve_precision(precision, device)
        model, tokenizer = load_classifier(id_or_path, trust_remote_code=trust_remote_code)
        backend = TorchBackend(model, device, precision, tokenizer.model_input_names)
        encoder = TextEncoder.from_transformers(tokenizer)
        loaded = cls(backend, encoder, model.config, InputSettings(**options), name=str(id_or_path),
                     tokenizer=tokenizer)
        loaded._pytorch_source = (str(id_or_path), trust_remote_code)
        return loaded

    @classmethod
    def _load_onnx(cls, folder: Path, device: str, precision: str,
                   options: dict[str, Any]) -> SentimentClassifier:
        meta = _read_json(folder / ONNX_META) or {}
        exported = str(meta.get("precision", "fp32"))
        if precision not in ("auto", exported):
            raise UserError(f"{folder} is an ONNX export with {exported} weights; "
                            f"--precision {precision} does not apply (re-export to change it)")
        config = folder_config(folder)
        backend = OnnxBackend(folder / str(meta.get("file", "model.onnx")), device, exported)
        return cls(backend, TextEncoder.from_folder(folder), config, InputSettings(**options),
                   name=str(meta.get("source") or folder))

    # ------------------------------------------------------------------ public API

    def info(self) -> dict[str, Any]:
        """What produces the predictions, including how long reviews are handled."""
        return {
            "model": self.name,
            "backend": self.backend.name,
            "device": self.device,
            "precision": self.precision,
            "labels": list(self.labels),
            "max_length": self.max_length,
            "truncation": self.truncation,
            "head_tokens": self.head_tokens if self.truncation == "head-tail" else None,
            "tail_tokens": self.max_length - self.encoder.special_count - self.head_tokens
            if self.truncation == "head-tail" else None,
            "chunk_overlap": self.chunk_overlap if self.truncation == "chunks" else None,
            "cleaning": self.cleaning,
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "engine_reason": self.engine_reason or "as requested (backend and precision options)",
            "version": __version__,
        }

    def gradient_classifier(self) -> SentimentClassifier:
        """This model with gradients, for explanations.

        Itself when it runs on PyTorch in fp32 or bf16. Otherwise (ONNX Runtime, int8) the PyTorch
        weights it was loaded from, in fp32 on the same device with the same input settings: loaded
        on the first call, so prediction alone never pays for them, and kept for later calls.
        """
        if isinstance(self.backend, TorchBackend) and self.precision != "int8":
            return self
        with _GRADIENT_LOADING:
            if self._gradient_model is None:
                if self._pytorch_source is None:
                    raise UserError(f"{self.name} is an ONNX export without PyTorch weights, so it has no "
                                    "gradients to explain; explain the PyTorch model folder it was "
                                    "exported from")
                source, trust_remote_code = self._pytorch_source
                settings = {"max_length": self.max_length, "truncation": self.truncation,
                            "head_tokens": self.head_tokens, "chunk_overlap": self.chunk_overlap,
                            "cleaning": self.cleaning, "batch_size": self.batch_size,
                            "max_batch_tokens": self.max_batch_tokens}
                self._gradient_model = self._load_torch(source, self.device, "fp32", trust_remote_code,
                                                        settings)
            return self._gradient_model

    def predict_details(self, texts: Sequence[str], batch_size: int | None = None,
                        progress: Progress | None = None, *, cache: bool = False) -> Details:
        """Probabilities plus, per text, its token count, whether it was cut and its windows.

        ``cache``: reuse (or store) the texts' tokens in the token cache (large scoring runs).
        """
        windows = self.windows(texts, cache=cache)
        count = len(windows.tokens)
        logits = self._run(windows, batch_size or self.batch_size, progress)
        counts = np.bincount(windows.owners, minlength=count)
        summed = np.zeros((count, logits.shape[1]), dtype=np.float64)
        np.add.at(summed, windows.owners, logits)  # chunks: average the windows' logits
        mean = summed / np.maximum(counts, 1)[:, None]
        from .ratings import to_stars

        stars = (None if self._stars is None
                 else to_stars(mean[:, list(self._stars)], list(self._stars.values())))
        return Details(_softmax(mean[:, self.label_order]).astype(np.float32), windows.tokens,
                       windows.truncated, counts, stars)

    def windows(self, texts: Sequence[str], *, cache: bool = False) -> Windows:
        """The model inputs of ``texts``: cleaned, tokenized (or read from the cache) and cut."""
        from .data import clean_text

        texts = [clean_text(text, self.cleaning) for text in check_texts(texts)]
        tokens: TokenArrays | None = None
        if cache:
            from .token_cache import cached_tokens

            tokens = cached_tokens(self.encoder, texts)
        return make_windows(self.encoder, texts, self.max_length, self.truncation, self.head_tokens,
                            self.chunk_overlap, tokens)

    # ------------------------------------------------------------------ internals

    def _run(self, windows: Windows, batch_size: int, progress: Progress | None) -> np.ndarray:
        lengths = windows.lengths
        order = np.argsort(-lengths, kind="stable")  # longest first: memory errors show up at once
        out = np.empty((len(lengths), self._outputs), dtype=np.float32)
        # Progress counts reviews: a window is 1/(its review's window count) of a review.
        share = 1.0 / np.bincount(windows.owners)[windows.owners] if len(lengths) else np.zeros(0)
        done = 0.0
        parts = [order[part] for part in batch_slices(lengths[order], batch_size, self.max_batch_tokens)]
        prepare = getattr(self.backend, "prepare", None)
        run = getattr(self.backend, "run", self.backend)

        def assemble(rows: np.ndarray) -> tuple[np.ndarray, Any]:
            batch = self._batch(windows, rows)
            return rows, prepare(batch) if prepare is not None else batch

        # The next batches are padded (and, on CUDA, copied) while the model runs this one.
        for rows, inputs in prefetch(parts, assemble):  # type: ignore[arg-type]
            out[rows] = run(inputs)
            if progress is not None:
                before, done = done, done + float(share[rows].sum())
                progress(round(done) - round(before))
        return out

    def _batch(self, windows: Windows, rows: np.ndarray) -> dict[str, np.ndarray]:
        ids, mask = windows.batch(rows, self.encoder.pad_id)
        batch = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.backend.input_names:
            batch["token_type_ids"] = np.zeros_like(ids)
        return batch


# --------------------------------------------------------------------------- helpers


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path}: {error}") from error
    return data if isinstance(data, dict) else None


def trained_settings(folder: Path) -> dict[str, Any]:
    """Input settings a model was fine-tuned with (its ``train_config.toml``), if recorded."""
    from .config import train_config_from_file

    file = folder / "train_config.toml"
    if not file.is_file():
        return {}
    config, run = train_config_from_file(file)
    found: dict[str, Any] = {"max_length": config.max_length, "truncation": config.truncation,
                             "head_tokens": config.head_tokens}
    if run.get("cleaning"):
        found["cleaning"] = str(run["cleaning"])
    return {key: value for key, value in found.items() if value is not None}
