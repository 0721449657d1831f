"""Star ratings (1-10) next to the polarity: the rating head's target, loss and metrics.

A model trained with ``train --target rating`` has three outputs: the NEGATIVE and POSITIVE
logits, as every classifier here, and ``STARS``, a regression output for the rating scaled to
[-1, 1] (``(rating - 5.5) / 4.5``). Polarity keeps its own cross-entropy head rather than being
derived from the stars: IMDB's labels are defined by the rating (1-4 negative, 7-10 positive), but
a shared encoder with two heads keeps the classifier's probabilities calibrated and its accuracy
unchanged while the rating output learns how strong the opinion is. Regression was chosen over
ordinal classes by measurement (``benchmarks/rating_head.py``: on bag-of-words features, ridge
regression had the lowest validation MAE; see benchmarks/RESULTS.md).

Also the ``ridge-rating`` bag-of-words baseline's scoring: its stars decide the polarity (> 5.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd

TARGETS = ("label", "rating")
"""What ``train --target`` fits: the polarity alone, or the polarity and the star rating."""
RATING_LABELS = {0: "NEGATIVE", 1: "POSITIVE", 2: "STARS"}
"""The outputs of a rating model; ``STARS`` is ``modeling.STARS_LABEL``."""
MIDPOINT = 5.5
HALF_RANGE = 4.5
POLARITY_WEIGHT = 1.0
"""Cross-entropy and the squared error of the scaled rating are summed with equal weight."""


def to_target(ratings: Any) -> np.ndarray:
    """Ratings 1-10 scaled to [-1, 1], the rating output's regression target."""
    return (np.asarray(ratings, dtype=np.float32) - MIDPOINT) / HALF_RANGE


def to_stars(outputs: Any) -> np.ndarray:
    """The rating output back on the 1-10 scale, clipped to it."""
    return np.clip(MIDPOINT + HALF_RANGE * np.asarray(outputs, dtype=np.float64), 1.0, 10.0)


def check_ratings(frame: pd.DataFrame, where: str) -> None:
    """A one-line error unless every review of ``frame`` has a 1-10 star rating."""
    if "rating" not in frame.columns:
        raise UserError(f"--target rating needs a 'rating' column (1-10 stars) in {where}; this data has "
                        "none (use --target label)")
    ratings = np.asarray(frame["rating"])
    bad = int(((ratings < 1) | (ratings > 10)).sum())
    if bad:
        raise UserError(f"--target rating needs 1-10 star ratings; {bad} review(s) in {where} have none "
                        "(rating 0 or out of range)")


def rating_metrics(true: Any, stars: Any) -> dict[str, float]:
    """``mae`` (mean absolute error in stars) and ``within_one_star`` (share off by at most one)."""
    error = np.abs(np.asarray(stars, dtype=np.float64) - np.asarray(true, dtype=np.float64))
    if not len(error):
        return {"mae": float("nan"), "within_one_star": float("nan")}
    return {"mae": round(float(error.mean()), 4), "within_one_star": round(float((error <= 1).mean()), 4)}


# --------------------------------------------------------------------------- training


def rating_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy on the two class logits plus the squared error of the scaled rating.

    ``labels`` holds ``[class index, rating]`` per review (``Trainer``'s ``compute_loss_func``).
    """
    import torch.nn.functional as F

    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    logits = logits.float()
    polarity = F.cross_entropy(logits[:, :2], labels[:, 0].long())
    target = (labels[:, 1].float() - MIDPOINT) / HALF_RANGE
    return POLARITY_WEIGHT * polarity + F.mse_loss(logits[:, 2], target)


def evaluation_metrics(logits: np.ndarray, label_ids: np.ndarray) -> dict[str, float]:
    """Per-epoch validation metrics of a rating model: accuracy, MAE, within one star."""
    accuracy = float((logits[:, :2].argmax(axis=-1) == label_ids[:, 0]).mean())
    return {"accuracy": accuracy, **rating_metrics(label_ids[:, 1], to_stars(logits[:, 2]))}


# --------------------------------------------------------------------------- bag-of-words baseline


def evaluate_rating_baseline(model: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """Classification metrics (polarity = stars > 5.5) plus MAE and within-one-star accuracy."""
    from .evaluation import classification_metrics

    check_ratings(frame, "the evaluation split")
    stars = to_stars(to_target(model.predict(frame["text"].tolist())))
    score = (stars - 1.0) / 9.0  # a monotone score in [0, 1] for ROC AUC
    metrics = classification_metrics(frame["label"].to_numpy(), (stars > MIDPOINT).astype(int), score)
    metrics.update(rating_metrics(frame["rating"], stars))
    return metrics
