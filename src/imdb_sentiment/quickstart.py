"""The main job in one command: baseline → pretrained classifier → (prompted LLM) → fine-tuned model →
hybrid → report.

Every stage is scored on the same test reviews, recorded in the run store, and the report tells
the story from those records. On a CPU the defaults keep the whole job to minutes (a training
subset, shorter inputs, one epoch, a test subset); on a GPU it uses the full data. The defaults
name Hugging Face Hub ids; local folders replace them where the Hub cannot be reached.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from .config import DataSpec

DEFAULT_MODEL = "distilbert-base-uncased"
DEFAULT_PRETRAINED = "distilbert-base-uncased-finetuned-sst-2-english"
AUTO = "auto"
NONE = "none"
# Measured on 2 CPU cores: fine-tuning a 6-layer MiniLM runs at about 3 reviews/s at 128 tokens
# (2 at 256), so 1,000 reviews at 128 tokens keep the whole job to a few minutes.
CPU_DEFAULTS = {"max_train_samples": 1000, "max_eval_samples": 200, "max_test_samples": 500,
                "max_length": 128, "epochs": 1.0}
MARKER = "quickstart.json"
LLM_SKIPPED = "no --llm given: the prompted-LLM stage was skipped"
VALIDATION_SIZE = 0.1
GPU_DEFAULTS = {"max_train_samples": None, "max_eval_samples": None, "max_test_samples": None,
                "max_length": 512, "epochs": 3.0}

Echo = Callable[[str], None]


@dataclass
class QuickstartPlan:
    """What the job will do, resolved from options and the hardware; printed before it starts."""

    data: str
    model: str
    pretrained: str | None
    output: Path
    runs_dir: Path
    device: str
    baseline: str = "random-forest"
    ready_model: str | None = None
    """A model already fine-tuned elsewhere (e.g. on a GPU), scored next to the others."""
    llm: str | None = None
    """A prompted language model (a causal LM folder or a GGUF model), scored as it comes."""
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_test_samples: int | None = None
    max_length: int = 512
    epochs: float = 3.0
    seed: int = 42
    skipped: str = ""

    def data_spec(self) -> DataSpec:
        """The reviews every stage reads, carved as ``train`` carves them with the same seed."""
        from .config import DataSpec

        return DataSpec(self.data, seed=self.seed, validation_size=VALIDATION_SIZE)

    def describe(self) -> str:
        def size(n: int | None, what: str) -> str:
            return f"all {what}" if n is None else f"{n:,} {what}"

        return (f"{self.device.upper()} settings: {size(self.max_train_samples, 'train reviews')}, "
                f"{size(self.max_eval_samples, 'validation reviews')}, max_length {self.max_length}, "
                f"{self.epochs:g} epoch{'' if self.epochs == 1 else 's'}, "
                f"{size(self.max_test_samples, 'test reviews')} for every stage; the baseline and the "
                f"fine-tuned model learn from the same train reviews")

    def skipped_stages(self) -> list[str]:
        """One line per stage this job leaves out, saying why."""
        return [line for line in (self.skipped, "" if self.llm else LLM_SKIPPED) if line]


def make_plan(*, data: str, model: str, pretrained: str, output: str | Path, runs_dir: str | Path | None,
              device: str | None = None, overrides: dict[str, Any] | None = None,
              baseline: str = "random-forest", seed: int = 42, ready_model: str | None = None,
              llm: str | None = None) -> QuickstartPlan:
    """Resolve defaults: CPU-sized or full data by device; ``0`` sample sizes mean "all".

    ``runs_dir`` is the run store every command records into (``runs`` by default), so ``runs`` and
    ``report`` see the quickstart's runs; ``None`` (``--runs-dir none``) keeps them in OUTPUT/runs.
    """
    if device is None:
        from .modeling import default_device

        device = default_device()
    sizes = dict(GPU_DEFAULTS if device.startswith("cuda") else CPU_DEFAULTS)
    for key, value in (overrides or {}).items():
        if value is not None:
            if value < 0:
                raise UserError(f"--{key.replace('_', '-')} must be >= 0, got {value}")
            sizes[key] = None if value == 0 and key.endswith("samples") else value
    chosen, skipped = _pretrained(pretrained)
    out = Path(output).expanduser()
    if ready_model is not None and not Path(ready_model).expanduser().is_dir():
        raise UserError(f"--ready-model {ready_model} is not a model folder")
    if llm is not None:
        check_llm(llm)
    return QuickstartPlan(data=data, model=model, pretrained=chosen, output=out,
                          runs_dir=Path(runs_dir).expanduser() if runs_dir else out / "runs", device=device,
                          baseline=baseline, ready_model=ready_model, llm=llm, seed=seed, skipped=skipped,
                          **sizes)


def check_llm(llm: str) -> None:
    """``--llm`` must be a local prompted language model: a causal LM folder or a GGUF model."""
    from .llm import is_causal_lm_folder

    if not Path(llm).expanduser().exists():
        raise UserError(f"--llm {llm} not found (pass a local causal LM folder or GGUF file)")
    if not is_causal_lm_folder(Path(llm).expanduser()):
        raise UserError(f"--llm {llm} is not a causal language model (no config.json naming one, "
                        "and no GGUF file)")


def _pretrained(value: str) -> tuple[str | None, str]:
    """The pretrained classifier to score: ``auto`` uses the Hub's SST-2 model when reachable."""
    if value.strip().lower() == NONE:
        return None, "pretrained classifier: skipped (--pretrained none)"
    if value.strip().lower() != AUTO:
        return value, ""
    from .hub import hub_accepts_connections

    if hub_accepts_connections(honour_offline_mode=True):  # offline, the Hub default is skipped, not retried
        return DEFAULT_PRETRAINED, ""
    return None, (f"pretrained classifier: skipped ({DEFAULT_PRETRAINED} needs the Hugging Face Hub, "
                  "which is unreachable; pass --pretrained PATH to a local classifier)")


