"""Fast, safe batched prediction with a fine-tuned sentiment classifier.

Texts are tokenized once without any cut; each review is then cut (``head``, ``head-tail``) or
split into overlapping windows (``chunks``) by a recorded strategy, so a long review is never
an error and never silently shortened. Windows are sorted by length so each batch pads little,
and results come back in input order.

Two back ends share that path: PyTorch (fp32, bf16 autocast where the hardware has bf16 units,
int8 dynamic quantization) and ONNX Runtime for folders written by ``imdb-sentiment export``.
The ONNX path needs neither torch nor transformers, so it also starts fast.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import numpy as np

from . import __version__
from .batching import batch_slices, default_batch_size, default_batch_tokens, prefetch
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
from .errors import UserError
from .exporters.onnx import ONNX_META
from .modeling import ID2LABEL, check_model_folder, folder_config, label_order, resolve_model_source
from .tables import OUTPUT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedModel

__all__ = ["BACKENDS", "PRECISIONS", "TRUNCATIONS", "InferenceConfig", "SentimentClassifier", "TextEncoder",
           "Windows", "batch_slices", "chunk_spans", "make_windows"]

DEFAULT_TRUNCATION = "head-tail"
DEFAULT_MAX_LENGTH = 512
DEFAULT_CHUNK_OVERLAP = 128

Progress = Callable[[int], Any]

_GRADIENT_LOADING = threading.Lock()
"""One PyTorch load at a time for :meth:`SentimentClassifier.gradient_classifier`."""


# --------------------------------------------------------------------------- back ends


class Backend(Protocol):
    """Runs the network: padded int64 inputs in, float32 logits ``[rows, labels]`` out."""

    name: str
    precision: str
    input_names: list[str]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


class TorchBackend:
    """A ``transformers`` model under ``inference_mode``; bf16 autocast or int8 Linear layers."""

    name = "torch"

    def __init__(self, model: PreTrainedModel, device: str, precision: str,
                 input_names: Sequence[str]) -> None:
        import torch

        model.eval()
        if precision == "int8":
            if device != "cpu":
                raise UserError("int8 precision runs on the CPU only; use --device cpu or --precision auto")
            import warnings

            with warnings.catch_warnings():  # torch notes that quantized tensors will move to torchao
                warnings.simplefilter("ignore")
                # Dynamic quantization: int8 weights, activations quantized per batch on the fly.
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model.to(device)
        self.device = device
        self.precision = precision
        self.input_names = [name for name in input_names
                            if name in ("input_ids", "attention_mask", "token_type_ids")]
        self._torch = torch

    def prepare(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """Tensors on the device; on CUDA through pinned memory with a non-blocking copy, so the
        prefetch thread's copy of the next batch overlaps with the GPU running this one."""
        torch = self._torch
        if not self.device.startswith("cuda"):
            return {key: torch.from_numpy(value).to(self.device) for key, value in batch.items()}
        return {key: torch.from_numpy(value).pin_memory().to(self.device, non_blocking=True)
                for key, value in batch.items()}

    def run(self, inputs: dict[str, Any]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), self._autocast():
            logits = self.model(**inputs).logits
        return logits.float().cpu().numpy()

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.run(self.prepare(batch))

    def _autocast(self) -> Any:
        import contextlib

        if self.precision != "bf16":
            return contextlib.nullcontext()
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        return self._torch.autocast(device_type=device_type, dtype=self._torch.bfloat16)


