"""``report``: the comparison report (Markdown and HTML with plots) of recorded runs."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import (
    OUTPUT,
    OVERWRITE,
    RUNS_DIR,
)


def report(
    runs_dir: Path = typer.Option("runs", *RUNS_DIR.param_decls, envvar=RUNS_DIR.envvar,
                                  help="The runs folder to report on."),
    output: Path = OUTPUT,
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage with the studies to chart (default: RUNS_DIR/optuna.db)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Write report.md and report.html with plots: the leaderboard and the story of the runs."""
    from ..reporting import write_report

    result = write_report(runs_dir, output, storage=storage, overwrite=overwrite)
    typer.echo(f"report of {result.runs} runs -> {output / 'report.html'} and {output / 'report.md'} "
               f"({len(result.files)} files)")


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command("report")(report)