# --------------------------------------------------------------------------- the job


def run_quickstart(plan: QuickstartPlan, *, overwrite: bool = False, echo: Echo = print) -> Path:
    """Run every stage into ``plan.output``; return the report folder."""
    from .artifacts import check_output_dir, write_json
    from .reporting import write_report
    from .tracking import ensure_writable

    marker = plan.output / MARKER
    check_output_dir(plan.output, overwrite or marker.is_file(),  # a rerun may replace its own output
                     inputs=(plan.data, plan.model, plan.pretrained, plan.llm))
    session = uuid.uuid4().hex[:12]
    echo(plan.describe())
    for line in plan.skipped_stages():
        echo(line)
    frames = _load(plan, echo)  # bad data fails here, before anything is written
    _quiet_progress_bars()
    ensure_writable(plan.runs_dir)
    write_json(marker, {**asdict(plan), "session": session, "status": "running"})
    stages = [("baseline", run_baseline_stage), ("pretrained", run_pretrained_stage),
              ("prompted LLM", run_llm_stage), ("fine-tune", run_finetune_stage),
              ("ready model", run_ready_stage), ("hybrid", run_hybrid_stage)]
    wanted = {"pretrained": plan.pretrained is not None, "prompted LLM": plan.llm is not None,
              "ready model": plan.ready_model is not None}
    timings = {name: _stage(echo, name, lambda run=run: run(plan, frames, session))
               for name, run in stages if wanted.get(name, True)}
    report = plan.output / "report"
    note = " ".join([f"Quickstart on `{plan.data}`: {plan.describe()}.",
                     *(f"{line}." for line in plan.skipped_stages())])
    write_report(plan.runs_dir, report, overwrite=True, only={"quickstart": session}, notes=[note])
    write_json(marker, {**asdict(plan), "session": session, "status": "done", "seconds": timings})
    return report


