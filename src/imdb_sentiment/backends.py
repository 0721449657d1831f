"""The back ends that run a classifier's network: PyTorch and ONNX Runtime.

Both take padded int64 inputs and give float32 logits; everything around them (tokenizing,
cutting, batching, averaging windows) is :class:`~imdb_sentiment.inference.SentimentClassifier`'s.
PyTorch runs fp32, bf16 autocast where the hardware has bf16 units, or int8 dynamic quantization;
ONNX Runtime runs folders written by ``imdb-sentiment export`` (and the cached exports of the
``onnx`` back end) and needs neither torch nor transformers, so it also starts fast. Which one
runs a model is :mod:`imdb_sentiment.engines`'s choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import UserError, first_line

if TYPE_CHECKING:
    from transformers import PreTrainedModel


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
            raise UserError(f"cannot load ONNX model {path}: {first_line(error)}") from error
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


def check_device(device: str) -> None:
    """A one-line refusal of a device this machine lacks or no back end knows."""
    if device == "cpu":
        return
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but no CUDA GPU is available; use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' requested but Apple MPS is not available; use --device cpu")
    if not device.startswith(("cuda", "mps")):
        raise UserError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps")
