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
    INTERPRET_CONFIG,
    INTERPRETER,
    MAX_LENGTH,
    MODEL,
    PRECISION,
    TEXT_COLUMN,
    TRUNCATION,
    TRUST_REMOTE_CODE,
    load_classifier,
    quiet_model_loading,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..classifier import Classifier
    from ..config import InferenceConfig
    from ..interpretation import Interpreter
    from ..ray_scoring import RayScoring


def predict(
    texts: list[str] | None = typer.Argument(
        None, help="Reviews to classify. Without them (and without --input), one review per line on stdin."),
    model: str = MODEL,
    input_path: Path | None = typer.Option(
        None, "--input", "-i",
        help="File of reviews: .csv, .tsv, .jsonl, .json, .parquet, or .txt (one review per line)."),
    output_path: str | None = typer.Option(  # a string: a trailing '/' (a folder) must stay visible
        None, "--output", "-o",
        help="With --input: where to write the input columns plus label, score, truncated and error "
             "(.csv, .tsv, .jsonl, .json or .parquet; written atomically). Without it: stdout."),
    output_format: str | None = typer.Option(
        None, "--format",
        help="Results as csv, tsv, jsonl, json or parquet, for reviews from any source (default: the "
             "--output suffix; on stdout csv for --input, one tab-separated line per review otherwise)."),
    text_column: str = TEXT_COLUMN,
    as_json: bool = typer.Option(False, "--json",
                                 help="The same as --format jsonl: one JSON object per review."),
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
    explain: bool = typer.Option(
        False, "--explain",
        help="Also give the words that pushed each decision, with signed weights (positive: towards "
             "POSITIVE): exact feature contributions for nbsvm/logreg baseline folders, integrated "
             "gradients for transformer models. With --input and --output, adds an explanation column."),
    top: int = typer.Option(10, "--top", help="With --explain: words per review, strongest first."),
    engine: str = typer.Option(
        "local", "--engine",
        help="local (this process) or ray: --input is then a file, folder or glob of parquet/CSV/JSONL "
             "files and --output a folder of parquet parts (needs imdb-sentiment[scale])."),
    address: str | None = typer.Option(
        None, "--address", help="With --engine ray: join this Ray cluster (e.g. auto, ray://HOST:10001); "
                                "default: start a local one."),
    actors: int | None = typer.Option(
        None, "--actors", help="With --engine ray: model replicas (default: one per CPU, or per GPU)."),
    gpus_per_actor: float = typer.Option(
        0.0, "--gpus-per-actor", help="With --engine ray: GPUs each replica reserves (e.g. 1 or 0.5)."),
    mode: str | None = HYBRID_MODE,
    threshold: float | None = HYBRID_THRESHOLD,
    interpret: bool = typer.Option(
        False, "--interpret",
        help="Explain each review with an instruction LLM, as one JSON object: sentiment, score, rating "
             "(1-10), aspects (aspect, sentiment and a verbatim quote), emotions and a one-sentence summary. "
             "The LLM is --interpreter, else --model. With --input, one column per field."),
    interpreter: str | None = INTERPRETER,
    interpret_config: Path | None = INTERPRET_CONFIG,
) -> None:
    """Classify reviews as POSITIVE or NEGATIVE, with the probability of that label.

    With --input FILE the results are a table: in --output, or on stdout (CSV unless --format).
    """
    from ..config import InferenceConfig
    from ..ray_scoring import RayScoring, check_engine
    from ..tables import check_output_file, read_reviews

    # Every engine and the explainer run the model as these options say; checked before it loads.
    config = InferenceConfig(device=device, precision=precision, backend=backend, max_length=max_length,
                             truncation=truncation, head_tokens=head_tokens, chunk_overlap=chunk_overlap,
                             batch_size=batch_size, trust_remote_code=trust_remote_code)
    output_format = _result_format(output_format, as_json)
    interpreting = interpret or interpreter is not None or interpret_config is not None
    if check_engine(engine) == "ray":
        if interpreting:
            raise UserError("--engine ray classifies; --interpret runs in this process (--engine local)")
        if input_path is None or output_path is None or texts:
            raise UserError("--engine ray needs --input FILES and --output FOLDER (and no review texts)")
        if output_format is not None:
            raise UserError("--engine ray writes a folder of parquet parts; --format and --json do not apply")
        _predict_ray(RayScoring(
            model=model, inputs=str(input_path), output=Path(output_path), text_column=text_column,
            address=address, actors=actors, gpus_per_actor=gpus_per_actor, overwrite=overwrite,
            progress=bool(progress), config=config, mode=mode, threshold=threshold))
        return
    if input_path is None and output_path is not None:
        raise UserError("--output needs --input; results for reviews given as arguments or on stdin "
                        "go to stdout (--format chooses how)")
    reviews = None
    if input_path is not None:
        if texts:
            raise UserError("give review texts or --input FILE, not both")
        if output_path is not None:
            check_output_file(output_path, input_path, overwrite, output_format)  # before the model loads
        reviews = read_reviews(input_path, text_column)  # a bad file fails before the model loads too
    elif texts:
        texts = _argument_reviews(texts)
    elif not explain_engine:
        texts = _stdin_reviews()
    if interpreting:
        if explain or explain_engine:
            raise UserError("--interpret explains with an LLM; give it or --explain/--explain-engine, "
                            "not both")
        if interpreter is None and (mode is not None or threshold is not None):
            raise UserError("--mode and --threshold apply to a hybrid --model; with --interpret alone, "
                            "--model is the LLM (give the hybrid as --model and the LLM as --interpreter)")
        llm = _load_interpreter(model, interpreter, config, interpret_config, mode, threshold)
        _interpret(llm, texts, reviews, output_path, text_column, output_format,
                   sys.stderr.isatty() if progress is None else progress)
        return
    if explain:
        # The engine predict would use gives the labels; gradients come from the PyTorch weights.
        _explain(model, texts, reviews, output_path, text_column, top, output_format, config)
        return
    classifier = load_classifier(model, config, mode=mode, threshold=threshold)
    if explain_engine:
        info = classifier.info()
        typer.echo(f"engine: {info['backend']} {info['precision']} on {info['device']}: "
                   f"{info['engine_reason']}", err=True)
        if not texts and input_path is None:
            return
    if input_path is not None:
        _predict_file(classifier, input_path, output_path, text_column, overwrite,
                      sys.stderr.isatty() if progress is None else progress, output_format, reviews)
    else:
        _predict_texts(classifier, texts, output_format)