def _quiet_progress_bars() -> None:
    """One line per stage is the job's progress; the libraries' loading bars would bury it."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _stage(echo: Echo, name: str, action: Callable[[], tuple[str, float]]) -> float:
    """Run one stage; print its summary and the one duration that is also recorded for it."""
    echo(f"{name} ...")
    summary, seconds = action()
    echo(f"{name}: {summary} (stage {seconds:.1f} s)")
    return seconds


def _load(plan: QuickstartPlan, echo: Echo) -> dict[str, pd.DataFrame]:
    """The train reviews every trained stage learns from and the test reviews every stage is scored on:
    the same seeded subsets that ``train`` draws from the same source, so the stages compare fairly."""
    from .data import subsample

    frames = plan.data_spec().load(require=("train", "test"))
    frames["full_train"] = frames["train"]  # what a ready model (trained elsewhere on all of it) saw
    frames["train"] = subsample(frames["train"], plan.max_train_samples, plan.seed)
    frames["validation"] = subsample(frames["validation"], plan.max_eval_samples, plan.seed)
    frames["test"] = subsample(frames["test"], plan.max_test_samples, plan.seed)
    echo(f"data: {len(frames['train']):,} train, {len(frames['validation']):,} validation, "
         f"{len(frames['test']):,} test reviews from {plan.data}")
    return frames


def run_baseline_stage(plan: QuickstartPlan, frames: dict[str, pd.DataFrame], session: str
                       ) -> tuple[str, float]:
    """Fit the bag-of-words baseline on the train reviews; score the test reviews; save and record it."""
    from .artifacts import atomic_output_dir, write_json
    from .baselines import fit_baseline, save_baseline

    started = time.perf_counter()
    model = fit_baseline(plan.baseline, frames["train"], plan.seed)
    train_seconds = time.perf_counter() - started
    metrics, predictions = _score_baseline(model, frames["test"])
    metrics.update(train_seconds=round(train_seconds, 2), n_train=len(frames["train"]))
    folder = plan.output / "baseline"
    with atomic_output_dir(folder, overwrite=True) as tmp:
        save_baseline(model, tmp / "model", plan.baseline)
        write_json(tmp / "metrics.json", metrics)
        predictions.to_parquet(tmp / "predictions.parquet", index=False)
    seconds = _record(plan, session, "baseline", plan.baseline, metrics, started,
                      [folder / "predictions.parquet", folder / "model"],
                      {"data": plan.data, "seed": plan.seed, "n_train": len(frames["train"])})
    return _summary(metrics) + f"; training {train_seconds:.1f} s", seconds


def _score_baseline(model: Any, test: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    import numpy as np
    import pandas as pd

    from .evaluation import classification_metrics

    started = time.perf_counter()
    scores = model.predict_proba(test["text"].tolist())[:, list(model.classes_).index(1)]
    seconds = time.perf_counter() - started
    predicted = (scores >= 0.5).astype(np.int64)
    metrics = classification_metrics(test["label"].to_numpy(), predicted, scores)
    metrics.update(seconds=round(seconds, 3),
                   reviews_per_second=round(len(test) / seconds, 2) if seconds > 0 else None)
    predictions = pd.DataFrame({"id": test["id"].astype(str), "label": test["label"].astype(np.int64),
                                "predicted": predicted, "score": scores.astype(np.float32)})
    return metrics, predictions


def run_pretrained_stage(plan: QuickstartPlan, frames: dict[str, pd.DataFrame], session: str
                         ) -> tuple[str, float]:
    """Score a ready-made sentiment classifier, as it comes, on the test reviews."""
    from .config import EvaluationConfig
    from .evaluation import evaluate_model

    started = time.perf_counter()
    folder = plan.output / "pretrained"
    metrics = evaluate_model(plan.pretrained, {"test": frames["test"]}, folder,
                             EvaluationConfig(max_length=plan.max_length, seed=plan.seed), overwrite=True)
    params = {k: metrics.get(k) for k in ("max_length", "truncation", "batch_size", "device", "dtype")}
    seconds = _record(plan, session, "pretrained", str(plan.pretrained), metrics, started,
                      [folder / "predictions.parquet"], params)
    return _summary(metrics), seconds


def run_llm_stage(plan: QuickstartPlan, frames: dict[str, pd.DataFrame], session: str) -> tuple[str, float]:
    """Score the prompted language model, as it comes (no training), on the test reviews, with the review
    tokens every model of this job reads; what it costs to run goes beside its accuracy."""
    from .classifier import PROMPTED_LLM
    from .config import EvaluationConfig
    from .evaluation import evaluate_model, llm_params, prompting_phrase

    started = time.perf_counter()
    folder = plan.output / "prompted-llm"
    metrics = evaluate_model(str(plan.llm), {"test": frames["test"]}, folder,
                             EvaluationConfig(max_length=plan.max_length, seed=plan.seed, device=plan.device),
                             overwrite=True, progress=_terminal())
    params = {k: metrics.get(k) for k in ("max_length", "truncation", "batch_size", "device", "dtype")}
    seconds = _record(plan, session, PROMPTED_LLM, str(plan.llm), metrics, started,
                      [folder / "predictions.parquet"], {**params, **llm_params(metrics)})
    rate = metrics.get("reviews_per_second")
    cost = f", {1000 / rate:.1f} s per 1,000 reviews ({rate:.1f} reviews/s)" if rate else ""
    return _summary(metrics) + f"; {prompting_phrase(metrics.get('llm') or {})}{cost}", seconds


def run_finetune_stage(plan: QuickstartPlan, frames: dict[str, pd.DataFrame], session: str
                       ) -> tuple[str, float]:
    """Fine-tune the encoder on the train reviews; the best epoch is scored on the test reviews.

    ``train`` reads the data source itself (and draws the same subsets as ``_load``), so the saved
    ``train_config.toml`` names the real data and ``train --config`` repeats the run.
    """
    from .config import TrainRun, preset
    from .training import train

    started = time.perf_counter()
    config = preset("fast").replace(max_length=plan.max_length, epochs=plan.epochs, seed=plan.seed,
                                    max_train_samples=plan.max_train_samples,
                                    max_eval_samples=plan.max_eval_samples)
    folder = plan.output / "fine-tuned"
    settings = TrainRun(max_test_samples=plan.max_test_samples)
    result = train(plan.model, plan.data_spec(), folder, config, settings, overwrite=True,
                   progress=_terminal())
    metrics = {**(result.test_metrics or {}), "validation": result.validation_metrics,
               "train_seconds": result.train_seconds, "n_train": result.extra.get("n_train")}
    seconds = _record(plan, session, "train", plan.model, metrics, started,
                      [folder / "predictions.parquet", folder], config.to_dict(), history=result.history)
    return _summary(metrics) + f"; training {result.train_seconds:.1f} s", seconds


def run_ready_stage(plan: QuickstartPlan, frames: dict[str, pd.DataFrame], session: str) -> tuple[str, float]:
    """Score a model fine-tuned elsewhere (e.g. the full-data GPU run) on the same test reviews, at the
    length it was trained with: what the full pipeline reaches, next to this machine's quick run."""
    from .artifacts import read_json
    from .config import EvaluationConfig
    from .evaluation import evaluate_model

    started = time.perf_counter()
    folder = plan.output / "ready-model"
    ready = str(plan.ready_model)
    metrics = evaluate_model(ready, {"test": frames["test"]}, folder, EvaluationConfig(seed=plan.seed),
                             overwrite=True, progress=_terminal())
    trained = Path(ready).expanduser() / "metrics.json"
    origin = read_json(trained) if trained.is_file() else {}
    # Its training happened elsewhere (params say where); the report places it on the time plot.
    metrics.update(n_train=origin.get("n_train"), train_seconds=origin.get("train_seconds"))
    params = {k: metrics.get(k) for k in ("max_length", "truncation", "batch_size", "device", "dtype")}
    params.update(trained_on=origin.get("device"), trained_with=origin.get("model"))
    seconds = _record(plan, session, "ready", ready, metrics, started, [folder / "predictions.parquet"],
                      params)
    where = f" (trained on {origin['device']})" if origin.get("device") else ""
    return _summary(metrics) + where, seconds


