"""``tune`` (Optuna search), ``runs`` (recorded runs), ``report`` (comparison) and ``quickstart``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import UserError
from ..quickstart import DEFAULT_MODEL, DEFAULT_PRETRAINED
from .options import DATA, OUTPUT, OVERWRITE, RUNS_DIR, SEED


def tune(
    model: str | None = typer.Option(
        None, "--model", "-m", help=f"Encoder to fine-tune: Hub id or local folder (default: the --config "
                                    f"file's model, else {DEFAULT_MODEL})."),
    data: str | None = typer.Option(None, *DATA.param_decls, help=DATA.help),
    trials: int = typer.Option(
        10, "--trials", "-n",
        help="Finished trials the study should have. A rerun (or another worker) only runs the missing "
             "ones, so the same command resumes an interrupted study."),
    storage: str | None = typer.Option(
        None, "--storage",
        help="Study database URL (default: sqlite:///RUNS_DIR/optuna.db). Workers on several machines "
             "share postgresql://USER:PASSWORD@HOST/DB (needs psycopg2)."),
    study_name: str = typer.Option("imdb-sentiment", "--study-name", help="Study to create, resume or join."),
    runs_dir: Path | None = RUNS_DIR,
    output: Path = typer.Option(
        ..., *OUTPUT.param_decls,
        help="Folder for best_config.toml, trials.csv, study.json (and model/ with --final); refused if it "
             "holds anything else than an earlier output of the same study."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Start no new trial after this many seconds (a running one finishes)."),
    max_train_samples: int | None = typer.Option(
        None, "--max-train-samples", help="Train each trial on a seeded, label-balanced subset."),
    max_eval_samples: int | None = typer.Option(
        None, "--max-eval-samples", help="Validate each epoch on a subset of this size."),
    max_length: int | None = typer.Option(None, "--max-length", help="Tokens per review, specials included."),
    max_test_samples: int | None = typer.Option(
        None, "--max-test-samples", help="With --final: score on a test subset of this size."),
    final: bool = typer.Option(
        False, "--final", help="Retrain the best settings on train and evaluate once on test."),
    config_file: Path | None = typer.Option(
        None, "--config", help="Run file with fixed settings (a \\[train] table, as `train --config` reads); "
                               "a \\[search_space] table in it replaces the default space."),
    search_space: Path | None = typer.Option(
        None, "--search-space", help="TOML search space (see configs/search_space.toml)."),
    no_prune: bool = typer.Option(False, "--no-prune", help="Never stop a trial early."),
    seed: int | None = typer.Option(None, *SEED.param_decls, help=SEED.help),
    overwrite: bool = OVERWRITE,
) -> None:
    """Search learning rate, batch size, epochs, warm-up and weight decay for the best validation accuracy.

    Writes OUTPUT/best_config.toml (for `train --config`), trials.csv and study.json; each trial is
    recorded in the runs folder. Test data is used only by --final.
    """
    from .. import tuning

    settings = _tune_settings(model, data, trials, storage, study_name, runs_dir, timeout, config_file,
                              search_space, dict(max_train_samples=max_train_samples,
                                                 max_eval_samples=max_eval_samples, max_length=max_length,
                                                 seed=seed), no_prune, max_test_samples)
    typer.echo(f"study {settings.study_name!r}: {settings.trials} finished trials wanted; "
               f"storage {tuning.display_url(settings.storage or tuning.default_storage(settings.runs_dir))}",
               err=True)
    try:
        result = tuning.run_study(settings, output, final=final, overwrite=overwrite,
                                  echo=lambda line: typer.echo(line, err=True))
    except KeyboardInterrupt:
        typer.echo("interrupted: finished trials are kept and the running one is marked failed; "
                   "run the same command to resume", err=True)
        raise
    _print_tune_result(result, output)


def _tune_settings(model: str | None, data: str | None, trials: int, storage: str | None, study_name: str,
                   runs_dir: Path | None, timeout: float | None, config_file: Path | None,
                   space_file: Path | None, overrides: dict[str, Any], no_prune: bool,
                   max_test_samples: int | None) -> Any:
    from ..config import preset, read_config_file, train_config_from_file
    from ..data import DEFAULT_SOURCE
    from ..tracking import ensure_writable, resolve_runs_dir
    from ..tuning import TuneSettings, load_search_space, validate_search_space

    base, run = (train_config_from_file(config_file) if config_file else (preset("fast"), {}))
    space = load_search_space(space_file)
    if space_file is None and config_file is not None:
        table = read_config_file(config_file).get("search_space")
        if isinstance(table, dict):
            space = validate_search_space(table, str(config_file))
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout must be positive, got {timeout}")
    folder = resolve_runs_dir(runs_dir)
    if folder is not None:
        ensure_writable(folder)
    return TuneSettings(
        model=model or run.get("model") or DEFAULT_MODEL, data=data or run.get("data") or DEFAULT_SOURCE,
        trials=trials, study_name=study_name, storage=storage, runs_dir=folder,
        base=base.replace(**overrides),
        search_space=space, timeout=timeout, prune=not no_prune, progress=sys.stderr.isatty(),
        max_test_samples=max_test_samples,
    )


def _print_tune_result(result: Any, output: Path) -> None:
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.counts.items()))
    typer.echo(f"study {result.study_name!r}: {counts} (this run: {result.ran} trials)")
    if result.best_value is not None:
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in result.best_params.items())
        typer.echo(f"best: trial {result.best_trial}, validation accuracy {result.best_value:.4f} "
                   f"({settings})")
        typer.echo(f"best settings -> {output / 'best_config.toml'}  "
                   f"(imdb-sentiment train --config {output / 'best_config.toml'} --output DIR)")
    if result.final is not None and result.final.test_metrics:
        test = result.final.test_metrics
        typer.echo(f"final: test accuracy {test['accuracy']:.4f}  f1 {test['f1']:.4f} on {test['n_test']} "
                   f"reviews -> {output / 'model'}")


def runs(
    runs_dir: Path = typer.Option("runs", *RUNS_DIR.param_decls, envvar=RUNS_DIR.envvar,
                                  help="The runs folder to list."),
    stage: list[str] | None = typer.Option(
        None, "--stage", help="Only runs of this stage (baseline, evaluate, train, tune-trial, tuned; "
                              "repeatable)."),
    last: int | None = typer.Option(None, "--last", help="Only the most recent N runs."),
) -> None:
    """List recorded runs: when, stage, model, split, accuracy, F1, duration, status."""
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
            record.stage, Path(record.model.rstrip("/")).name or record.model, entry.split,
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


def quickstart(
    data: str = DATA,
    model: str = typer.Option(
        DEFAULT_MODEL, "--model", "-m",
        help="Encoder to fine-tune: Hub id or local folder (e.g. ../shared/models/all-MiniLM-L6-v2)."),
    pretrained: str = typer.Option(
        "auto", "--pretrained",
        help="Ready-made sentiment classifier to score as it comes: Hub id or folder; "
             f"auto: {DEFAULT_PRETRAINED} when the Hub is reachable; none: skip."),
    output: Path = typer.Option(
        ..., *OUTPUT.param_decls,
        help="Folder for baseline/, pretrained/, fine-tuned/, runs/ and report/; refused if it holds "
             "anything else than an earlier quickstart (whose subfolders are replaced)."),
    runs_dir: Path | None = typer.Option(
        None, *RUNS_DIR.param_decls, help="Run store to record into (default: OUTPUT/runs)."),
    baseline: str = typer.Option(
        "random-forest", "--baseline", help="Bag-of-words baseline: random-forest (the reference study's), "
                                            "logreg or nbsvm."),
    max_train_samples: int | None = typer.Option(
        None, "--max-train-samples", help="Fine-tuning subset (CPU default 1,000; GPU: all; 0: all)."),
    max_eval_samples: int | None = typer.Option(
        None, "--max-eval-samples", help="Validation subset per epoch (CPU default 200; 0: all)."),
    max_test_samples: int | None = typer.Option(
        None, "--max-test-samples",
        help="Test reviews every stage is scored on (CPU default 500; 0: all)."),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Tokens per review (CPU default 128, GPU 512)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Fine-tuning epochs (CPU default 1, GPU 3)."),
    seed: int = SEED,
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Also write into a folder that holds other files (they are kept)."),
) -> None:
    """Run the whole study: baseline, pretrained classifier, fine-tuning, then the comparison report.

    On a CPU it fine-tunes on a subset so the job takes minutes; on a GPU it uses the full data.
    """
    from ..quickstart import make_plan, run_quickstart

    plan = make_plan(data=data, model=model, pretrained=pretrained, output=output, runs_dir=runs_dir,
                     baseline=baseline, seed=seed,
                     overrides=dict(max_train_samples=max_train_samples, max_eval_samples=max_eval_samples,
                                    max_test_samples=max_test_samples, max_length=max_length, epochs=epochs))
    report = run_quickstart(plan, overwrite=overwrite, echo=lambda line: typer.echo(line, err=True))
    typer.echo(f"report -> {report / 'report.html'} (and report.md); runs recorded in {plan.runs_dir}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("tune")(tune)
    app.command("runs")(runs)
    app.command("report")(report)
    app.command("quickstart")(quickstart)