def _result_format(output_format: str | None, as_json: bool) -> str | None:
    """``--json`` is another name for ``--format jsonl``; both work for every source of reviews."""
    from ..tables import check_output_format

    check_output_format(output_format)
    if as_json and output_format not in (None, "jsonl"):
        raise UserError(f"--json is --format jsonl; give --format {output_format} or --json, not both")
    return "jsonl" if as_json else output_format


def _argument_reviews(texts: list[str]) -> list[str]:
    """Refuse a review whose bytes are not UTF-8, as for stdin (Python keeps such bytes as
    lone surrogates, which no tokenizer or terminal accepts)."""
    import os

    for number, text in enumerate(texts, start=1):
        try:
            os.fsencode(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"review {number} on the command line is not valid UTF-8 "
                            f"(bad byte at offset {error.start}); pass UTF-8 text") from error
    return texts


def _stdin_reviews() -> list[str]:
    from ..tables import read_lines

    if sys.stdin is None or sys.stdin.isatty():
        raise UserError("give review texts, --input FILE, or pipe reviews on stdin (one per line)")
    reviews = read_lines(sys.stdin.buffer.read(), "stdin")
    if not reviews:
        raise UserError("no reviews on stdin")
    return reviews


def _predict_texts(classifier: Classifier, texts: list[str], output_format: str | None) -> None:
    """Results for reviews given as arguments or on stdin: a table in ``output_format`` on stdout, or
    one tab-separated line per review."""
    import pandas as pd

    from ..scoring import predict_frame
    from ..tables import write_stream

    frame, names = predict_frame(classifier, pd.DataFrame({"text": texts}), "text")
    if output_format is not None:
        write_stream(frame, output_format)
    else:
        for row in frame.itertuples(index=False):
            label, score, truncated, error = (getattr(row, name) for name in names)
            if isinstance(error, str):  # pandas may hold "no error" as NaN
                typer.echo(f"ERROR\t\t{error}")
                continue
            stars = f"\t{row.stars:.1f} stars" if "stars" in frame.columns else ""
            typer.echo(f"{label}\t{score:.4f}{stars}" + ("\t(truncated)" if truncated else ""))
    _warn_bad_rows(int(frame[names[3]].notna().sum()), "line(s)")


