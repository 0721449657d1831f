"""Metrics for any binary sentiment model: accuracy first, then the rest of the usual set."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .classifier import PROMPTED_LLM, Classifier
from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from .config import DataSpec, EvaluationConfig, InferenceConfig


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

def evaluation_spec(data: DataSpec | str | os.PathLike[str]) -> DataSpec:
    """The data settings of an evaluation: a source name gets the defaults and no validation carve."""
    from .config import DataSpec

    return data if isinstance(data, DataSpec) else DataSpec(str(data), validation_size=0)


def test_frame(data: DataSpec | dict[str, pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """The labelled test split of ``data`` (read as its settings say, from a dict of splits, or the frame)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        if "test" not in data:
            raise UserError(f"data has no test split (found: {', '.join(sorted(data)) or 'none'})")
        return data["test"]
    return data.load(require=("test",))["test"]


def score_frame(classifier: Classifier, frame: pd.DataFrame, *, batch_size: int | None = None,
                progress: bool = False, batch_option: str = "--batch-size",
                ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Predict every review of ``frame``: metrics (with timing) and per-review predictions.

    ``batch_option`` names the option to lower in the out-of-memory hint. A hybrid's metrics add
    ``transformer_share``: the share of reviews its screen sent on to the transformer.
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
    if details.decided_by is not None:
        sent = int(np.sum(details.decided_by != "screen"))
        metrics["transformer_share"] = round(sent / max(len(texts), 1), 4)
    return metrics, predictions


def write_evaluation(folder: str | os.PathLike[str], metrics: dict[str, Any], predictions: pd.DataFrame,
                     ) -> None:
    """``metrics.json`` and ``predictions.parquet`` (id, label, predicted, score) in ``folder``."""
    from .artifacts import write_json

    write_json(Path(folder) / "metrics.json", metrics)
    predictions.to_parquet(Path(folder) / "predictions.parquet", index=False)


def evaluate_model(
    model: str | os.PathLike[str] | Classifier,
    data: DataSpec | str | os.PathLike[str] | dict[str, pd.DataFrame] | pd.DataFrame,
    output: str | os.PathLike[str] | None = None,
    settings: EvaluationConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    runs_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Score a sequence-classification model on the test split and return its metrics.

    ``settings.max_samples`` takes a fixed, seeded, label-stratified subset. Truncation is in
    tokens; unset ``max_length``/``truncation``/``head_tokens`` come from the model's
    ``train_config.toml`` when it has one, else 512 (or the model's limit) and head-tail.
    ``model`` may also be a loaded :class:`~imdb_sentiment.classifier.Classifier`. ``batch_size``:
    rows per batch (default: chosen for the device, see :class:`SentimentClassifier`).
    ``data``: a :class:`DataSpec`, a source name (read with the defaults and no validation carve),
    a dict of splits or the test frame itself; the metrics record its settings. With ``output``,
    writes ``metrics.json`` and ``predictions.parquet`` there atomically; with ``runs_dir``, records
    the run there (as every stage does: see ``tracking``). A loaded hybrid
    (:func:`imdb_sentiment.hybrid.load_model`) adds ``transformer_share``; a prompted language model
    adds ``llm`` (its ``info()["llm"]``: label words, shots, bias), and its run is tagged
    ``model_kind`` :data:`PROMPTED_LLM`. Every model's metrics hold ``seconds`` (spent scoring) and
    ``reviews_per_second``.
    """
    from .artifacts import atomic_output_dir, check_output_dir
    from .config import EvaluationConfig, InferenceConfig
    from .data import subsample

    settings = settings or EvaluationConfig()
    frames = data if isinstance(data, dict) or _is_frame(data) else None
    spec = evaluation_spec(data) if frames is None else None  # type: ignore[arg-type]
    seed = settings.seed if settings.seed is not None else spec.seed if spec is not None else 42
    batch_size = settings.batch_size
    started = time.perf_counter()
    if output is not None:
        source = spec.source if spec is not None else data
        check_output_dir(output, overwrite, inputs=(model, source))  # fail before the slow part
    # The data first: a wrong path or column is reported in a second, not after the model loads.
    frame = subsample(test_frame(spec or frames), settings.max_samples, seed)  # type: ignore[arg-type]
    classifier = model if isinstance(model, Classifier) else _load_classifier(model, InferenceConfig(
        max_length=settings.max_length, truncation=settings.truncation, head_tokens=settings.head_tokens,
        batch_size=batch_size, device=settings.device, precision=settings.precision,
        trust_remote_code=settings.trust_remote_code))
    metrics, predictions = score_frame(classifier, frame, batch_size=batch_size, progress=progress)
    described = classifier.info()
    routing = described.get("hybrid")  # a hybrid: its mode, threshold and parts
    if routing is not None:
        metrics["hybrid"] = routing
    prompting = described.get("llm")  # a prompted language model (or a hybrid's): its prompt and bias
    if prompting is not None:
        metrics["llm"] = prompting
    # Ready frames were read and cleaned by the caller, so they have no data settings to record.
    data_record = spec.record() if spec is not None else {"data": None, "cleaning": None}
    metrics.update(
        model=classifier.name, max_length=classifier.max_length, truncation=classifier.truncation,
        head_tokens=classifier.head_tokens, batch_size=batch_size or classifier.batch_size,
        device=classifier.device, dtype=classifier.precision,
        **{**data_record, "seed": seed},  # the subset's seed, the data's unless the settings name one
        max_samples=settings.max_samples,
    )
    if output is not None:
        with atomic_output_dir(output, overwrite) as folder:
            write_evaluation(folder, metrics, predictions)
    if runs_dir is not None:
        from .tracking import RunEntry, log_run

        params = {key: metrics[key] for key in ("data", "max_length", "truncation", "head_tokens",
                                                "batch_size", "device", "dtype", "cleaning", "max_samples")}
        name = model.name if isinstance(model, Classifier) else str(model)
        log_run(runs_dir, RunEntry(stage="evaluate", model=name, params={**params, **llm_params(metrics)},
                                   metrics=metrics, duration=time.perf_counter() - started,
                                   artifacts=[Path(output)] if output is not None else [],
                                   tags=run_tags(metrics)))
    return metrics


def run_tags(metrics: dict[str, Any]) -> dict[str, str]:
    """What an evaluation's run is tagged with: ``model_kind`` for a prompted language model alone."""
    return {"model_kind": PROMPTED_LLM} if "llm" in metrics and "hybrid" not in metrics else {}


def llm_params(metrics: dict[str, Any]) -> dict[str, Any]:
    """A prompted language model's prompt settings as run parameters (``llm.bias``, ``llm.shots``, ...)."""
    return {"llm": metrics["llm"]} if isinstance(metrics.get("llm"), dict) else {}


def prompting_phrase(llm: dict[str, Any]) -> str:
    """How a prompted language model was asked, from its ``info()["llm"]`` (or the run parameters
    recorded from it): ``prompted zero-shot, calibration bias +0.25``."""
    shots, bias = _finite(llm.get("shots")), _finite(llm.get("bias"))
    asked = "zero-shot" if not shots else f"{shots:g}-shot"
    return f"prompted {asked}" + ("" if bias is None else f", calibration bias {bias:+.2f}")


def _finite(value: Any) -> float | None:
    """A number (or its text, as run parameters hold it), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _is_frame(data: object) -> bool:
    import pandas as pd

    return isinstance(data, pd.DataFrame)


def _load_classifier(model: str | os.PathLike[str], config: InferenceConfig) -> Classifier:
    """Load ``model``; unset input settings default to those it was trained with."""
    from .encoding import check_max_length
    from .inference import SentimentClassifier
    from .llm import LLMClassifier, is_causal_lm
    from .modeling import load_config, load_tokenizer

    if is_causal_lm(model, config.trust_remote_code):  # a prompted causal LM, recognised from its config
        return LLMClassifier.load(model, config)
    if config.max_length is not None:  # a one-line refusal before the weights load
        check_max_length(config.max_length, load_config(model, config.trust_remote_code),
                         load_tokenizer(model, config.trust_remote_code))
    return SentimentClassifier.load(model, config=config)
