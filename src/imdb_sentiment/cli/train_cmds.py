"""``train``: fine-tune a pretrained encoder with presets, run files and explicit options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .options import (
    CLEANING,
    DATA,
    EXTRA_DATA,
    GROUP_COLUMN,
    HEAD_TOKENS_HELP,
    LABEL_COLUMN,
    MODEL_HELP,
    OUTPUT,
    OVERWRITE,
    RUNS_DIR,
    SEED,
    TEXT_COLUMN,
    TRUNCATION_HELP,
    TRUST_REMOTE_CODE,
    VALIDATION_SIZE,
    quiet_model_loading,
)

if TYPE_CHECKING:
    from ..training import TrainResult


def _unset(option: Any) -> Any:
    """``option`` with no default, so a value from ``--config`` is only overridden when given."""
    return typer.Option(None, *option.param_decls,
                        help=f"{option.help} Default: the --config file's, else {option.default}.")


def train(
    model: str | None = typer.Option(
        None, "--model", "-m", help=MODEL_HELP + " A bare encoder gets a new classification head."),
    data: str | None = _unset(DATA),
    output: Path = OUTPUT,
    preset_name: str | None = typer.Option(
        None, "--preset", help="Base settings: seed, seed-tuned (the reference study's) or fast (default)."),
    config_file: Path | None = typer.Option(
        None, "--config", help="TOML/YAML run file (e.g. configs/fast.toml or a model's train_config.toml); "
                               "options given here override it."),
    learning_rate: float | None = typer.Option(None, "--learning-rate"),
    epochs: float | None = typer.Option(None, "--epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Training reviews per step."),
    eval_batch_size: int | None = typer.Option(None, "--eval-batch-size"),
    warmup: float | None = typer.Option(None, "--warmup", help="Warm-up as a fraction of all steps."),
    weight_decay: float | None = typer.Option(None, "--weight-decay"),
    max_length: int | None = typer.Option(None, "--max-length", help="Tokens per review, specials included."),
    truncation: str | None = typer.Option(None, "--truncation", help=TRUNCATION_HELP),
    head_tokens: int | None = typer.Option(None, "--head-tokens", help=HEAD_TOKENS_HELP),
    precision: str | None = typer.Option(
        None, "--precision", help="auto (bf16 on GPUs and CPUs that support it, else fp32), bf16 or fp32."),
    target: str | None = typer.Option(
        None, "--target",
        help="label (polarity) or rating (polarity plus a 1-10 star rating output; needs a rating column)."),
    seed: int | None = _unset(SEED),
    validation_size: float | None = _unset(VALIDATION_SIZE),
    group_column: str | None = _unset(GROUP_COLUMN),
    max_train_samples: int | None = typer.Option(
        None, "--max-train-samples",
        help="Quick run: train on a seeded, label-balanced subset of this size; validation and test then "
             "use subsets of the same size unless --max-eval-samples / --max-test-samples say otherwise."),
    max_eval_samples: int | None = typer.Option(
        None, "--max-eval-samples", help="Validate each epoch on a subset of this size (default: all)."),
    max_test_samples: int | None = typer.Option(
        None, "--max-test-samples",
        help="Score the final model on a seeded, label-balanced test subset of this size (default: the whole "
             "test split; a number above its size also means all)."),
    no_test: bool = typer.Option(False, "--no-test", help="Skip the final test evaluation."),
    cleaning: str | None = _unset(CLEANING),
    text_column: str | None = _unset(TEXT_COLUMN),
    label_column: str | None = _unset(LABEL_COLUMN),
    push_to_hub: str | None = typer.Option(
        None, "--push-to-hub", help="After saving locally, upload model and card to this Hub repo."),
    overwrite: bool = OVERWRITE,
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from its last checkpoint (same settings)."),
    runs_dir: Path | None = RUNS_DIR,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    extra_data: list[str] | None = EXTRA_DATA,
) -> None:
    """Fine-tune a pretrained model; keep the best epoch by validation accuracy; score it on test.

    Settings: the preset, then the --config file, then the options given here. The resolved run
    is saved as OUTPUT/train_config.toml, so `train --config OUTPUT/train_config.toml` repeats it.
    """
    from .. import distributed, training
    from ..config import TrainRun, resolve_train_settings
    from ..modeling import default_device

    quiet_model_loading()
    config, run = resolve_train_settings(config_file, preset_name, dict(
        learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, eval_batch_size=eval_batch_size,
        warmup=warmup, weight_decay=weight_decay, max_length=max_length, truncation=truncation,
        head_tokens=head_tokens, precision=precision, seed=seed, validation_size=validation_size,
        max_train_samples=max_train_samples, max_eval_samples=max_eval_samples, target=target,
        group_column=group_column,
    ), dict(model=model, data=data, cleaning=cleaning, text_column=text_column, label_column=label_column,
            max_test_samples=max_test_samples))
    if (run["max_test_samples"] is None and not no_test and default_device() == "cpu"
            and distributed.is_main()):
        typer.echo("note: scoring the final model on the whole test split takes a while on a CPU; "
                   "--max-test-samples N scores a subset, --no-test skips it", err=True)
    data_spec = config.data_spec(run["data"], cleaning=run["cleaning"], text_column=run["text_column"],
                                 label_column=run["label_column"])
    settings = TrainRun(evaluate_test=not no_test, max_test_samples=run["max_test_samples"],
                        preset=run["preset"], resume=resume, trust_remote_code=trust_remote_code)
    result = training.train(run["model"], data_spec, output, config, settings, overwrite=overwrite,
                            progress=sys.stderr.isatty(), runs_dir=runs_dir, extra_data=extra_data or ())
    if not distributed.is_main():  # under torchrun: one summary and one upload, from the main process
        return
    _print_summary(result)
    if push_to_hub:
        training.push_model(output, push_to_hub)
        typer.echo(f"pushed to https://huggingface.co/{push_to_hub}")


def _print_summary(result: TrainResult) -> None:
    validation = result.validation_metrics.get("accuracy")
    parts = [f"validation accuracy {validation:.4f}" if validation is not None else "no validation score"]
    if result.test_metrics:
        test = result.test_metrics
        parts.append(f"test accuracy {test['accuracy']:.4f} on {test['n_test']} reviews")
        if test.get("mae") is not None:
            parts.append(f"MAE {test['mae']:.2f} stars, {test['within_one_star']:.1%} within one star")
    if "n_extra" in result.extra:
        parts.append(f"{result.extra['n_extra']:,} extra training reviews "
                     f"({result.extra['extra_dropped_in_evaluation']:,} dropped: in validation or test)")
    resumed = " (after resuming)" if result.extra.get("resumed_from") else ""
    parts.append(f"trained in {result.train_seconds:.0f} s{resumed}")
    typer.echo("  ".join(parts) + f"  -> {result.output_dir}")


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train)