def _predict_file(classifier: Classifier, input_path: Path, output_path: str | None,
                  text_column: str, overwrite: bool, progress: bool, output_format: str | None,
                  reviews: pd.DataFrame | None) -> None:
    from tqdm import tqdm

    from ..scoring import FileOptions, predict_file

    files = FileOptions(input_path, None if output_path is None else Path(output_path), text_column,
                        output_format, overwrite)
    with tqdm(unit="review", desc="predicting", file=sys.stderr, disable=not progress) as bar:

        def sized(rows: int) -> None:
            bar.total = rows
            bar.refresh()

        summary = predict_file(classifier, files, progress=bar.update, on_rows=sized, reviews=reviews)
    rate = summary.scored / summary.seconds if summary.seconds > 0 else 0.0
    typer.echo(f"predicted {summary.scored} review(s) in {_duration(summary.seconds)} "
               f"({_three_digits(rate)} reviews/s) -> {output_path or 'stdout'}", err=True)
    if summary.renamed:
        _note_renamed(summary.added or summary.columns)
    _warn_bad_rows(summary.bad_rows, f"row(s) (see the {summary.columns[3]} column)")


def _note_renamed(added: list[str]) -> None:
    typer.echo(f"note: the input already has columns named like the results; the results are in "
               f"{', '.join(added)}", err=True)


def _predict_ray(job: RayScoring) -> None:
    from ..ray_scoring import score_files

    summary = score_files(job)
    rate = summary.rows / summary.seconds if summary.seconds > 0 else 0.0
    typer.echo(f"predicted {summary.rows - summary.bad_rows} review(s) from {summary.files} file(s) on "
               f"{summary.actors} Ray actor(s) in {_duration(summary.seconds)} "
               f"({_three_digits(rate)} rows/s) -> {job.output}", err=True)
    _warn_bad_rows(summary.bad_rows, f"row(s) (see the {summary.columns[3]} column)")


def _duration(seconds: float) -> str:
    """Three significant digits: ``4.21 ms``, ``0.153 s``, ``12.4 s``, ``95 s``."""
    return f"{_three_digits(seconds * 1000)} ms" if seconds < 0.1 else f"{_three_digits(seconds)} s"