def run_hybrid_stage(plan: QuickstartPlan, frames: dict[str, pd.DataFrame], session: str
                     ) -> tuple[str, float]:
    """An NB-SVM screen in front of the best transformer at hand (the ready model, else the one just
    fine-tuned), fitted on the validation reviews and scored on the test reviews.

    The screen learns from the same train reviews as its transformer. When the data names each
    review's movie, the blend is chosen on scores from screens refit without the validation movies,
    as on test, where every movie is new (see :func:`imdb_sentiment.hybrid.group_out_of_fold`).
    """
    import tempfile

    from .artifacts import write_json
    from .baselines import fit_baseline, save_baseline
    from .config import EvaluationConfig
    from .evaluation import evaluate_model
    from .hybrid import HybridConfig, fit_hybrid, load_model

    started = time.perf_counter()
    transformer, train, source = _hybrid_transformer(plan, frames)
    config = HybridConfig(seed=plan.seed, device=plan.device, refit_folds=2)  # out of fold, by movie if named
    folder = plan.output / "hybrid"
    with tempfile.TemporaryDirectory(prefix="screen-") as screen_dir:
        fit_started = time.perf_counter()
        screen = fit_baseline("nbsvm", train, plan.seed)
        save_baseline(screen, screen_dir, "nbsvm")
        fit_seconds = round(time.perf_counter() - fit_started, 2)
        write_json(Path(screen_dir) / "metrics.json", {"train_seconds": fit_seconds, "n_train": len(train)})
        parts = {"train": train, "validation": frames["validation"]}  # the refits drop from the screen's own
        chosen = fit_hybrid(screen_dir, transformer, parts, folder, config, data=plan.data, overwrite=True)
    model = load_model(folder, device=plan.device)
    metrics = evaluate_model(model, {"test": frames["test"]}, plan.output / "hybrid-test",
                             EvaluationConfig(seed=plan.seed), overwrite=True, progress=_terminal())
    metrics.update(n_train=len(train), train_seconds=chosen["train_seconds"], mode=model.mode,
                   threshold=chosen["threshold"], screen_weight=chosen["screen_weight"],
                   validation_accuracy=chosen["validation_accuracy"]["ensemble"])
    refit = chosen["refit"]
    params = {"transformer": transformer, "transformer_source": source,
              "refit_by": refit["group_column"] or refit["scheme"],
              "mode": metrics["mode"], "threshold": chosen["threshold"], "fallback": chosen["fallback"]}
    seconds = _record(plan, session, "hybrid", str(folder), metrics, started,
                      [plan.output / "hybrid-test" / "predictions.parquet", folder], params)
    share = metrics.get("transformer_share")
    summary = (_summary(metrics) + f"; NB-SVM + {source} transformer, {metrics['mode']} mode"
               + (f", {share:.0%} of reviews sent to the transformer" if share is not None else ""))
    if metrics["mode"] == "cascade" and chosen["chosen_threshold"] >= 0.5:
        summary += (f" (on {len(frames['validation']):,} validation reviews no cascade threshold was "
                    "shown to keep the transformer's accuracy, so every review gets the blend; "
                    "--max-eval-samples gives it more)")
    return summary, seconds


