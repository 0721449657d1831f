"""Metrics for any binary sentiment model: accuracy first, then the rest of the usual set."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_metrics(
    labels: Sequence[int] | np.ndarray,
    predicted: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
) -> dict[str, object]:
    """Accuracy, F1, precision, recall, confusion matrix (rows true 0/1, columns predicted 0/1).

    ``scores`` (probability of positive) adds ROC AUC when both classes are present.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y_true = np.asarray(labels, dtype=np.int64)
    y_pred = np.asarray(predicted, dtype=np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", pos_label=1, zero_division=0
    )
    metrics: dict[str, object] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
        "n_test": len(y_true),
    }
    if scores is not None and len(np.unique(y_true)) == 2:
        metrics["roc_auc"] = float(roc_auc_score(y_true, np.asarray(scores, dtype=np.float64)))
    return metrics