def _three_digits(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _explain(model: str, texts: list[str] | None, reviews: pd.DataFrame | None, output_path: str | None,
             text_column: str, top: int, output_format: str | None, config: InferenceConfig) -> None:
    """``--explain``: the strongest words per review, printed, or as a table (always for --input)
    with an explanation column, in --output or on stdout."""
    import pandas as pd

    from ..explain import explain_frame, load_explainer
    from ..tables import write_stream, write_table

    if top <= 0:
        raise UserError(f"--top must be positive, got {top}")
    quiet_model_loading()
    explainer = load_explainer(model, config=config)
    if reviews is not None:
        frame = explain_frame(explainer, reviews, text_column, top)
        if output_path is not None:
            write_table(frame, Path(output_path), output_format)
        else:
            write_stream(frame, output_format or "csv")
        added = [str(name) for name in frame.columns[len(reviews.columns):]]
        failed = int(frame[added[-1]].notna().sum())  # the error column comes last
        typer.echo(f"explained {len(frame) - failed} review(s) ({explainer.method}) -> "
                   f"{output_path or 'stdout'}", err=True)
        if added[0] != "label":
            _note_renamed(added)
        _warn_bad_rows(failed, f"row(s) (see the {added[-1]} column)", "explained")
        return
    frame = explain_frame(explainer, pd.DataFrame({"text": texts}), "text", top)
    if output_format not in (None, "jsonl"):
        write_stream(frame, output_format)
        _warn_bad_rows(int(frame["error"].notna().sum()), "line(s)", "explained")
        return
    for row in frame.to_dict("records"):
        for key in ("label", "explanation", "error"):  # pandas may hold "none" as NaN
            row[key] = row[key] if isinstance(row[key], str) else None
        words = json.loads(row["explanation"]) if row["explanation"] else None
        if output_format == "jsonl":  # the words as a list, not as JSON text
            record = {key: row[key] for key in ("text", "label", "score", "stars", "error") if key in row}
            typer.echo(json.dumps({**record, "explanation": words}, ensure_ascii=False))
        elif row["error"]:
            typer.echo(f"ERROR\t\t{row['error']}")
        else:
            stars = f"\t{row['stars']:.1f} stars" if row.get("stars") is not None else ""
            pairs = ", ".join(f"{word} {weight:+.3f}" for word, weight in words)
            typer.echo(f"{row['label']}\t{row['score']:.4f}{stars}\t{pairs}")
    _warn_bad_rows(int(frame["error"].notna().sum()), "line(s)", "explained")


def _load_interpreter(model: str, interpreter: str | None, config: InferenceConfig, settings: Path | None,
                         mode: str | None, threshold: float | None) -> Interpreter:
    """The LLM of ``--interpreter`` explaining ``--model`` (with its hybrid mode), else ``--model``
    as the LLM."""
    from ..interpretation import load_interpreter

    quiet_model_loading()
    if interpreter is None:
        return load_interpreter(model, config, settings=settings)
    return load_interpreter(interpreter, config, settings=settings, classifier=model, mode=mode,
                            threshold=threshold)


def _interpret(llm: Interpreter, texts: list[str] | None, reviews: pd.DataFrame | None,
               output_path: str | None, text_column: str, output_format: str | None, progress: bool) -> None:
    """``--interpret``: one JSON object per review given as text (or a table in ``--format``); for
    ``--input``, the table with one column per field, in --output or on stdout."""
    import time

    import pandas as pd
    from tqdm import tqdm

    from ..interpretation import interpret_frame
    from ..tables import write_stream, write_table

    frame = reviews if reviews is not None else pd.DataFrame({"text": texts})
    column = text_column if reviews is not None else "text"
    if reviews is None and output_format in (None, "jsonl"):
        failed = 0
        for text, answer in zip(texts or [], llm.interpret(texts or []), strict=True):
            failed += answer.get("error") is not None
            typer.echo(json.dumps({"text": text, **answer}, ensure_ascii=False))
        if failed:
            typer.echo(f"warning: {failed} review(s) could not be interpreted (see their error)", err=True)
        return
    began = time.monotonic()
    with tqdm(total=len(frame), unit="review", desc="interpreting", file=sys.stderr,
              disable=not progress) as bar:
        result = interpret_frame(llm, frame, column, progress=bar.update)
    added = [str(name) for name in result.columns[len(frame.columns):]]
    if output_path is not None:
        write_table(result, Path(output_path), output_format)
    else:
        write_stream(result, output_format or "csv")
    failed = int(result[added[-1]].notna().sum())  # the error column comes last
    if reviews is not None:
        typer.echo(f"interpreted {len(frame) - failed} review(s) in {_duration(time.monotonic() - began)} "
                   f"-> {output_path or 'stdout'}", err=True)
        if added[0] != "label":
            _note_renamed(added)
    if failed:
        typer.echo(f"warning: {failed} row(s) could not be interpreted (see the {added[-1]} column)",
                   err=True)


def _warn_bad_rows(count: int, what: str, done: str = "scored") -> None:
    if count:
        typer.echo(f"warning: {count} {what} could not be {done}: empty, not text or too long", err=True)


def register(app: typer.Typer) -> None:
    """Add ``predict`` to ``app``."""
    app.command("predict")(predict)
