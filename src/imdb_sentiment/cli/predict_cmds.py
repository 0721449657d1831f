"""``predict``: classify reviews given as arguments, on stdin or in files.

Heavy libraries load inside the command: start-up time is part of every ``predict`` call.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import UserError
from .options import (
    BACKEND,
    BATCH_SIZE,
    CHUNK_OVERLAP,
    DEVICE,
    HEAD_TOKENS,
    HYBRID_MODE,
    HYBRID_THRESHOLD,
    MAX_LENGTH,
    MODEL,
    PRECISION,
    TEXT_COLUMN,
    TRUNCATION,
    TRUST_REMOTE_CODE,
    check_inference_choices,
    load_classifier,
)

if TYPE_CHECKING:
    from ..inference import SentimentClassifier


def predict(
    texts: list[str] | None = typer.Argument(
        None, help="Reviews to classify. Without them (and without --input), one review per line on stdin."),
    model: str = MODEL,
    input_path: Path | None = typer.Option(
        None, "--input", "-i",
        help="File of reviews: .csv, .tsv, .jsonl, .json, .parquet, or .txt (one review per line)."),
    output_path: Path | None = typer.Option(
        None, "--output", "-o",
        help="With --input: where to write the input columns plus label, score, truncated and error "
             "(.csv, .tsv, .jsonl, .json or .parquet; written atomically)."),
    text_column: str = TEXT_COLUMN,
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines (text, label, score, truncated)."),
    batch_size: int | None = BATCH_SIZE,
    max_length: int | None = MAX_LENGTH,
    truncation: str | None = TRUNCATION,
    head_tokens: int | None = HEAD_TOKENS,
    chunk_overlap: int | None = CHUNK_OVERLAP,
    device: str | None = DEVICE,
    precision: str = PRECISION,
    backend: str = BACKEND,
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress",
        help="Progress bar on stderr (default: when stderr is a terminal)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output file."),
    explain_engine: bool = typer.Option(
        False, "--explain-engine",
        help="Say on stderr which back end and precision run the model and why (on CPUs the fastest is "
             "measured once per model and machine, then cached). Without reviews, only that."),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    mode: str | None = HYBRID_MODE,
    threshold: float | None = HYBRID_THRESHOLD,
) -> None:
    """Classify reviews as POSITIVE or NEGATIVE, with the probability of that label."""
    from ..inference import check_output_file

    check_inference_choices(truncation, precision, backend, batch_size)
    if input_path is None and output_path is not None:
        raise UserError("--output needs --input (texts given on the command line are printed)")
    if input_path is not None:
        if texts:
            raise UserError("give review texts or --input FILE, not both")
        if output_path is None:
            raise UserError("--input needs --output FILE for the results")
        if not input_path.is_file():
            raise UserError(f"input file not found: {input_path}")
        check_output_file(output_path, input_path, overwrite)  # fail before loading the model
    elif not (explain_engine and not texts):
        texts = texts or _stdin_reviews()
    classifier = load_classifier(model, device=device, precision=precision, backend=backend,
                                 max_length=max_length, truncation=truncation, head_tokens=head_tokens,
                                 chunk_overlap=chunk_overlap, batch_size=batch_size,
                                 trust_remote_code=trust_remote_code, mode=mode, threshold=threshold)
    if explain_engine:
        info = classifier.info()
        typer.echo(f"engine: {info['backend']} {info['precision']} on {info['device']}: "
                   f"{info['engine_reason']}", err=True)
        if not texts and input_path is None:
            return
    if input_path is not None and output_path is not None:
        _predict_file(classifier, input_path, output_path, text_column, overwrite,
                      sys.stderr.isatty() if progress is None else progress)
    else:
        _predict_texts(classifier, texts, as_json)


def _stdin_reviews() -> list[str]:
    from ..inference import read_lines

    if sys.stdin is None or sys.stdin.isatty():
        raise UserError("give review texts, --input FILE, or pipe reviews on stdin (one per line)")
    reviews = read_lines(sys.stdin.buffer.read(), "stdin")
    if not reviews:
        raise UserError("no reviews on stdin")
    return reviews


def _predict_texts(classifier: SentimentClassifier, texts: list[str], as_json: bool) -> None:
    import pandas as pd

    from ..inference import predict_frame

    frame, names = predict_frame(classifier, pd.DataFrame({"text": texts}), "text")
    for row in frame.itertuples(index=False):
        label, score, truncated, error = (getattr(row, name) for name in names)
        error = error if isinstance(error, str) else None  # pandas may hold "no error" as NaN
        if as_json:
            record = {"text": row.text, "label": None if error else label,
                      "score": None if error else round(float(score), 6),
                      "truncated": None if error else bool(truncated), "error": error}
            if "decided_by" in frame.columns:  # a hybrid says which part decided
                record["decided_by"] = row.decided_by
            typer.echo(json.dumps(record, ensure_ascii=False))
        elif error:
            typer.echo(f"ERROR\t\t{error}")
        else:
            typer.echo(f"{label}\t{score:.4f}" + ("\t(truncated)" if truncated else ""))
    _warn_bad_rows(int(frame[names[3]].notna().sum()), "line(s)")


def _predict_file(classifier: SentimentClassifier, input_path: Path, output_path: Path, text_column: str,
                  overwrite: bool, progress: bool) -> None:
    from tqdm import tqdm

    from ..inference import predict_file

    with tqdm(unit="review", desc="predicting", file=sys.stderr, disable=not progress) as bar:

        def sized(rows: int) -> None:
            bar.total = rows
            bar.refresh()

        summary = predict_file(classifier, input_path, output_path, text_column=text_column,
                               overwrite=overwrite, progress=bar.update, on_rows=sized)
    rate = summary.scored / summary.seconds if summary.seconds > 0 else 0.0
    typer.echo(f"predicted {summary.scored} review(s) in {summary.seconds:.1f} s ({rate:.1f} reviews/s) "
               f"-> {output_path}", err=True)
    if summary.columns[0] != "label":
        typer.echo(f"note: the input already has label/score columns; results are in "
                   f"{', '.join(summary.columns)}", err=True)
    _warn_bad_rows(summary.bad_rows, f"row(s) (see the {summary.columns[3]} column)")


def _warn_bad_rows(count: int, what: str) -> None:
    if count:
        typer.echo(f"warning: {count} {what} could not be scored: empty or not text", err=True)


def register(app: typer.Typer) -> None:
    """Add ``predict`` to ``app``."""
    app.command("predict")(predict)
