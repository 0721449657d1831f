"""``imdb-sentiment baseline``: train and evaluate a bag-of-words baseline (a thin layer over the API)."""

from __future__ import annotations

import typer

from . import options
from .data_cmds import EMPTY_NOTE, TEST_SIZE, warnings_as_lines

MODEL = typer.Option(
    "nbsvm", "--model", "-m",
    help="random-forest (the reference study's TF-IDF + Random Forest), logreg (TF-IDF 1-2-grams + "
         "logistic regression), nbsvm (naive Bayes features + logistic regression) or ridge-rating (ridge "
         "regression of the 1-10 star rating on TF-IDF 1-2-grams; needs a rating column).",
)


def baseline(
    data: str = options.DATA,
    model: str = MODEL,
    output: str = options.OUTPUT,
    overwrite: bool = options.OVERWRITE,
    runs_dir: str | None = options.RUNS_DIR,
    seed: int = options.SEED,
    cleaning: str = options.CLEANING,
    text_column: str = options.TEXT_COLUMN,
    label_column: str = options.LABEL_COLUMN,
    validation_size: float = options.VALIDATION_SIZE,
    test_size: float = TEST_SIZE,
    group_column: str | None = options.GROUP_COLUMN,
    extra_data: list[str] | None = options.EXTRA_DATA,
) -> None:
    from ..baselines import BaselineConfig, run_baseline
    from ..config import DataSpec

    spec = DataSpec(data, text_column=text_column, label_column=label_column, cleaning=cleaning, seed=seed,
                    validation_size=validation_size, test_size=test_size, group_column=group_column)
    with warnings_as_lines():
        metrics = run_baseline(spec, BaselineConfig(model), output, overwrite=overwrite, runs_dir=runs_dir,
                               progress=lambda line: typer.echo(line, err=True), extra_data=extra_data or ())
    validation = metrics["validation_accuracy"]
    typer.echo(
        f"{model}: test accuracy {metrics['accuracy']:.4f}, f1 {metrics['f1']:.4f}"
        + (f", validation accuracy {validation:.4f}" if validation is not None else "")
        + (f", MAE {metrics['mae']:.2f} stars, {metrics['within_one_star']:.1%} within one star"
           if "mae" in metrics else "")
        + (f", {metrics['n_extra']:,} extra training reviews ({metrics['extra_dropped_in_evaluation']:,} "
           "dropped: in validation or test)" if "n_extra" in metrics else "")
        + f" ({metrics['n_test']:,} test reviews; training {metrics['train_seconds']:.1f} s, "
          f"{metrics['seconds']:.1f} s in all); saved to {output}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``baseline`` command to ``app``."""
    app.command(
        "baseline",
        help="Train a bag-of-words baseline on train, report validation accuracy, evaluate on the "
             f"full test split; write OUTPUT/metrics.json and OUTPUT/model/. {EMPTY_NOTE}",
    )(baseline)
