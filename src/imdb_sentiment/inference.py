"""Fast batched prediction with a fine-tuned sentiment classifier.

Texts are tokenized once, sorted by length so each batch pads little, run under
``torch.inference_mode`` and returned in input order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .modeling import ID2LABEL, check_max_length, encode, label_order, load_classifier

if TYPE_CHECKING:
    import torch


@dataclass
class Prediction:
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}


class SentimentClassifier:
    """A loaded classifier: ``predict`` gives labels, ``predict_proba`` class probabilities."""

    def __init__(self, model: Any, tokenizer: Any, *, device: str = "cpu", precision: str = "fp32",
                 max_length: int = 512, truncation: str = "head-tail", head_tokens: int = 128,
                 batch_size: int = 32, name: str = "") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.precision = precision
        self.max_length = check_max_length(max_length, model.config, tokenizer)
        self.truncation = truncation
        self.head_tokens = head_tokens
        self.batch_size = batch_size
        self.name = name
        self._order = label_order(model.config)
        self.model.eval()

    @classmethod
    def load(cls, id_or_path: str | os.PathLike[str], *, device: str | None = None,
             precision: str = "auto", trust_remote_code: bool = False, **options: Any
             ) -> SentimentClassifier:
        from .modeling import default_device, resolve_precision

        device = device or default_device()
        precision = resolve_precision(precision, device)
        model, tokenizer = load_classifier(id_or_path, trust_remote_code=trust_remote_code)
        model.to(device)
        return cls(model, tokenizer, device=device, precision=precision, name=str(id_or_path), **options)

    # ------------------------------------------------------------------ public API

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: Any = None) -> np.ndarray:
        """Probabilities ``[p(negative), p(positive)]`` per text, in input order."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 2), dtype=np.float32)
        encoded = encode(self.tokenizer, texts, self.max_length, self.truncation, self.head_tokens)
        return self._run(encoded, batch_size or self.batch_size, progress)

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list[dict[str, Any]]:
        """``[{"label": "POSITIVE"|"NEGATIVE", "score": probability of that label}, ...]``."""
        probabilities = self.predict_proba(texts, batch_size)
        winners = probabilities.argmax(axis=1)
        return [
            Prediction(ID2LABEL[int(k)], float(p[k])).to_dict()
            for k, p in zip(winners, probabilities, strict=True)
        ]

    # ------------------------------------------------------------------ internals

    def _run(self, encoded: dict[str, list[list[int]]], batch_size: int, progress: Any) -> np.ndarray:
        import torch

        lengths = np.array([len(ids) for ids in encoded["input_ids"]])
        order = np.argsort(-lengths, kind="stable")  # longest first: memory errors show up at once
        out = np.empty((len(lengths), 2), dtype=np.float32)
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                logits = self.model(**self._batch(encoded, rows)).logits.float()
                out[rows] = torch.softmax(logits, dim=-1)[:, self._order].cpu().numpy()
                if progress is not None:
                    progress(len(rows))
        return out

    def _batch(self, encoded: dict[str, list[list[int]]], rows: np.ndarray) -> dict[str, torch.Tensor]:
        import torch

        width = max(len(encoded["input_ids"][i]) for i in rows)
        pad_id = self.tokenizer.pad_token_id or 0
        batch = {}
        for key, values in encoded.items():
            fill = pad_id if key == "input_ids" else 0
            matrix = np.full((len(rows), width), fill, dtype=np.int64)
            for r, i in enumerate(rows):
                matrix[r, : len(values[i])] = values[i]
            batch[key] = torch.from_numpy(matrix).to(self.device)
        return batch

    def _autocast(self):
        import contextlib

        import torch

        if self.precision != "bf16":
            return contextlib.nullcontext()
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
