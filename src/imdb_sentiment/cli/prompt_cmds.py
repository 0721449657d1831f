"""``prompt``: make a prompted folder from a language model: k-shot demonstrations drawn from train,
the label bias fitted on validation."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from . import options


def prompt(
    model: str = typer.Option(
        ..., "--model", "-m",
        help="The instruction-tuned causal language model: a local folder, a .gguf file (or a folder with "
             "one), or a Hub id."),
    data: str = options.DATA,
    output: Path = typer.Option(
        ..., "--output", "-o",
        help="The prompted folder to write (prompt.toml, prompted.json); it loads wherever a model does."),
    prompt_file: Path | None = typer.Option(
        None, "--prompt",
        help="Prompt settings (system text, template, verbalizers): a TOML file like "
             "configs/llm-zero-shot.toml (default: its settings)."),
    shots: int = typer.Option(
        0, "--shots", help="Demonstrations per prompt, drawn from train, half of each label (0: zero-shot)."),
    shot_max_tokens: int = typer.Option(
        160, "--shot-max-tokens", help="Demonstrations are training reviews of at most this many tokens."),
    calibrate: bool = typer.Option(
        True, "--calibrate/--no-calibrate",
        help="Fit the bias on the label log-odds for accuracy on validation (never on test)."),
    validation_samples: int | None = typer.Option(
        500, "--validation-samples",
        help="Validation reviews to fit the bias on (seeded, label-balanced)."),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Review tokens per prompt (default: the prompt settings', 512)."),
    batch_size: int | None = options.BATCH_SIZE,
    device: str | None = options.DEVICE,
    precision: str = typer.Option("auto", "--precision", help="auto, fp32 or bf16."),
    validation_size: float = options.VALIDATION_SIZE,
    group_column: str | None = options.GROUP_COLUMN,
    text_column: str = options.TEXT_COLUMN,
    label_column: str = options.LABEL_COLUMN,
    cleaning: str = options.CLEANING,
    seed: int = options.SEED,
    overwrite: bool = options.OVERWRITE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
) -> None:
    """Prompt a language model as a classifier: draw demonstrations, fit its bias, save a prompted folder."""
    from ..config import DataSpec, InferenceConfig
    from ..llm import PromptSettings
    from ..prompt_fitting import PromptFitting, fit_prompt
    from .data_cmds import warnings_as_lines
    from .options import quiet_model_loading

    quiet_model_loading()
    fitting = PromptFitting(shots=shots, shot_max_tokens=shot_max_tokens, calibrate=calibrate,
                            validation_samples=validation_samples, seed=seed)
    spec = DataSpec(data, text_column=text_column, label_column=label_column, cleaning=cleaning, seed=seed,
                    validation_size=validation_size, group_column=group_column)
    settings = PromptSettings.from_file(prompt_file) if prompt_file is not None else None
    config = InferenceConfig(max_length=max_length, batch_size=batch_size, device=device, precision=precision,
                             trust_remote_code=trust_remote_code)
    with warnings_as_lines():
        record = fit_prompt(model, spec, output, fitting, settings=settings, config=config,
                            overwrite=overwrite, progress=sys.stderr.isatty())
    found = record["validation"]
    typer.echo(f"{record['demonstrations']}-shot, {record['prompt_tokens']} prompt tokens; on "
               f"{found['reviews']} validation reviews: accuracy {found['accuracy_without_bias']:.4f} "
               f"({found['positive_share_without_bias']:.0%} called positive) without bias, "
               f"{found['accuracy']:.4f} ({found['positive_share']:.0%}) with bias {found['bias']:+.3f}"
               f"  -> {output}")


def register(app: typer.Typer) -> None:
    app.command("prompt")(prompt)
