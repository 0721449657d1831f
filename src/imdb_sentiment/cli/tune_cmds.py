"""``tune``: Optuna search over fine-tuning settings, resumable, several workers per study."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ..formatting import format_value
from ..quickstart import DEFAULT_MODEL
from .options import (
    DATA,
    OUTPUT,
    OVERWRITE,
    RUNS_DIR,
    SEED,
)


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
    seed: int | None = typer.Option(None, *SEED.param_decls, help=SEED.help, callback=SEED.callback),
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
               f"storage {tuning.display_url(tuning.storage_url(settings.storage, settings.runs_dir))}",
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
    from ..config import read_config_file, resolve_train_settings
    from ..tracking import resolve_runs_dir
    from ..tuning import TuneSettings, load_search_space, validate_search_space

    file_keys = read_config_file(config_file) if config_file is not None else {}
    # Merged as `train` merges them (preset, run file, options; the run file's data keys too), so
    # the trials carve and subsample the validation split that training the best settings will.
    base, run = resolve_train_settings(config_file, None, overrides, dict(
        model=model or (None if file_keys.get("model") else DEFAULT_MODEL), data=data,
        max_test_samples=max_test_samples))
    space = load_search_space(space_file)
    table = file_keys.get("search_space")
    if space_file is None and isinstance(table, dict):
        space = validate_search_space(table, str(config_file))
    return TuneSettings(
        model=run["model"], data=run["data"], trials=trials, study_name=study_name, storage=storage,
        runs_dir=resolve_runs_dir(runs_dir), base=base, search_space=space, timeout=timeout,
        prune=not no_prune, progress=sys.stderr.isatty(), max_test_samples=run["max_test_samples"],
        cleaning=run["cleaning"], text_column=run["text_column"], label_column=run["label_column"],
    )


def _print_tune_result(result: Any, output: Path) -> None:
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.counts.items()))
    typer.echo(f"study {result.study_name!r}: {counts} (this run: {result.ran} trials)")
    if result.best_value is not None:
        settings = ", ".join(f"{k}={format_value(v)}" for k, v in result.best_params.items())
        typer.echo(f"best: trial {result.best_trial}, validation accuracy {result.best_value:.4f} "
                   f"({settings})")
        typer.echo(f"best settings -> {output / 'best_config.toml'}  "
                   f"(imdb-sentiment train --config {output / 'best_config.toml'} --output DIR)")
    if result.final is not None and result.final.test_metrics:
        test = result.final.test_metrics
        typer.echo(f"final: test accuracy {test['accuracy']:.4f}  f1 {test['f1']:.4f} on {test['n_test']} "
                   f"reviews -> {output / 'model'}")


def register(app: typer.Typer) -> None:
    """Add ``tune`` to ``app``."""
    app.command("tune")(tune)
