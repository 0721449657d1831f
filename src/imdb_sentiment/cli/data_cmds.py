"""``imdb-sentiment data ...``: look at a data source before training on it."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import Any

import typer

from ..errors import UserError
from . import options

EMPTY_NOTE = "Empty or whitespace-only reviews are skipped; a warning on stderr gives their count."
TEST_SIZE = typer.Option(
    0.2, "--test-size", help="Fraction held out as the test split when the source is a single file.",
)

data_app = typer.Typer(
    help=f"Inspect review data: split sizes, label balance, lengths. {EMPTY_NOTE}",
    no_args_is_help=True,
)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Show library warnings (e.g. skipped empty reviews) as one ``warning: ...`` line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for item in caught:
                if issubclass(item.category, UserWarning):
                    typer.echo(f"warning: {item.message}", err=True)


@data_app.command("info", help=f"Split sizes, label balance and length statistics. {EMPTY_NOTE}")
def info(
    data: str = options.DATA,
    text_column: str = options.TEXT_COLUMN,
    label_column: str = options.LABEL_COLUMN,
    cleaning: str = options.CLEANING,
    seed: int = options.SEED,
    validation_size: float = options.VALIDATION_SIZE,
    test_size: float = TEST_SIZE,
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    from ..config import DataSpec
    from ..data import LoadReport, describe, warn_about_splits

    spec = DataSpec(data, text_column=text_column, label_column=label_column, cleaning=cleaning, seed=seed,
                    validation_size=validation_size, test_size=test_size)
    report = LoadReport(data, "")
    with warnings_as_lines():
        frames = spec.load(require=(), report=report)
        if not frames:
            raise UserError(f"{data} holds no train, validation or test split")
        warn_about_splits(frames, data)
    summary = {"source": data, "kind": report.kind, "skipped_empty": report.skipped_empty,
               "test_carved": report.test_carved, "cleaning": cleaning, "splits": describe(frames)}
    typer.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text table of :func:`~imdb_sentiment.data.describe` output."""
    header = f"{'split':<11}{'reviews':>9}{'positive':>10}{'negative':>10}{'pos %':>7}" \
             f"{'mean chars':>12}{'median':>8}{'max':>8}{'mean words':>12}{'dup texts':>11}"
    lines = [f"source: {summary['source']} ({summary['kind']})", header]
    for split, stats in summary["splits"].items():
        share = 100 * stats["positive"] / stats["reviews"] if stats["reviews"] else 0.0
        lines.append(
            f"{split:<11}{stats['reviews']:>9,}{stats['positive']:>10,}{stats['negative']:>10,}{share:>7.1f}"
            f"{stats['mean_chars']:>12,.0f}{stats['median_chars']:>8,.0f}{stats['max_chars']:>8,}"
            f"{stats['mean_words']:>12,.0f}{stats['duplicate_texts']:>11,}"
        )
    lines.append(f"skipped empty reviews: {summary['skipped_empty']}")
    if summary["test_carved"]:
        lines.append("test split: carved from the single file (seeded, stratified)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    app.add_typer(data_app, name="data")
