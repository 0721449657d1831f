"""``predict`` (shell, stdin or files), ``export`` (ONNX) and ``serve`` (HTTP + web page).

Heavy libraries load inside the commands: start-up time is part of every ``predict`` call.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import UserError
from .options import OUTPUT, OVERWRITE, TEXT_COLUMN, TRUST_REMOTE_CODE

if TYPE_CHECKING:
    from ..inference import SentimentClassifier

MODEL = typer.Option(
    ..., "--model", "-m",
    help="Fine-tuned model folder, a folder from `imdb-sentiment export` (ONNX), or a Hub id.",
)
BATCH_SIZE = typer.Option(None, "--batch-size", help="Reviews per forward pass (default 32).")
MAX_LENGTH = typer.Option(
    None, "--max-length",
    help="Tokens per model input, special tokens included (default: as trained, else 512).",
)
TRUNCATION = typer.Option(
    None, "--truncation",
    help="Long reviews: head-tail (first and last tokens), head (first tokens), or chunks "
         "(overlapping windows, logits averaged: reads everything). Default: as trained, else head-tail.",
)
HEAD_TOKENS = typer.Option(None, "--head-tokens", help="With head-tail: tokens kept from the start.")
CHUNK_OVERLAP = typer.Option(
    None, "--chunk-overlap", help="With chunks: tokens shared by neighbouring windows (128).",
)
DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N or mps (default: a GPU if there is one).")
PRECISION = typer.Option(
    "auto", "--precision",
    help="auto (bf16 on GPUs and CPUs with bf16 units, else fp32; int8 with the auto backend on other "
         "CPUs), fp32, bf16, or int8 (CPU).",
)
BACKEND = typer.Option(
    "auto", "--backend",
    help="auto: ONNX Runtime int8 on CPUs without bf16 units (the model is exported once and cached; "
         "in our benchmark about 1.7x PyTorch fp32 with the same accuracy), PyTorch elsewhere; "
         "torch; or onnx.",
)


def _load(model: str, *, device: str | None, precision: str, backend: str, max_length: int | None,
          truncation: str | None, head_tokens: int | None, chunk_overlap: int | None,
          batch_size: int | None, trust_remote_code: bool) -> SentimentClassifier:
    from ..inference import SentimentClassifier

    _quiet_loading()
    return SentimentClassifier.load(
        model, device=device, precision=precision, backend=backend, max_length=max_length,
        truncation=truncation,
        head_tokens=head_tokens, chunk_overlap=chunk_overlap, batch_size=batch_size,
        trust_remote_code=trust_remote_code,
    )


def _quiet_loading() -> None:
    """No "Loading weights" bars from transformers: they would bury our one-line output."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def _check_choices(truncation: str | None, precision: str, backend: str, batch_size: int | None) -> None:
    """Cheap checks before the model loads, so a typo fails in milliseconds."""
    from ..inference import BACKENDS, PRECISIONS, TRUNCATIONS

    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if truncation is not None and truncation not in TRUNCATIONS:
        raise UserError(f"truncation must be one of {', '.join(TRUNCATIONS)}, not {truncation!r}")
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if batch_size is not None and batch_size <= 0:
        raise UserError(f"batch size must be positive, got {batch_size}")


# --------------------------------------------------------------------------- predict


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
    trust_remote_code: bool = TRUST_REMOTE_CODE,
) -> None:
    """Classify reviews as POSITIVE or NEGATIVE, with the probability of that label."""
    from ..inference import check_output_file

    _check_choices(truncation, precision, backend, batch_size)
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
    else:
        texts = texts or _stdin_reviews()
    classifier = _load(model, device=device, precision=precision, backend=backend, max_length=max_length,
                       truncation=truncation, head_tokens=head_tokens, chunk_overlap=chunk_overlap,
                       batch_size=batch_size, trust_remote_code=trust_remote_code)
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


# --------------------------------------------------------------------------- export


def export(
    model: str = typer.Option(..., "--model", "-m", help="Fine-tuned model folder (or Hub id)."),
    output: Path = OUTPUT,
    quantize: str | None = typer.Option(
        None, "--quantize",
        help="int8: int8 encoder weights, activations quantized on the fly (faster on CPUs)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
    overwrite: bool = OVERWRITE,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
) -> None:
    """Export a fine-tuned model to ONNX for ONNX Runtime (`predict`/`serve` accept the folder)."""
    from ..exporters.onnx import export_onnx

    _quiet_loading()
    record = export_onnx(model, output, quantize=quantize, opset=opset, overwrite=overwrite,
                         trust_remote_code=trust_remote_code)
    size = (output / record["file"]).stat().st_size / 2**20
    typer.echo(f"exported {record['precision']} ONNX model ({size:.1f} MiB, largest logit difference "
               f"from PyTorch {record['max_abs_logit_difference']:.2g}) -> {output}")


# --------------------------------------------------------------------------- serve


def serve(
    model: str = MODEL,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: all interfaces)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    max_texts: int = typer.Option(64, "--max-texts", help="Most texts per request (more: 413)."),
    max_chars: int = typer.Option(20_000, "--max-chars", help="Most characters per text (more: 413)."),
    max_batch: int = typer.Option(64, "--max-batch", help="Most texts per model call across requests."),
    max_wait_ms: float = typer.Option(
        5.0, "--max-wait-ms", help="How long a request waits for others to share its model call."),
    batch_size: int | None = BATCH_SIZE,
    max_length: int | None = MAX_LENGTH,
    truncation: str | None = TRUNCATION,
    head_tokens: int | None = HEAD_TOKENS,
    chunk_overlap: int | None = CHUNK_OVERLAP,
    device: str | None = DEVICE,
    precision: str = PRECISION,
    backend: str = BACKEND,
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level (warning: no access log)."),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
) -> None:
    """Serve predictions over HTTP: POST /predict, GET /health, GET /info, docs at /docs, page at /."""
    from ..serving import check_address
    from ..serving import serve as run_server

    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise UserError(f"unknown --log-level {log_level!r}")
    _check_choices(truncation, precision, backend, batch_size)
    check_address(host, port)  # before the slow model load
    classifier = _load(model, device=device, precision=precision, backend=backend, max_length=max_length,
                       truncation=truncation, head_tokens=head_tokens, chunk_overlap=chunk_overlap,
                       batch_size=batch_size, trust_remote_code=trust_remote_code)
    limits: dict[str, Any] = {"max_texts": max_texts, "max_chars": max_chars, "max_batch": max_batch,
                              "max_wait_ms": max_wait_ms}
    run_server(classifier, host, port, log_level=log_level, **limits)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(predict)
    app.command()(export)
    app.command()(serve)
