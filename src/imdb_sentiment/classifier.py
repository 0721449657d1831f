"""What every classifier offers: the :class:`Classifier` protocol and the parts its implementations share.

A :class:`~imdb_sentiment.inference.SentimentClassifier` (one transformer) and a
:class:`~imdb_sentiment.hybrid.HybridClassifier` (a bag-of-words screen in front of one) both
implement it, so ``predict``, ``serve``, ``evaluate``, Ray scoring and explanations take either.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import UserError
from .modeling import ID2LABEL

LABELS: tuple[str, str] = (ID2LABEL[0], ID2LABEL[1])
"""The label of each probability column: ``predict_proba(texts)[:, k]`` is P(``LABELS[k]``)."""
PROMPTED_LLM = "prompted-llm"
"""A prompted language model: the ``model_kind`` tag of its evaluation, the report's stage for it and
what a hybrid records of such a transformer."""


Progress = Callable[[int], Any]
"""Hears how many more reviews are done."""


@dataclass
class Details:
    """Per-text results of :meth:`Classifier.predict_details`."""

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


@runtime_checkable
class Classifier(Protocol):
    """A loaded sentiment classifier: what prediction, serving, evaluation and explanations use.

    Implementations subclass it to share :meth:`predict_proba` and :meth:`predict`, which come
    from :meth:`predict_details`.
    """

    labels: tuple[str, str] = LABELS
    name: str
    """The model as it was given (a folder or a Hub id)."""
    max_length: int
    """Tokens per model input, special tokens included."""
    truncation: str
    """How a long review is cut: ``head``, ``head-tail`` or ``chunks``."""
    head_tokens: int
    """With ``head-tail``: tokens kept from the start."""
    batch_size: int
    """Default rows per forward pass."""
    device: str
    precision: str

    @abstractmethod
    def predict_details(self, texts: Sequence[str], batch_size: int | None = None,
                        progress: Progress | None = None, *, cache: bool = False) -> Details:
        """Probabilities plus, per text, its token count, whether it was cut and its windows.

        ``cache``: reuse (or store) the texts' tokens in the token cache (large scoring runs).
        """

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """What produces the predictions (model, back end, device, input settings, ...)."""

    @abstractmethod
    def gradient_classifier(self) -> Classifier:
        """The transformer with gradients, a PyTorch :class:`~imdb_sentiment.inference.SentimentClassifier`,
        for explanations."""

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: Progress | None = None) -> np.ndarray:
        """Probabilities ``[p(negative), p(positive)]`` per text, in input order."""
        return self.predict_details(texts, batch_size, progress).probabilities

    def predict(self, texts: Sequence[str], batch_size: int | None = None,
                progress: Progress | None = None) -> list[dict[str, Any]]:
        """``[{"label": "POSITIVE"|"NEGATIVE", "score": probability of that label}, ...]``."""
        return to_predictions(self.predict_proba(texts, batch_size, progress))


def to_predictions(probabilities: np.ndarray) -> list[dict[str, Any]]:
    """Label and score (the probability of that label) per row of class probabilities."""
    winners = probabilities.argmax(axis=1)
    return [{"label": LABELS[int(k)], "score": float(p[k])}
            for k, p in zip(winners, probabilities, strict=True)]


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of strings; a single string, or an item that is not one, is a one-line error."""
    if isinstance(texts, str):
        raise UserError("pass a list of texts, not a single string")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserError(f"text {index} is not a string ({type(text).__name__})")
    return texts
