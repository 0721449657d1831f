"""Options shared by several commands, defined once so they read the same everywhere."""

from __future__ import annotations

from pathlib import Path

import typer

from ..data import DEFAULT_SOURCE

DATA = typer.Option(
    DEFAULT_SOURCE, "--data", "-d",
    help="Data source: Hub dataset id, folder of split files (e.g. ../shared/data/imdb), "
         "aclImdb folder or tarball, or one CSV/JSONL/parquet file.",
)
TEXT_COLUMN = typer.Option("text", "--text-column", help="Column holding the review text.")
LABEL_COLUMN = typer.Option("label", "--label-column", help="Column holding the 0/1 or neg/pos label.")
CLEANING = typer.Option(
    "basic", "--cleaning",
    help="basic (<br /> to space), none, or study (the reference study's: no punctuation, "
         "lowercase, no stop words, first 512 characters).",
)
SEED = typer.Option(42, "--seed", help="Seed for splits, sampling and training.")
VALIDATION_SIZE = typer.Option(0.1, "--validation-size", help="Fraction of train held out for validation.")
OUTPUT = typer.Option(..., "--output", "-o", help="Output folder (refused if it holds anything).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing, non-empty output folder.")
RUNS_DIR = typer.Option(
    "runs", "--runs-dir", envvar="IMDB_SENTIMENT_RUNS_DIR",
    help="Record this run (parameters, metrics, artifacts) in the MLflow store in this folder "
         "(mlflow.db); 'none' records nothing. Recording problems are warnings, never failures.",
)
TRUST_REMOTE_CODE = typer.Option(
    False, "--trust-remote-code", help="Allow model code from the model's repository (off: safer).",
)


def optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None
