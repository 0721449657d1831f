"""Metrics for any binary sentiment model: accuracy first, then the rest of the usual set."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from .inference import SentimentClassifier


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
    if len(y_true) and len(np.unique(y_true)) < 2:
        import warnings

        only = "positive" if y_true[0] == 1 else "negative"
        warnings.warn(f"the scored reviews are all {only}: F1, precision and recall of the positive class "
                      "are undefined (reported as 0.0); score data with both labels", UserWarning,
                      stacklevel=2)
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


# --------------------------------------------------------------------------- transformer evaluation

def test_frame(data: str | os.PathLike[str] | dict[str, pd.DataFrame] | pd.DataFrame, *,
               cleaning: str = "basic", text_column: str = "text", label_column: str = "label",
               seed: int = 42) -> pd.DataFrame:
    """The labelled test split of ``data`` (a source, a dict of splits, or the test frame itself)."""
    import pandas as pd

    from .data import load_splits

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        if "test" not in data:
            raise UserError(f"data has no test split (found: {', '.join(sorted(data)) or 'none'})")
        return data["test"]
    splits = load_splits(data, text_column=text_column, label_column=label_column, validation_size=0,
                         seed=seed, cleaning=cleaning, require=("test",))  # type: ignore[arg-type]
    return splits["test"]


def score_frame(classifier: SentimentClassifier, frame: pd.DataFrame, *, batch_size: int | None = None,
                progress: bool = False, batch_option: str = "--batch-size",
                ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Predict every review of ``frame``: metrics (with timing) and per-review predictions.

    ``batch_option`` names the option to lower in the out-of-memory hint.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .modeling import out_of_memory_hint

    batch = batch_size or classifier.batch_size
    texts = frame["text"].tolist()
    started = time.perf_counter()
    with tqdm(total=len(texts), unit="review", desc="evaluating", disable=not progress) as bar, \
            out_of_memory_hint(batch, batch_option):
        # Tokens come from the cache when these reviews were scored or trained on before.
        details = classifier.predict_details(texts, batch_size=batch, progress=bar.update, cache=True)
    probabilities = details.probabilities
    seconds = time.perf_counter() - started
    scores = probabilities[:, 1] if len(texts) else np.zeros(0, dtype=np.float32)
    predicted = (scores > 0.5).astype(np.int64)
    metrics = classification_metrics(frame["label"].to_numpy(), predicted, scores)
    metrics.update(seconds=round(seconds, 3),
                   reviews_per_second=round(len(texts) / seconds, 2) if seconds > 0 else None)
    predictions = pd.DataFrame({"id": frame["id"].astype(str).to_numpy() if "id" in frame else
                                [str(i) for i in range(len(frame))],
                                "label": frame["label"].to_numpy(dtype=np.int64),
                                "predicted": predicted, "score": scores.astype(np.float32)})
    if details.stars is not None:  # a rating model: MAE and within-one-star where ratings are known
        predictions["stars"] = details.stars.astype(np.float32)
        if "rating" in frame and (frame["rating"] > 0).all():
            from .ratings import rating_metrics

            metrics.update(rating_metrics(frame["rating"], details.stars))
    return metrics, predictions


def write_evaluation(folder: str | os.PathLike[str], metrics: dict[str, Any], predictions: pd.DataFrame,
                     ) -> None:
    """``metrics.json`` and ``predictions.parquet`` (id, label, predicted, score) in ``folder``."""
    from .artifacts import write_json

    write_json(Path(folder) / "metrics.json", metrics)
    predictions.to_parquet(Path(folder) / "predictions.parquet", index=False)


def evaluate_model(
    model: str | os.PathLike[str] | SentimentClassifier,
    data: str | os.PathLike[str] | dict[str, pd.DataFrame] | pd.DataFrame,
    output: str | os.PathLike[str] | None = None,
    *,
    max_samples: int | None = None,
    max_length: int | None = None,
    truncation: str | None = None,
    head_tokens: int | None = None,
    batch_size: int | None = None,
    cleaning: str = "basic",
    text_column: str = "text",
    label_column: str = "label",
    seed: int = 42,
    device: str | None = None,
    precision: str = "auto",
    overwrite: bool = False,
    trust_remote_code: bool = False,
    progress: bool = False,
    runs_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Score a sequence-classification model on the test split and return its metrics.

    ``max_samples`` takes a fixed, seeded, label-stratified subset. Truncation is in tokens;
    unset ``max_length``/``truncation``/``head_tokens`` come from the model's
    ``train_config.toml`` when it has one, else 512 (or the model's limit) and head-tail.
    ``model`` may also be a loaded :class:`SentimentClassifier`. ``batch_size``: rows per batch
    (default: chosen for the device, see :class:`SentimentClassifier`).
    With ``output``, writes ``metrics.json`` and ``predictions.parquet`` there atomically; with
    ``runs_dir``, records the run there (as every stage does: see ``tracking``).
    A loaded hybrid (:func:`imdb_sentiment.hybrid.load_model`) adds ``transformer_share``.
    """
    from .artifacts import atomic_output_dir, check_output_dir
    from .data import subsample

    _check_evaluation_args(truncation, batch_size, max_samples)
    started = time.perf_counter()
    if output is not None:
        check_output_dir(output, overwrite, inputs=(model, data))  # fail before the slow part
    # The data first: a wrong path or column is reported in a second, not after the model loads.
    frame = subsample(test_frame(data, cleaning=cleaning, text_column=text_column,
                                 label_column=label_column, seed=seed), max_samples, seed)
    classifier = model if isinstance(model, _classifier_type()) else _load_classifier(
        model, max_length=max_length, truncation=truncation, head_tokens=head_tokens,
        batch_size=batch_size, device=device, precision=precision, trust_remote_code=trust_remote_code)
    sent_before = getattr(classifier, "transformer_reviews", None)  # hybrids count what they send on
    metrics, predictions = score_frame(classifier, frame, batch_size=batch_size, progress=progress)
    if sent_before is not None:
        sent = classifier.transformer_reviews - sent_before  # type: ignore[attr-defined]
        metrics.update(transformer_share=round(sent / max(len(frame), 1), 4),
                       hybrid=classifier.info().get("hybrid"))
    metrics.update(
        model=classifier.name, data=str(data) if isinstance(data, str | os.PathLike) else None,
        max_length=classifier.max_length, truncation=classifier.truncation,
        head_tokens=classifier.head_tokens, batch_size=batch_size or classifier.batch_size,
        device=classifier.device,
        dtype=classifier.precision, cleaning=cleaning, max_samples=max_samples, seed=seed,
    )
    if output is not None:
        with atomic_output_dir(output, overwrite) as folder:
            write_evaluation(folder, metrics, predictions)
    if runs_dir is not None:
        from .tracking import log_run

        params = {key: metrics[key] for key in ("data", "max_length", "truncation", "head_tokens",
                                                "batch_size", "device", "dtype", "cleaning", "max_samples")}
        log_run(runs_dir, stage="evaluate", model=str(model) if not isinstance(model, _classifier_type())
                else model.name, params=params, metrics=metrics, duration=time.perf_counter() - started,
                artifacts=[Path(output)] if output is not None else [])
    return metrics


def _check_evaluation_args(truncation: str | None, batch_size: int | None, max_samples: int | None) -> None:
    from .config import InferenceConfig

    InferenceConfig(truncation=truncation, batch_size=batch_size)
    if max_samples is not None and max_samples <= 0:
        raise UserError(f"--max-samples must be positive, got {max_samples}")


def _classifier_type() -> type:
    from .inference import SentimentClassifier

    return SentimentClassifier


def _load_classifier(model: str | os.PathLike[str], *, max_length: int | None, truncation: str | None,
                     head_tokens: int | None, batch_size: int | None, device: str | None, precision: str,
                     trust_remote_code: bool) -> SentimentClassifier:
    """Load ``model``; unset input settings default to those it was trained with."""
    from .encoding import check_max_length
    from .inference import SentimentClassifier
    from .modeling import load_config, load_tokenizer

    if max_length is not None:  # a one-line refusal before the weights load
        check_max_length(max_length, load_config(model, trust_remote_code),
                         load_tokenizer(model, trust_remote_code))
    return SentimentClassifier.load(
        model, device=device, precision=precision, trust_remote_code=trust_remote_code,
        max_length=max_length, truncation=truncation, head_tokens=head_tokens, batch_size=batch_size,
    )
