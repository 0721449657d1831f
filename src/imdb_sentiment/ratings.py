"""Star ratings (1-10) next to the polarity: the rating head's outputs, loss and metrics.

A model trained with ``train --target rating`` has the NEGATIVE and POSITIVE logits, as every
classifier here, plus one logit per star rating IMDB uses (``STARS_1`` ... ``STARS_4``,
``STARS_7`` ... ``STARS_10``; 5 and 6 do not occur). The predicted rating is the median of the
star distribution. Classes with the median were chosen over regression and over cumulative
(ordinal) thresholds by measurement (``benchmarks/rating_head.py``, bag-of-words features,
validation carved from train by movie): ratings are bimodal (1 and 10 are the commonest), so a
regression drifts to the middle and is rarely within a star, while the median of the classes
lands on a rating people give. Polarity keeps its own two logits rather than being derived from
the stars: the shared encoder learns both, the classifier's probabilities stay those of a
binary head, and ``predict``/``serve``/``evaluate`` work unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd

STAR_CLASSES = (1, 2, 3, 4, 7, 8, 9, 10)
"""The ratings IMDB reviews carry (negative 1-4, positive 7-10)."""
RATING_LABELS = {0: "NEGATIVE", 1: "POSITIVE",
                 **{2 + i: f"STARS_{stars}" for i, stars in enumerate(STAR_CLASSES)}}
"""The outputs of a rating model (names as ``modeling.STARS_PREFIX`` expects)."""
MIDPOINT = 5.5


def to_stars(logits: Any, values: Any) -> np.ndarray:
    """The median rating of each row's star distribution (``values``: the stars of the columns)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    cumulative = np.cumsum(shifted / shifted.sum(axis=1, keepdims=True), axis=1)
    return np.asarray(values, dtype=np.float64)[(cumulative >= 0.5).argmax(axis=1)]


def check_ratings(frame: pd.DataFrame, where: str) -> None:
    """A one-line error unless every review of ``frame`` has a star rating the head can learn."""
    if "rating" not in frame.columns:
        raise UserError(f"--target rating needs a 'rating' column (1-10 stars) in {where}; this data has "
                        "none (use --target label)")
    bad = int((~np.isin(np.asarray(frame["rating"]), STAR_CLASSES)).sum())
    if bad:
        raise UserError(f"--target rating needs star ratings {'/'.join(map(str, STAR_CLASSES))} "
                        f"(as on IMDB); {bad} review(s) in {where} have none or another value")


def rating_metrics(true: Any, stars: Any) -> dict[str, float]:
    """``mae`` (mean absolute error in stars) and ``within_one_star`` (share off by at most one)."""
    error = np.abs(np.asarray(stars, dtype=np.float64) - np.asarray(true, dtype=np.float64))
    if not len(error):
        return {"mae": float("nan"), "within_one_star": float("nan")}
    return {"mae": round(float(error.mean()), 4), "within_one_star": round(float((error <= 1).mean()), 4)}


# --------------------------------------------------------------------------- training


def star_targets(ratings: Any) -> list[int]:
    """Each rating's index among the star outputs."""
    position = {stars: index for index, stars in enumerate(STAR_CLASSES)}
    return [position[int(value)] for value in ratings]


def rating_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the polarity plus cross-entropy of the star rating (equal weight).

    ``labels`` holds ``[class index, star index]`` per review (``Trainer``'s ``compute_loss_func``).
    ``Trainer`` counts ``num_items_in_batch`` over the label values of every batch one optimizer
    step accumulates (two per review): the summed loss is divided by those reviews, so gradient
    accumulation averages as one large batch would, instead of adding a batch mean per batch.
    """
    import torch.nn.functional as F

    logits = (outputs["logits"] if isinstance(outputs, dict) else outputs[0]).float()
    losses = (F.cross_entropy(logits[:, :2], labels[:, 0].long(), reduction="none")
              + F.cross_entropy(logits[:, 2:], labels[:, 1].long(), reduction="none"))
    if num_items_in_batch is None:
        return losses.mean()
    return losses.sum() / (num_items_in_batch / labels.shape[-1])


def evaluation_metrics(logits: np.ndarray, label_ids: np.ndarray) -> dict[str, float]:
    """Per-epoch validation metrics of a rating model: accuracy, MAE, within one star."""
    accuracy = float((logits[:, :2].argmax(axis=-1) == label_ids[:, 0]).mean())
    true = np.asarray(STAR_CLASSES)[label_ids[:, 1]]
    return {"accuracy": accuracy, **rating_metrics(true, to_stars(logits[:, 2:], STAR_CLASSES))}

