"""``quickstart``: the whole study in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from ..quickstart import DEFAULT_MODEL, DEFAULT_PRETRAINED
from .options import (
    DATA,
    OUTPUT,
    RUNS_DIR,
    SEED,
)


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
        RUNS_DIR.default, *RUNS_DIR.param_decls, envvar=RUNS_DIR.envvar,
        help="Run store to record into, the same as every command's (so `runs` and `report` see the "
             "quickstart's runs); none: keep them in OUTPUT/runs only."),
    ready_model: str | None = typer.Option(
        None, "--ready-model",
        help="A model fine-tuned elsewhere (e.g. on a GPU with `train --preset fast`, such as "
             "../shared/models/minilm-imdb-fast), scored on the same test reviews at its own length."),
    llm: str | None = typer.Option(
        None, "--llm",
        help="A local prompted language model (a causal LM folder, e.g. one made by `imdb-sentiment "
             "prompt`, or a GGUF file), scored as it comes on the same test reviews, with its cost per "
             "1,000 reviews beside the fine-tuned model's and the hybrid's (default: skipped)."),
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
    """Run the whole study: baseline, pretrained classifier, (a prompted LLM), fine-tuning, hybrid, then
    the comparison report.

    On a CPU it fine-tunes on a subset so the job takes minutes; on a GPU it uses the full data.
    """
    from ..quickstart import make_plan, run_quickstart
    from ..tracking import resolve_runs_dir

    plan = make_plan(data=data, model=model, pretrained=pretrained, output=output,
                     runs_dir=resolve_runs_dir(runs_dir), baseline=baseline, seed=seed,
                     ready_model=ready_model, llm=llm,
                     overrides=dict(max_train_samples=max_train_samples, max_eval_samples=max_eval_samples,
                                    max_test_samples=max_test_samples, max_length=max_length, epochs=epochs))
    report = run_quickstart(plan, overwrite=overwrite, echo=lambda line: typer.echo(line, err=True))
    typer.echo(f"report -> {report / 'report.html'} (and report.md); runs recorded in {plan.runs_dir}")


def register(app: typer.Typer) -> None:
    """Add ``quickstart`` to ``app``."""
    app.command("quickstart")(quickstart)
