"""Plots for the report and the run store: pyplot-free matplotlib figures saved as PNG."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


def new_figure(width: float = 6.4, height: float = 4.2, columns: int = 1) -> tuple[Any, Any]:
    """A pyplot-free figure (the Agg canvas is used by ``savefig``): no GUI, no global state.

    With ``columns`` > 1 the axes come as an array of panels sharing the y axis."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return figure, figure.subplots(1, columns, sharey=True) if columns > 1 else figure.subplots()


def plot_confusion_matrix(matrix: Sequence[Sequence[float]], path: str | os.PathLike[str],
                          title: str = "Confusion matrix") -> Path:
    figure, ax = new_figure(4.2, 3.8)
    values = [[float(v) for v in row] for row in matrix]
    ax.imshow(values, cmap="Blues")
    peak = max(max(row) for row in values) or 1.0
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            ax.text(j, i, f"{int(value):,}", ha="center", va="center",
                    color="white" if value > peak / 2 else "black", fontsize=12)
    ax.set_xticks([0, 1], ["negative", "positive"])
    ax.set_yticks([0, 1], ["negative", "positive"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    figure.savefig(path)
    return Path(path)


def plot_roc_curves(curves: Sequence[tuple[str, Any, Any]], path: Path) -> Path:
    """``curves``: (label, true labels, positive scores) per run."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, ax = new_figure(5.6, 4.6)
    for label, truth, scores in curves:
        fpr, tpr, _ = roc_curve(truth, scores)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(truth, scores):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7, loc="lower right")
    figure.savefig(path)
    return path


def plot_study_history(study: optuna.Study, path: Path) -> Path:
    """Each trial's validation accuracy (pruned trials at their last report) and the best so far."""
    figure, ax = new_figure()
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    pruned = [t for t in study.trials if t.state.name == "PRUNED" and t.intermediate_values]
    from matplotlib.ticker import MaxNLocator

    ax.scatter([t.number for t in done], [t.value for t in done], label="completed", zorder=3)
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.scatter([t.number for t in pruned], last, marker="x", color="grey",
                   label="pruned (last epoch reported)", zorder=2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    best, xs, ys = -math.inf, [], []
    for trial in sorted(done, key=lambda t: t.number):
        best = max(best, trial.value)
        xs.append(trial.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.savefig(path)
    return path


def plot_importances(importances: dict[str, float], path: Path) -> Path:
    figure, ax = new_figure(5.6, 0.6 + 0.45 * len(importances))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (fANOVA, share of variance in validation accuracy)")
    figure.savefig(path)
    return path


def plot_cascade_curve(curve: Sequence[dict[str, float]], transformer_accuracy: float, chosen: float,
                       path: str | os.PathLike[str]) -> Path:
    """Hybrid cascade on validation: accuracy and the transformer's share against the threshold."""
    figure, ax = new_figure(6.4, 4.2)
    thresholds = [point["threshold"] for point in curve]
    ax.plot(thresholds, [point["accuracy"] for point in curve], color="tab:blue", label="cascade accuracy")
    ax.axhline(transformer_accuracy, color="tab:blue", linestyle=":", label="transformer alone")
    ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen threshold {chosen:.2f}")
    ax.set_xlabel("threshold (the screen decides where |p - 0.5| exceeds it)")
    ax.set_ylabel("validation accuracy")
    share = ax.twinx()
    share.plot(thresholds, [point["transformer_share"] for point in curve], color="tab:orange",
               label="sent to the transformer")
    share.set_ylabel("share sent to the transformer", color="tab:orange")
    share.set_ylim(0, 1.02)
    lines = ax.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower right")
    figure.savefig(path)
    return Path(path)