class OnnxBackend:
    """An ONNX Runtime session over ``model.onnx`` from ``imdb-sentiment export``."""

    name = "onnx"

    def __init__(self, path: Path, device: str, precision: str) -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UserError("this ONNX Runtime build has no CUDA support; use --device cpu")
            providers.insert(0, "CUDAExecutionProvider")
        elif device != "cpu":
            raise UserError(f"ONNX models run on cpu or cuda, not {device!r}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # ORT raises its own exception types
            raise UserError(f"cannot load ONNX model {path}: {str(error).splitlines()[0]}") from error
        self.device = device
        self.precision = precision
        self.input_names = [item.name for item in self.session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        if self.precision == "int8" and len(batch["input_ids"]) > 1:
            return self._one_row_at_a_time(batch)
        feed = {name: batch[name] for name in self.input_names}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)

    def _one_row_at_a_time(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Dynamic int8 quantization scales activations by the whole input tensor, so in a batch a
        review's score would depend on its neighbours and their padding (by up to 0.1 in P(positive)
        on the shared MiniLM). Each row runs alone, unpadded: the same review always gets the same
        answer, at no cost on a CPU (9.1 against 8.8 reviews/s batched, 2 AVX2 cores)."""
        lengths = batch["attention_mask"].sum(axis=1) if "attention_mask" in batch else None
        out = []
        for i in range(len(batch["input_ids"])):
            end = int(lengths[i]) if lengths is not None else batch["input_ids"].shape[1]
            feed = {name: batch[name][i : i + 1, :end] for name in self.input_names}
            out.append(self.session.run(None, feed)[0])
        return np.asarray(np.concatenate(out), dtype=np.float32)


# --------------------------------------------------------------------------- classifier


@dataclass
class Details:
    """Per-text results of :meth:`SentimentClassifier.predict_details`."""

    probabilities: np.ndarray
    """``[p(negative), p(positive)]`` per text."""
    tokens: np.ndarray
    truncated: np.ndarray
    windows: np.ndarray
    """Model windows per text (more than one only with ``chunks``)."""
    stars: np.ndarray | None = None
    """Predicted star rating (1-10) per text, from models trained with ``--target rating``."""
    decided_by: np.ndarray | None = None
    """Hybrid models only: ``screen``, ``transformer`` or ``blend`` per text."""


class SentimentClassifier:
    """A loaded classifier: ``predict`` gives labels, ``predict_proba`` class probabilities."""

    def __init__(self, backend: Backend, encoder: TextEncoder, model_config: Any, *,
                 max_length: int | None = None, truncation: str = DEFAULT_TRUNCATION,
                 head_tokens: int | None = None, chunk_overlap: int | None = None,
                 cleaning: str = "basic", batch_size: int | None = None,
                 max_batch_tokens: int | str | None = "auto", name: str = "", tokenizer: Any = None) -> None:
        from .data import CLEANINGS
        from .modeling import rating_outputs

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
        self._order = label_order(model_config)
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
        self.max_batch_tokens = default_batch_tokens(max_batch_tokens, device)

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
             max_batch_tokens: int | str | None = "auto", trust_remote_code: bool = False
             ) -> SentimentClassifier:
        """Load a fine-tuned model folder, a Hub id, or a folder from ``imdb-sentiment export``.

        Settings come as an :class:`InferenceConfig` (``config``) or as keyword options, which
        override it. ``precision``: ``auto`` (bf16 on GPUs and CPUs with bf16 units, else fp32),
        ``fp32``, ``bf16`` or ``int8`` (CPU). ``backend``: ``torch`` (default); ``onnx`` (ONNX
        Runtime on a cached one-time export, int8 unless ``precision="fp32"``); or ``auto``: ONNX
        Runtime int8 on CPUs without bf16 units (the fastest there, accuracy close to fp32: see
        benchmarks/), else torch. A folder from ``imdb-sentiment export`` always runs on ONNX
        Runtime. Unset input options fall back to what the model was trained with
        (``train_config.toml``: length, truncation, cleaning), then to the defaults, so
        predictions see reviews the way training did. ``max_batch_tokens`` caps the padded tokens
        per batch (``auto``: 1,024 on CPUs, where a few long inputs per batch run fastest; 64 Ki
        on GPUs, where many rows per batch do); the default batch size is 32 rows on CPUs and
        1,024 on GPUs.
        """
        import dataclasses

        given = {"device": device, "precision": precision, "backend": backend, "max_length": max_length,
                 "truncation": truncation, "head_tokens": head_tokens, "chunk_overlap": chunk_overlap,
                 "batch_size": batch_size}
        settings = dataclasses.replace(config or InferenceConfig(),
                                       **{key: value for key, value in given.items() if value is not None})
        if max_batch_tokens != "auto":
            settings = dataclasses.replace(settings, max_batch_tokens=max_batch_tokens)
        device, precision, backend = settings.device, settings.precision, settings.backend
        folder = Path(str(id_or_path)).expanduser()
        if not folder.is_dir():  # a file, a missing path or an unreachable Hub fails before any slow import
            resolve_model_source(id_or_path)
        else:  # files, tokenizer and labels: one line now, before any export starts or says so
            check_model_folder(folder, weights=not (folder / ONNX_META).is_file())
        trained = trained_settings(folder) if folder.is_dir() else {}
        options = {**trained, **settings.input_settings(), "max_batch_tokens": settings.max_batch_tokens}
        if (folder / ONNX_META).is_file():  # an export folder has no PyTorch weights
            return cls._load_onnx(folder, device or "cpu", precision, options)
        if folder.is_dir() and _measures_engine(backend, device, precision):
            return cls._load_fastest(folder, trust_remote_code, options)
        if folder.is_dir() and _wants_onnx(backend, device, precision):
            return cls._load_cached_onnx(folder, device, precision, trust_remote_code, options)
        if backend == "onnx":
            raise UserError("the onnx backend needs a local model folder or an export folder")
        return cls._load_torch(id_or_path, device, precision, trust_remote_code, options)

    @classmethod
    def _load_fastest(cls, folder: Path, trust_remote_code: bool, options: dict[str, Any]
                      ) -> SentimentClassifier:
        """The engine measured fastest for this model on this CPU (see ``engines``)."""
        from .engines import choose_cpu_engine

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
        _check_device(device)
        if precision != "int8":
            precision = resolve_precision(precision, device)
        model, tokenizer = load_classifier(id_or_path, trust_remote_code=trust_remote_code)
        backend = TorchBackend(model, device, precision, tokenizer.model_input_names)
        encoder = TextEncoder.from_transformers(tokenizer)
        loaded = cls(backend, encoder, model.config, name=str(id_or_path), tokenizer=tokenizer, **options)
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
        return cls(backend, TextEncoder.from_folder(folder), config,
                   name=str(meta.get("source") or folder), **options)

    # ------------------------------------------------------------------ public API

    def info(self) -> dict[str, Any]:
        """What produces the predictions, including how long reviews are handled."""
        return {
            "model": self.name,
            "backend": self.backend.name,
            "device": self.device,
            "precision": self.precision,
            "labels": [ID2LABEL[0], ID2LABEL[1]],
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

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: Progress | None = None) -> np.ndarray:
        """Probabilities ``[p(negative), p(positive)]`` per text, in input order."""
        return self.predict_details(texts, batch_size, progress).probabilities

    def predict(self, texts: Sequence[str], batch_size: int | None = None,
                progress: Progress | None = None) -> list[dict[str, Any]]:
        """``[{"label": "POSITIVE"|"NEGATIVE", "score": probability of that label}, ...]``."""
        return to_predictions(self.predict_proba(texts, batch_size, progress))

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
        return Details(_softmax(mean[:, self._order]).astype(np.float32), windows.tokens,
                       windows.truncated, counts, stars)

    def windows(self, texts: Sequence[str], *, cache: bool = False) -> Windows:
        """The model inputs of ``texts``: cleaned, tokenized (or read from the cache) and cut."""
        from .data import clean_text

        texts = [clean_text(text, self.cleaning) for text in _check_texts(texts)]
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


def to_predictions(probabilities: np.ndarray) -> list[dict[str, Any]]:
    """Label and score (the probability of that label) per row of class probabilities."""
    winners = probabilities.argmax(axis=1)
    return [{"label": ID2LABEL[int(k)], "score": float(p[k])}
            for k, p in zip(winners, probabilities, strict=True)]


# --------------------------------------------------------------------------- helpers


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise UserError("pass a list of texts, not a single string")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserError(f"text {index} is not a string ({type(text).__name__})")
    return texts


def _measures_engine(backend: str, device: str | None, precision: str) -> bool:
    """``auto`` everything on a CPU: the engine is chosen by measuring (see ``engines``)."""
    if backend != "auto" or precision != "auto" or device not in (None, "cpu"):
        return False
    return device == "cpu" or not _may_have_accelerator()  # GPUs run PyTorch (bf16 where supported)


def _wants_onnx(backend: str, device: str | None, precision: str) -> bool:
    """Whether to run a PyTorch model folder through a cached ONNX Runtime export."""
    if backend == "onnx":
        if precision == "bf16":
            raise UserError("ONNX Runtime runs int8 or fp32 here; use --precision int8, fp32 or auto")
        return True
    if backend != "auto" or precision != "int8":
        return False
    if device not in (None, "cpu") or (device is None and _may_have_accelerator()):
        return False
    try:
        import importlib.util

        return all(importlib.util.find_spec(name) for name in ("onnxruntime", "onnx"))
    except (ImportError, ValueError):
        return False


def _may_have_accelerator() -> bool:
    """A cheap look for a GPU (no torch import): NVIDIA driver files or an Apple-silicon Mac."""
    import platform

    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return True
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but no CUDA GPU is available; use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' requested but Apple MPS is not available; use --device cpu")
    if not device.startswith(("cuda", "mps")):
        raise UserError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps")


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


# --------------------------------------------------------------------------- files


@dataclass
class FileSummary:
    rows: int
    scored: int
    bad_rows: int
    seconds: float
    columns: list[str]
    """Names of the label, score, truncated and error columns (see ``tables.free_names``)."""
    added: list[str] | None = None
    """Every added column, in order (``stars`` and ``decided_by`` too, where the model has them)."""

    @property
    def renamed(self) -> bool:
        """Whether the input had columns named like the results, so the results took other names."""
        return not set(self.added or self.columns) <= {*OUTPUT_COLUMNS, "stars", "decided_by"}


def predict_frame(classifier: SentimentClassifier, frame: pd.DataFrame, text_column: str = "text", *,
                  batch_size: int | None = None, progress: Progress | None = None
                  ) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` plus label, score, (stars,) truncated, error (and decided_by) columns; bad rows
    (see :func:`tables.row_problem`) get only an error and are never tokenized.

    Returns the new frame and the names of its label, score, truncated and error columns: an
    input column is never overwritten (see :func:`tables.free_names`).
    """
    from .tables import add_columns, row_problem

    problems = [row_problem(value) for value in frame[text_column].tolist()]
    good = [i for i, problem in enumerate(problems) if problem is None]
    if progress is not None and len(good) < len(frame):
        progress(len(frame) - len(good))  # bad rows are done at once
    details = classifier.predict_details([frame[text_column].iat[i] for i in good], batch_size, progress)
    labels: list[str | None] = [None] * len(frame)
    scores = np.full(len(frame), np.nan)
    truncated: list[bool | None] = [None] * len(frame)
    for slot, (i, item) in enumerate(zip(good, to_predictions(details.probabilities), strict=True)):
        labels[i], scores[i], truncated[i] = item["label"], item["score"], bool(details.truncated[slot])
    columns: dict[str, Sequence[object]] = {"label": labels, "score": scores}
    if details.stars is not None:  # a rating model: stars after the score
        stars = np.full(len(frame), np.nan)
        stars[good] = np.round(details.stars, 2)
        columns["stars"] = stars
    columns.update(truncated=truncated, error=problems)
    if details.decided_by is not None:  # a hybrid: which part decided each review
        decided: list[str | None] = [None] * len(frame)
        for slot, i in enumerate(good):
            decided[i] = str(details.decided_by[slot])
        columns["decided_by"] = decided
    out, names = add_columns(frame, columns)
    return out, [names[name] for name in OUTPUT_COLUMNS]


def predict_file(classifier: SentimentClassifier, input_path: Path, output_path: Path | None, *,
                 text_column: str = "text", batch_size: int | None = None, overwrite: bool = False,
                 progress: Progress | None = None, on_rows: Progress | None = None,
                 output_format: str | None = None, reviews: pd.DataFrame | None = None,
                 stream: BinaryIO | None = None) -> FileSummary:
    """Score every row of ``input_path`` into ``output_path`` (atomically); bad rows are marked.

    Without ``output_path`` the results go to ``stream`` (stdout) as ``output_format`` (csv).
    ``reviews`` is the file already read by :func:`tables.read_reviews`, if it was. ``on_rows``
    hears the row count once the file is read (e.g. to size a progress bar).
    """
    import time

    from .tables import check_output_file, check_output_format, read_reviews, write_stream, write_table

    if output_path is not None:
        check_output_file(output_path, input_path, overwrite, output_format)
    else:
        check_output_format(output_format)
    frame = reviews if reviews is not None else read_reviews(input_path, text_column)
    if on_rows is not None:
        on_rows(len(frame))
    started = time.perf_counter()
    scored, names = predict_frame(classifier, frame, text_column, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - started
    if output_path is not None:
        write_table(scored, Path(output_path), output_format)
    else:
        write_stream(scored, output_format or "csv", stream)
    bad = int(scored[names[3]].notna().sum())
    added = [str(name) for name in scored.columns[len(frame.columns):]]
    return FileSummary(len(frame), len(frame) - bad, bad, seconds, names, added)
