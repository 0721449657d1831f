"""``evaluate``: score a sentiment classifier on the test split."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .data_cmds import warnings_as_lines
from .options import (
    BATCH_SIZE,
    CLEANING,
    DATA,
    HEAD_TOKENS_HELP,
    HYBRID_MODE,
    HYBRID_THRESHOLD,
    LABEL_COLUMN,
    MODEL_HELP,
    OUTPUT,
    OVERWRITE,
    RUNS_DIR,
    SEED,
    TEXT_COLUMN,
    TRUNCATION,
    TRUST_REMOTE_CODE,
    quiet_model_loading,
)


def evaluate(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP + " Must be a sequence classifier."),
    data: str = DATA,
    output: Path = OUTPUT,
    max_samples: int | None = typer.Option(
        None, "--max-samples", help="Score a fixed, seeded, label-balanced test subset of this size."),
    max_length: int | None = typer.Option(
        None, "--max-length",
        help="Tokens per review (default: what the model was trained with, else 512 or the model's limit)."),
    truncation: str | None = TRUNCATION,
    head_tokens: int | None = typer.Option(None, "--head-tokens", help=HEAD_TOKENS_HELP),
    batch_size: int | None = BATCH_SIZE,
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 where fast), bf16 or fp32."),
    cleaning: str = CLEANING,
    text_column: str = TEXT_COLUMN,
    label_column: str = LABEL_COLUMN,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    runs_dir: Path | None = RUNS_DIR,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    mode: str | None = HYBRID_MODE,
    threshold: float | None = HYBRID_THRESHOLD,
) -> None:
    """Score a sentiment classifier on the test split: metrics.json and predictions.parquet."""
    from ..artifacts import check_output_dir
    from ..config import DataSpec, EvaluationConfig
    from ..evaluation import evaluate_model
    from ..hybrid import is_hybrid, load_model

    quiet_model_loading()
    spec = DataSpec(data, text_column=text_column, label_column=label_column, cleaning=cleaning, seed=seed,
                    validation_size=0)  # the test split only: nothing is carved from train
    settings = EvaluationConfig(max_samples=max_samples, max_length=max_length, truncation=truncation,
                                head_tokens=head_tokens, batch_size=batch_size, precision=precision,
                                trust_remote_code=trust_remote_code)
    classifier = model
    if is_hybrid(model) or mode is not None or threshold is not None:  # loaded here: a plain model is refused
        check_output_dir(output, overwrite)  # before the slow load
        classifier = load_model(model, mode=mode, threshold=threshold, max_length=max_length,
                                truncation=truncation, head_tokens=head_tokens, batch_size=batch_size,
                                precision=precision, trust_remote_code=trust_remote_code)
    with warnings_as_lines():
        metrics = evaluate_model(classifier, spec, output, settings, overwrite=overwrite,
                                 progress=sys.stderr.isatty(), runs_dir=runs_dir)  # no bar in logs
    typer.echo(f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}  on {metrics['n_test']} reviews "
               f"({metrics['reviews_per_second']} reviews/s)"
               + (f"  transformer share {metrics['transformer_share']:.1%}" if "transformer_share" in metrics
                  else "") + f"  -> {output}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to ``app``."""
    app.command("evaluate")(evaluate)
