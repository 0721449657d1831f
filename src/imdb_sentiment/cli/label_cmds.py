"""``label``: soft labels (P(positive)) for unlabeled reviews from any classifier, resumable in parts."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from . import options


def label(
    model: str = typer.Option(
        ..., "--model", "-m",
        help="The teacher: a fine-tuned model folder, an ONNX export, a hybrid folder, a causal language "
             "model (prompted), a baseline folder, or a Hub id."),
    data: str = options.DATA,
    split: str = typer.Option(
        "unsupervised", "--split",
        help="The split file of --data to label (unsupervised.parquet, train.csv, ...); ignored when "
             "--data is one file."),
    output: Path = typer.Option(
        ..., "--output", "-o",
        help="The labelled file (.parquet, .csv, .tsv, .jsonl or .json): every column of the split plus "
             "p_positive, with the teacher recorded in OUTPUT.teacher.json."),
    max_samples: int | None = typer.Option(
        None, "--max-samples", help="Label a seeded random subset of this many reviews (in input order)."),
    seed: int = options.SEED,
    text_column: str = options.TEXT_COLUMN,
    part_rows: int = typer.Option(
        1024, "--part-rows",
        help="Reviews per part: each part is saved as soon as it is scored, so a killed run repeated with "
             "the same options continues where it stopped."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an output (or the parts of an unfinished run) made with another "
                                   "model, data or sample."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress",
        help="Progress bar on stderr (default: when stderr is a terminal)."),
    batch_size: int | None = options.BATCH_SIZE,
    max_length: int | None = options.MAX_LENGTH,
    truncation: str | None = options.TRUNCATION,
    head_tokens: int | None = options.HEAD_TOKENS,
    chunk_overlap: int | None = options.CHUNK_OVERLAP,
    device: str | None = options.DEVICE,
    precision: str = options.PRECISION,
    backend: str = options.BACKEND,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
) -> None:
    """Score every review of a split with a teacher model and write its P(positive) per review:
    soft labels for `baseline --extra-data` and `train --extra-data`."""
    from tqdm import tqdm

    from ..config import InferenceConfig
    from ..labelling import LabelJob
    from ..labelling import label as label_reviews

    config = InferenceConfig(device=device, precision=precision, backend=backend, max_length=max_length,
                             truncation=truncation, head_tokens=head_tokens, chunk_overlap=chunk_overlap,
                             batch_size=batch_size, trust_remote_code=trust_remote_code)
    job = LabelJob(model=model, data=data, output=output, split=split, max_samples=max_samples, seed=seed,
                   text_column=text_column, part_rows=part_rows, overwrite=overwrite, config=config)
    options.quiet_model_loading()
    shown = sys.stderr.isatty() if progress is None else progress
    with tqdm(unit="review", desc="labelling", file=sys.stderr, disable=not shown) as bar:

        def sized(rows: int, done: int) -> None:
            bar.total = rows
            bar.update(done)

        summary = label_reviews(job, progress=bar.update, on_rows=sized)
    if summary.already_done:
        typer.echo(f"{output} already holds these labels ({summary.rows:,} reviews); nothing to do", err=True)
        return
    resumed = f", {summary.resumed:,} from an interrupted run" if summary.resumed else ""
    typer.echo(f"labelled {summary.scored:,} review(s) in {summary.seconds:.1f} s{resumed} -> {output}",
               err=True)
    if summary.bad_rows:
        typer.echo(f"warning: {summary.bad_rows} row(s) could not be scored (see the error column): empty, "
                   "not text or too long", err=True)


def register(app: typer.Typer) -> None:
    """Add ``label`` to ``app``."""
    app.command("label")(label)
