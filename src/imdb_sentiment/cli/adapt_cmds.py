"""``adapt``: continue masked-word pre-training of an encoder on review text before ``train``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UserError
from .options import (
    CLEANING,
    DATA,
    MODEL_HELP,
    OUTPUT,
    OVERWRITE,
    RUNS_DIR,
    SEED,
    TEXT_COLUMN,
    quiet_model_loading,
)


def adapt(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP + " An encoder with a mask token."),
    data: str = DATA,
    output: Path = OUTPUT,
    texts: str = typer.Option(
        "unsupervised,train", "--texts",
        help="Where the text comes from, comma-separated: unsupervised (the unlabeled reviews, "
             "unsupervised.parquet in a data folder) and/or train (the training reviews less the "
             "validation split `train` carves). Test reviews are never used."),
    preset_name: str = typer.Option(
        "fast", "--preset", help="Base settings: fast (MiniLM, one GPU, minutes)."),
    epochs: float | None = typer.Option(None, "--epochs"),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Stop after this many steps (beats --epochs)."),
    learning_rate: float | None = typer.Option(None, "--learning-rate"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Sequences per step."),
    mask_rate: float | None = typer.Option(None, "--mask-rate", help="Share of words masked (0.15)."),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Tokens per sequence (256); longer reviews become several sequences."),
    whole_word: bool | None = typer.Option(
        None, "--whole-word/--no-whole-word", help="Mask whole words rather than word pieces (default on)."),
    precision: str | None = typer.Option(
        None, "--precision", help="auto (bf16 where supported), bf16 or fp32."),
    max_texts: int | None = typer.Option(
        None, "--max-texts", help="Quick run: a seeded subset of the texts."),
    save_steps: int | None = typer.Option(
        None, "--save-steps", help="Checkpoint every this many steps (500)."),
    seed: int = SEED,
    text_column: str = TEXT_COLUMN,
    cleaning: str = CLEANING,
    overwrite: bool = OVERWRITE,
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run (same settings)."),
    runs_dir: Path | None = RUNS_DIR,
) -> None:
    """Continue masked-language-model pre-training on IMDB text; OUTPUT is a model `train --model` takes."""
    from ..adaptation import AdaptRun, adapt_preset
    from ..adaptation import adapt as run_adapt
    from ..config import DataSpec

    quiet_model_loading()
    splits = tuple(part.strip() for part in texts.split(",") if part.strip())
    config = adapt_preset(preset_name).replace(
        epochs=epochs, max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size,
        mask_rate=mask_rate, max_length=max_length, whole_word=whole_word, precision=precision,
        max_texts=max_texts, save_steps=save_steps, seed=seed)
    config.validate()
    if cleaning not in ("basic", "none"):
        raise UserError("adapt keeps the words as they are: --cleaning basic or none")
    spec = DataSpec(data, text_column=text_column, cleaning=cleaning, seed=config.seed,
                    validation_size=config.validation_size)
    settings = AdaptRun(texts=splits, preset=preset_name, resume=resume)
    result = run_adapt(model, spec, output, config, settings, overwrite=overwrite, runs_dir=runs_dir)
    metrics = result.metrics
    before = metrics["eval_loss_before"]
    change = (f"{before:.3f} -> {metrics['eval_loss']:.3f}" if before is not None
              else f"{metrics['eval_loss']:.3f}")
    typer.echo(f"masked-word loss {change} after {metrics['steps']} steps on {metrics['n_texts']:,} texts "
               f"({metrics['train_seconds']:.0f} s) -> {result.output_dir}")


def register(app: typer.Typer) -> None:
    """Add ``adapt`` to ``app``."""
    app.command("adapt")(adapt)
