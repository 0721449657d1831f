"""``runs``: list the runs recorded in a runs folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from .options import (
    RUNS_DIR,
)


def runs(
    runs_dir: Path = typer.Option("runs", *RUNS_DIR.param_decls, envvar=RUNS_DIR.envvar,
                                  help="The runs folder to list."),
    stage: list[str] | None = typer.Option(
        None, "--stage", help="Only runs of this stage (baseline, evaluate, train, tune-trial, tuned; "
                              "repeatable)."),
    last: int | None = typer.Option(None, "--last", help="Only the most recent N runs."),
) -> None:
    """List recorded runs: when, stage, model, split, accuracy, F1, duration, status."""
    from ..formatting import short_model_name
    from ..reporting import summarize_run
    from ..tracking import list_runs

    records = list_runs(runs_dir, stage or None)
    if last is not None:
        records = records[-last:] if last > 0 else []
    if not records:
        typer.echo(f"no runs in {runs_dir}" + (f" for stage {', '.join(stage)}" if stage else ""))
        return
    headers = ["run", "started", "stage", "model", "split", "accuracy", "f1", "duration", "status"]
    rows = []
    for record in records:
        entry = summarize_run(record)
        rows.append([
            record.run_id[:8], dt.datetime.fromtimestamp(record.start_time).strftime("%Y-%m-%d %H:%M"),
            record.stage, short_model_name(record.model), entry.split,
            _cell(entry.accuracy), _cell(entry.f1),
            f"{record.duration:.1f}s" if record.duration is not None else "-", record.status.lower(),
        ])
    typer.echo(_table(headers, rows))


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``runs`` to ``app``."""
    app.command("runs")(runs)