def _hybrid_transformer(plan: QuickstartPlan, frames: dict[str, pd.DataFrame]
                        ) -> tuple[str, pd.DataFrame, str]:
    """(transformer folder, the train reviews it learned from, "ready" or "fine-tuned").

    The ready model joins only when it held out the same validation reviews as this job (same
    seed and carve, all of the train part), so the hybrid's choices are made on reviews neither
    part saw.
    """
    from .artifacts import read_json
    from .hybrid import transformer_split

    if plan.ready_model is not None:
        ready = Path(plan.ready_model).expanduser()
        trained = read_json(ready / "metrics.json") if (ready / "metrics.json").is_file() else {}
        same_split = transformer_split(ready) == {"seed": plan.seed, "validation_size": VALIDATION_SIZE,
                                                  "group_column": None}
        if same_split and trained.get("n_train") == len(frames["full_train"]):
            return str(ready), frames["full_train"], "ready"
    return str(plan.output / "fine-tuned"), frames["train"], "fine-tuned"


def _terminal() -> bool:
    import sys

    return sys.stderr.isatty()


def _record(plan: QuickstartPlan, session: str, stage: str, model: str, metrics: dict[str, Any],
            started: float, artifacts: list[Path], params: dict[str, Any], history: Any = ()) -> float:
    """Record the stage with its duration from ``started`` to now; return that duration."""
    from .tracking import RunEntry, log_run

    duration = round(time.perf_counter() - started, 1)
    log_run(plan.runs_dir, RunEntry(
        stage=stage, model=model, params=params, metrics=metrics, duration=duration,
        artifacts=[p for p in artifacts if p.exists()], history=list(history or ()),
        tags={"quickstart": session, "split": "test", "data": plan.data}))
    return duration


def _summary(metrics: dict[str, Any]) -> str:
    return f"test accuracy {metrics['accuracy']:.4f}, F1 {metrics['f1']:.4f} on {metrics['n_test']:,} reviews"
