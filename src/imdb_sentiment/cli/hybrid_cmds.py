"""``imdb-sentiment hybrid``: a baseline screen plus a transformer (fine-tuned, or a prompted language
model), fitted on validation."""

from __future__ import annotations

import typer

from . import options
from .data_cmds import warnings_as_lines


def hybrid(
    baseline: str = typer.Option(..., "--baseline", "-b",
                                 help="Baseline folder from `imdb-sentiment baseline` (e.g. nbsvm)."),
    transformer: str = typer.Option(..., "--transformer", "-t",
                                    help="Fine-tuned transformer folder (from `imdb-sentiment train`), or a "
                                         "prompted language model: a causal LM folder or a GGUF file."),
    data: str = options.DATA,
    output: str = options.OUTPUT,
    mode: str = typer.Option(
        "auto", "--mode",
        help="The folder's default: ensemble (best accuracy), cascade (the transformer only where the "
             "screen is unsure) or auto (cascade on a CPU, ensemble on a GPU)."),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Cascade threshold to use instead of the one validation chooses (0-0.5)."),
    max_drop: float = typer.Option(
        0.0, "--max-drop",
        help="Validation accuracy points the cascade may give up against the transformer alone."),
    copy_transformer: bool = typer.Option(
        False, "--copy-transformer", help="Copy the transformer into the folder (default: refer to it)."),
    refit_by: str = typer.Option(
        "auto", "--refit-by",
        help="How the screen is scored on validation. auto: out of fold, with copies refit without "
             "each fold of the validation movies (--group-column, or a movie column when the data has "
             "one; 5 refits), else one copy refit on the training part; a column name: group by it; "
             "folds: refit on the training part; none: the screen as given (experts: it may have "
             "learned from those reviews and win too much weight)."),
    device: str | None = options.DEVICE,
    backend: str = options.BACKEND,
    seed: int = options.SEED,
    validation_size: float = options.VALIDATION_SIZE,
    group_column: str | None = options.GROUP_COLUMN,
    cleaning: str = options.CLEANING,
    text_column: str = options.TEXT_COLUMN,
    label_column: str = options.LABEL_COLUMN,
    overwrite: bool = options.OVERWRITE,
    runs_dir: str | None = options.RUNS_DIR,
) -> None:
    from ..hybrid import HybridConfig, build_hybrid

    config = HybridConfig(mode=mode, threshold=threshold, max_drop=max_drop, seed=seed,
                          validation_size=validation_size, group_column=group_column, cleaning=cleaning,
                          text_column=text_column, label_column=label_column,
                          copy_transformer=copy_transformer, refit_by=refit_by, device=device,
                          backend=backend)
    options.quiet_model_loading()
    with warnings_as_lines():
        metrics = build_hybrid(baseline, transformer, data, output, config, overwrite=overwrite,
                               progress=lambda line: typer.echo(line, err=True), runs_dir=runs_dir)
    accuracy = metrics["validation_accuracy"]
    typer.echo(f"validation accuracy: screen {accuracy['screen']:.4f}, "
               f"transformer {accuracy['transformer']:.4f}, "
               f"ensemble {accuracy['ensemble']:.4f} (screen weight {metrics['screen_weight']:.2f}), "
               f"cascade {accuracy['cascade']:.4f} at threshold {metrics['chosen_threshold']:.2f} "
               f"({metrics['validation_transformer_share']:.1%} to the transformer), screen scored "
               f"{metrics['refit']['summary']}; saved to {output}")


def register(app: typer.Typer) -> None:
    """Add the ``hybrid`` command to ``app``."""
    app.command(
        "hybrid",
        help="Combine a baseline (the fast screen) and a transformer (fine-tuned, or a prompted language "
             "model): score both on the "
             "validation split (never test), fit the blend and the cascade threshold, and write a "
             "model folder that predict, evaluate and serve accept.",
    )(hybrid)
