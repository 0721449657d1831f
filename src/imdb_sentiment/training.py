"""Fine-tune a pretrained encoder into a binary sentiment classifier with ``transformers.Trainer``.

Training runs in a work folder next to the output (``.NAME.work``) that holds per-epoch
checkpoints, so an interrupted run can be resumed; the finished model, its metrics, run file and
model card are moved into place in one rename, so a partial model never sits where a finished
one is expected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import distributed
from .config import DataSpec, TrainConfig, TrainRun, to_toml
from .errors import UserError, first_line

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments

    from .data import ExtraReviews

DataSource = DataSpec | str | os.PathLike[str] | dict[str, "pd.DataFrame"]
"""Where ``train`` reads reviews: a :class:`DataSpec`, a source name (read with the defaults), or
ready ``train`` / ``validation`` / ``test`` frames."""


@dataclass
class TrainResult:
    """What a fine-tuning run produced; ``output_dir`` is None when nothing was saved."""

    output_dir: Path | None
    validation_metrics: dict[str, Any]
    test_metrics: dict[str, Any] | None
    history: list[dict[str, Any]]
    train_seconds: float
    config: TrainConfig
    extra: dict[str, Any] = field(default_factory=dict)
    """Run facts (device, dtype, split sizes) also written to ``metrics.json``."""


class EncodedReviews:
    """A map-style dataset of token-exact encodings and labels (padding happens per batch)."""

    def __init__(self, encoded: dict[str, list[list[int]]], labels: list[int]) -> None:
        self.encoded = encoded
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {key: values[index] for key, values in self.encoded.items()}
        item["labels"] = self.labels[index]
        return item


# --------------------------------------------------------------------------- public API


def train(
    model: str,
    data: DataSource,
    output: str | os.PathLike[str] | None,
    config: TrainConfig,
    settings: TrainRun | None = None,
    *,
    overwrite: bool = False,
    callbacks: list[Any] | None = None,
    progress: bool = True,
    runs_dir: str | os.PathLike[str] | None = None,
    extra_data: Sequence[str | os.PathLike[str]] = (),
) -> TrainResult:
    """Fine-tune ``model`` on ``data`` and, with ``output``, save a model ``pipeline`` can load.

    Keeps the epoch with the best validation accuracy, then scores it once on the test split
    (``settings.max_test_samples``: a seeded, stratified subset). ``output=None`` trains in a
    temporary folder and saves nothing (hyper-parameter search). A :class:`DataSpec` must carve
    validation as ``config`` says (seed, validation size, group column). ``callbacks`` go to the
    ``Trainer``; per-epoch validation accuracy reaches them as ``metrics["eval_accuracy"]``. With
    ``runs_dir`` the run is recorded there (see ``tracking``). ``extra_data``: soft-labelled review
    files (see :func:`data.read_extra_reviews`) added to the training part only and learnt by
    distillation (cross entropy against each review's P(positive)); validation and test stay gold.
    """
    config.validate()
    settings = settings or TrainRun()
    if extra_data and config.target == "rating":
        raise UserError("--extra-data gives P(positive), not star ratings; it cannot train --target rating")
    if distributed.world_size() > 1 and output is None:
        raise UserError("training in several processes needs an output folder for the shared checkpoints")
    if settings.push_to_hub and output is None:
        raise UserError("--push-to-hub needs an --output folder to save the model in first")
    spec = _data_spec(data, config)
    if output is not None:
        from .artifacts import check_output_dir

        source = spec.source if spec is not None else data
        check_output_dir(output, overwrite, inputs=(model, source, *extra_data))  # fail before the slow part
    run = _run_keys(model, spec, settings)
    frames, extra = _splits(data if spec is None else spec, config, evaluate_test=settings.evaluate_test,
                            max_test_samples=settings.max_test_samples, extra_data=extra_data)
    if extra is not None and progress and distributed.is_main():
        print(extra.summary(), file=sys.stderr)
    from .modeling import default_device

    distributed.start(default_device())  # a no-op without a launcher such as torchrun
    main = distributed.is_main()  # only the main process writes; the others train and wait
    with work_dir(output) as work:
        with distributed.main_first():
            # Checkpoints of a run on other extra reviews cannot be resumed: the stamp names them.
            stamp = to_toml(run, config) + "".join(f"# extra data: {path}\n" for path in extra_data)
            checkpoint = prepare_checkpoints(work, stamp, settings.resume, progress and main)
        result, trainer, predictions = _fit(model, frames, config, work, checkpoint,
                                            resumable=output is not None, callbacks=callbacks,
                                            progress=progress and main,
                                            trust_remote_code=settings.trust_remote_code,
                                            extra=extra.frame if extra is not None else None)
        result.extra.update(spec.record() if spec is not None else {"data": None})
        result.extra.update(extra.record() if extra is not None else {})
        if output is not None and main:
            result.output_dir = _save(output, overwrite, trainer, result, run, predictions)
            shutil.rmtree(work, ignore_errors=True)  # checkpoints are no longer needed
        distributed.barrier()  # no process leaves before the model is in place
    if runs_dir is not None and main:  # one run record, however many processes trained
        _record_run(runs_dir, result, run, spec)
    if settings.push_to_hub and result.output_dir is not None:
        push_model(result.output_dir, settings.push_to_hub)
    return result


def _data_spec(data: DataSource, config: TrainConfig) -> DataSpec | None:
    """The data settings of a run that reads a source (None for ready frames).

    A source name gets the defaults and ``config``'s carve; a :class:`DataSpec` must agree with
    ``config`` on the carve, which ``train_config.toml`` records in its ``[train]`` table.
    """
    if isinstance(data, dict):
        return None
    if not isinstance(data, DataSpec):
        return config.data_spec(data)
    carve = {"seed": config.seed, "validation_size": config.validation_size,
             "group_column": config.group_column}
    differ = [name for name, value in carve.items() if getattr(data, name) != value]
    if differ:
        raise UserError(f"the data settings and the training settings disagree on {', '.join(differ)}; "
                        "build the data settings with TrainConfig.data_spec")
    return data


def _record_run(runs_dir: str | os.PathLike[str], result: TrainResult, run: dict[str, Any],
                spec: DataSpec | None) -> None:
    from .tracking import RunEntry, log_run

    metrics = {key: value for key, value in metrics_document(result).items()
               if key not in ("history", "config")}
    params = {**{key: value for key, value in run.items() if key != "model"},
              **(spec.record() if spec is not None else {}), **result.config.to_dict()}
    artifacts = [result.output_dir] if result.output_dir is not None else []
    log_run(runs_dir, RunEntry(stage="train", model=run["model"], params=params, metrics=metrics,
                               duration=result.train_seconds, artifacts=artifacts, history=result.history))


def metrics_document(result: TrainResult) -> dict[str, Any]:
    """The ``metrics.json`` of a run: test metrics at the top level, like ``evaluate`` writes."""
    document: dict[str, Any] = dict(result.test_metrics or {})
    document.update(
        validation_accuracy=result.validation_metrics.get("accuracy"),
        validation=result.validation_metrics,
        train_seconds=round(result.train_seconds, 2),
        history=result.history,
        config=result.config.to_dict(),
        **result.extra,
    )
    return document


def push_model(folder: str | os.PathLike[str], repo_id: str) -> None:
    """Upload a saved model folder (weights, tokenizer, card, metrics) to a Hub repository."""
    from huggingface_hub import HfApi

    from .errors import HubUnreachableError

    try:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), ignore_patterns=["predictions.parquet"],
                          commit_message="Upload imdb-sentiment model")
    except Exception as error:  # offline, DNS, auth and HTTP errors all differ; each means "not pushed"
        reason = first_line(error)
        raise HubUnreachableError(
            f"model saved in {folder}, but pushing it to {repo_id} failed ({reason[:160]}); "
            f"push it later with: hf upload {repo_id} {folder}"
        ) from error


# --------------------------------------------------------------------------- work folder


def work_dir_for(output: str | os.PathLike[str]) -> Path:
    """The checkpoint folder of a run whose model goes to ``output``."""
    out = Path(output).expanduser()
    return out.parent / f".{out.name}.work"


@contextlib.contextmanager
def work_dir(output: str | os.PathLike[str] | None) -> Iterator[Path]:
    """The run's checkpoint folder: temporary without ``output``, else next to it.

    After a failure the folder is kept only if it holds a checkpoint that --resume can use.
    """
    if output is None:
        with tempfile.TemporaryDirectory(prefix="imdb-sentiment-train-") as folder:
            yield Path(folder)
        return
    work = work_dir_for(output)
    try:
        yield work
    except BaseException as error:
        if not distributed.is_main():
            raise
        if not work.is_dir() or not any(work.glob("checkpoint-*")):
            shutil.rmtree(work, ignore_errors=True)
        elif not isinstance(error, UserError):  # user errors stay one line; crashes get the hint
            print(f"note: checkpoints kept in {work}; repeat the command with --resume to continue",
                  file=sys.stderr)
        raise


def prepare_checkpoints(work: Path, run_file: str, resume: bool, progress: bool) -> str | None:
    """The checkpoint to resume from, or None after setting up a fresh work folder."""
    from transformers.trainer_utils import get_last_checkpoint

    stamp = work / "train_config.toml"
    last = get_last_checkpoint(str(work)) if work.is_dir() else None
    if not distributed.is_main():  # the main process has prepared the folder already
        return last if resume else None
    if resume and last is not None:
        if not stamp.is_file() or stamp.read_text(encoding="utf-8") != run_file:
            raise UserError(f"the checkpoints in {work} come from a run with other settings; "
                            "repeat its settings or drop --resume to start over")
        _note(f"resuming from {last}", progress)
        return last
    if resume:
        _note(f"no checkpoint in {work} to resume from; starting from scratch", progress)
    elif last is not None:
        _note(f"discarding the checkpoints of an earlier unfinished run in {work} "
              "(pass --resume to continue such a run)", progress)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stamp.write_text(run_file, encoding="utf-8")
    return None


def _note(message: str, progress: bool) -> None:
    if progress:
        print(f"note: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- training


def _fit(model_id: str, frames: dict[str, pd.DataFrame], config: TrainConfig, work: Path,
         checkpoint: str | None, *, resumable: bool, callbacks: list[Any] | None, progress: bool,
         trust_remote_code: bool, extra: pd.DataFrame | None = None,
         ) -> tuple[TrainResult, Trainer, pd.DataFrame | None]:
    """Load, encode, train and score (when ``frames`` has a test split); ``extra`` (``text``,
    ``p_positive``) joins the training part with soft targets.

    Returns the result, the trainer (holding the kept model) and the test predictions.
    """
    from transformers import set_seed

    from .encoding import check_max_length
    from .modeling import default_device, load_classifier, out_of_memory_hint
    from .ratings import RATING_LABELS, check_ratings

    rating = config.target == "rating"
    if rating:
        for split in ("train", "validation"):
            check_ratings(frames[split], f"the {split} split")
    set_seed(config.seed)  # the new classification head is initialised at load time
    model, tokenizer = load_classifier(model_id, require_head=False, trust_remote_code=trust_remote_code,
                                       labels=RATING_LABELS if rating else None)
    check_max_length(config.max_length, model.config, tokenizer)
    order = _name_labels(model)
    train_set = _encode(tokenizer, frames["train"], config, order, extra=extra)
    validation_set = _encode(tokenizer, frames["validation"], config, order, by_length=True)
    device = default_device()
    args = training_arguments(config, work, device=device, progress=progress,
                              keep_optimizer=resumable)
    trainer = _trainer(model, tokenizer, args, train_set, validation_set,
                       [*(callbacks or []), *([training_progress()] if progress else [])],
                       soft_targets=extra is not None)
    started = time.perf_counter()
    with out_of_memory_hint(config.batch_size), library_progress_bars(progress):
        trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - started
    history = epoch_history(trainer.state.log_history)
    validation = _best_validation(history, len(validation_set))
    # Scored once, by the main process alone, on the same kept model a later `evaluate` would load.
    test_metrics, predictions = (_score_test(trainer, tokenizer, config, frames["test"], progress)
                                 if "test" in frames and distributed.is_main() else (None, None))
    extra = {"model": model_id, "device": str(args.device), "dtype": "bf16" if args.bf16 else "fp32",
             "n_train": len(frames["train"]), "n_validation": len(validation_set), "resumed_from": checkpoint,
             "processes": distributed.world_size()}
    result = TrainResult(None, validation, test_metrics, history, train_seconds, config, extra)
    return result, trainer, predictions


def _splits(data: DataSpec | dict[str, pd.DataFrame], config: TrainConfig, *, evaluate_test: bool,
            max_test_samples: int | None, extra_data: Sequence[str | os.PathLike[str]] = (),
            ) -> tuple[dict[str, pd.DataFrame], ExtraReviews | None]:
    """Train / validation (/ test) frames, cut to the configured sample sizes, and the extra
    reviews (those whose text is anywhere in validation or test dropped, before any subset is cut)."""
    from .data import carve_split, read_extra_reviews, subsample

    need = ("train", "test") if evaluate_test else ("train",)
    extra = None
    if extra_data:  # a bad extra file fails before the gold data loads
        reading = data if isinstance(data, DataSpec) else DataSpec("")
        extra = read_extra_reviews(extra_data, text_column=reading.text_column,
                                   cleaning=reading.cleaning)  # type: ignore[arg-type]  # DataSpec checks it
    if isinstance(data, dict):
        frames = {split: data[split] for split in data if split in ("train", "validation", "test")}
        missing = [split for split in need if split not in frames]
        if missing:
            raise UserError(f"data has no {' or '.join(missing)} split")
        if "validation" not in frames:
            frames["train"], frames["validation"] = carve_split(frames["train"], config.validation_size,
                                                                config.seed, config.group_column)
    else:
        frames = data.load(require=need)
    if extra is not None:
        extra = extra.held_out_of(frames)
    frames["train"] = subsample(frames["train"], config.max_train_samples, config.seed)
    frames["validation"] = subsample(frames["validation"], config.max_eval_samples, config.seed)
    if evaluate_test:
        frames["test"] = subsample(frames["test"], max_test_samples, config.seed)
    else:
        frames.pop("test", None)
    if frames["train"]["label"].nunique() < 2:
        raise UserError("the training reviews must include both negative and positive ones")
    return frames, extra


def _name_labels(model: PreTrainedModel) -> list[int]:
    """Name the outputs NEGATIVE/POSITIVE (whatever the checkpoint called them); return their order."""
    from .modeling import ID2LABEL, STARS_PREFIX, label_order, rating_outputs

    order = label_order(model.config)
    stars = rating_outputs(model.config) or {}
    model.config.id2label = {order[ours]: name for ours, name in ID2LABEL.items()}
    for index, value in stars.items():  # keep the rating outputs' names
        model.config.id2label[index] = f"{STARS_PREFIX}{value}"
    model.config.label2id = {name: index for index, name in model.config.id2label.items()}
    return order


def _encode(tokenizer: PreTrainedTokenizerBase, frame: pd.DataFrame, config: TrainConfig,
            order: list[int], by_length: bool = False, extra: pd.DataFrame | None = None) -> EncodedReviews:
    """Token-exact encodings; ``by_length`` sorts them so evaluation batches pad little.

    With ``extra`` (soft-labelled reviews) every target is a distribution over the two outputs:
    one-hot for ``frame``'s gold reviews, ``(1 - p, p)`` for the extra ones (see :func:`soft_target_loss`).
    """
    from .data import SOFT_LABEL_COLUMN
    from .encoding import encode, encoder_for
    from .token_cache import cached_tokens

    texts = frame["text"].tolist() + (extra["text"].tolist() if extra is not None else [])
    encoded = encode(tokenizer, texts, config.max_length, config.truncation, config.head_tokens,
                     cached_tokens(encoder_for(tokenizer), texts))
    labels: list[Any] = [order[int(label)] for label in frame["label"]]
    if extra is not None:
        positive = [*(float(label) for label in frame["label"]), *extra[SOFT_LABEL_COLUMN].astype(float)]
        labels = [[0.0, 0.0] for _ in positive]
        for target, p in zip(labels, positive, strict=True):
            target[order[1]], target[order[0]] = p, 1.0 - p
    if config.target == "rating":  # class index and stars: the rating head's loss needs both
        from .ratings import star_targets

        labels = [[label, stars] for label, stars in zip(labels, star_targets(frame["rating"]), strict=True)]
    if by_length:
        rows = np.argsort([-len(ids) for ids in encoded["input_ids"]], kind="stable")
        encoded = {key: [values[i] for i in rows] for key, values in encoded.items()}
        labels = [labels[i] for i in rows]
    return EncodedReviews(encoded, labels)


def training_arguments(config: TrainConfig, work: Path, *, device: str, progress: bool = True,
                       keep_optimizer: bool = True) -> TrainingArguments:
    """``TrainingArguments`` for ``config``: per-epoch validation, best epoch kept, fast on GPUs."""
    import inspect

    from transformers import TrainingArguments

    from .modeling import resolve_precision

    cuda = device.startswith("cuda")
    workers = min(4, (os.cpu_count() or 1) // 2) if cuda else 0
    processes = distributed.world_size()
    if config.batch_size % processes:  # the batch size is the global one, so N processes repeat a run
        raise UserError(f"--batch-size {config.batch_size} does not split evenly over {processes} processes")
    kwargs: dict[str, Any] = dict(
        output_dir=str(work), learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size // processes,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        warmup_steps=config.warmup,  # a float below 1 is a fraction of the total steps
        weight_decay=config.weight_decay, seed=config.seed, data_seed=config.seed,
        bf16=resolve_precision(config.precision, device) == "bf16", tf32=_tf32(cuda),
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model="accuracy", greater_is_better=True,
        save_total_limit=1, save_only_model=not keep_optimizer,
        dataloader_num_workers=workers, dataloader_pin_memory=cuda,
        dataloader_persistent_workers=workers > 0, torch_compile=config.torch_compile,
        # Trainer's own bars are replaced by one run-wide bar (TrainingProgress); without them the
        # Trainer prints log dicts, which _trainer removes.
        report_to="none", disable_tqdm=True, use_cpu=device == "cpu",
        # One fused kernel per step instead of a launch per tensor; the same AdamW update.
        optim="adamw_torch_fused" if cuda else "adamw_torch",
    )
    accepted = inspect.signature(TrainingArguments).parameters
    if config.group_by_length:  # the option's name changed within transformers 5.x
        if "train_sampling_strategy" in accepted:
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
    try:
        return TrainingArguments(**kwargs)
    except ValueError as error:  # e.g. bf16 requested on a device without it
        raise UserError(f"invalid training settings: {first_line(error)}") from error


def _tf32(cuda: bool) -> bool | None:
    """TF32 matmuls on Ampere and newer GPUs (free speed, no effect on bf16 kernels)."""
    if not cuda:
        return None
    from transformers.utils import is_torch_tf32_available

    return True if is_torch_tf32_available() else None


def _trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, args: TrainingArguments,
             train_set: EncodedReviews, validation_set: EncodedReviews, callbacks: list[Any] | None,
             soft_targets: bool = False) -> Trainer:
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer

    from .ratings import rating_loss

    # Multiples of 8 suit GPU tensor cores; on CPU they would only add padding.
    multiple = 8 if args.device.type == "cuda" else None
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)
    rating = bool(validation_set.labels) and isinstance(validation_set.labels[0], list)
    loss = soft_target_loss if soft_targets else rating_loss if rating else None
    trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=validation_set,
                      data_collator=collator, processing_class=tokenizer, compute_metrics=_accuracy,
                      callbacks=list(callbacks or []), compute_loss_func=loss)
    trainer.remove_callback(PrinterCallback)  # it would print every log dict
    return trainer


def soft_target_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross entropy against a target distribution per review (distillation: the KL divergence to
    the teacher's, up to its constant entropy); class indices (gold validation reviews) get the
    usual cross entropy, which a one-hot target equals.

    ``Trainer`` counts ``num_items_in_batch`` over every accumulated batch's label values (two per
    review for distributions): the loss is the sum over reviews divided by the reviews of the whole
    optimizer step, so gradient accumulation averages as one large batch would.
    """
    import torch.nn.functional as F

    logits = (outputs["logits"] if isinstance(outputs, dict) else outputs[0]).float()
    log_probabilities = F.log_softmax(logits, dim=-1)
    if labels.ndim == 1:
        losses = -log_probabilities.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    else:
        losses = -(labels.float() * log_probabilities).sum(dim=-1)
    if num_items_in_batch is None:
        return losses.mean()
    reviews = num_items_in_batch / (labels.shape[-1] if labels.ndim == 2 else 1)
    return losses.sum() / reviews


def training_progress() -> Any:
    """A ``TrainerCallback`` drawing one bar on stderr for the whole run: steps, epoch, loss, ETA,
    and a line per epoch with the validation accuracy."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class TrainingProgress(TrainerCallback):
        bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="fine-tuning",
                            unit="step", file=sys.stderr, dynamic_ncols=True)
            self.epochs = args.num_train_epochs

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)
                self.bar.set_postfix_str(f"epoch {state.epoch or 0:.2f}/{self.epochs:g}", refresh=False)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                        **kwargs: Any) -> None:
            accuracy = (metrics or {}).get("eval_accuracy")
            if self.bar is not None and accuracy is not None:
                self.bar.write(f"epoch {state.epoch or 0:.2f}: validation accuracy {accuracy:.4f}",
                               file=sys.stderr)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return TrainingProgress()


@contextlib.contextmanager
def library_progress_bars(enabled: bool) -> Iterator[None]:
    """Silence transformers' own bars (checkpoint writing) in quiet runs such as tuning trials."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _accuracy(prediction: Any) -> dict[str, float]:
    logits = prediction.predictions
    if isinstance(logits, tuple):  # some models also return hidden states
        logits = logits[0]
    if np.ndim(prediction.label_ids) == 2:  # a rating model: [class, stars] per review
        from .ratings import evaluation_metrics

        return evaluation_metrics(np.asarray(logits), np.asarray(prediction.label_ids))
    return {"accuracy": float((np.asarray(logits).argmax(axis=-1) == prediction.label_ids).mean())}


def epoch_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per evaluated epoch: ``epoch``, ``validation_accuracy``, ``validation_loss``, ``loss``."""
    losses = {round(entry["epoch"], 4): entry["loss"] for entry in log_history
              if "loss" in entry and "epoch" in entry}
    rows = []
    for entry in log_history:
        if "eval_accuracy" not in entry:
            continue
        epoch = round(entry.get("epoch", 0.0), 4)
        row = {"epoch": epoch, "validation_accuracy": entry["eval_accuracy"],
               "validation_loss": entry.get("eval_loss")}
        if epoch in losses:
            row["loss"] = losses[epoch]
        rows.append(row)
    return rows


def _best_validation(history: list[dict[str, Any]], size: int) -> dict[str, Any]:
    """Validation metrics of the kept epoch (the first with the best accuracy, as Trainer keeps)."""
    if not history:
        return {"accuracy": None, "n": size}
    best = max(history, key=lambda row: row["validation_accuracy"])
    return {"accuracy": best["validation_accuracy"], "loss": best.get("validation_loss"),
            "epoch": best["epoch"], "n": size}


def _score_test(trainer: Trainer, tokenizer: PreTrainedTokenizerBase, config: TrainConfig,
                frame: pd.DataFrame, progress: bool) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score the kept model once on the test split, with the same truncation as in training."""
    from .backends import TorchBackend
    from .batching import default_batch_size
    from .encoding import encoder_for
    from .evaluation import score_frame
    from .inference import InputSettings, SentimentClassifier

    precision = "bf16" if trainer.args.bf16 else "fp32"
    device = str(trainer.args.device)
    backend = TorchBackend(trainer.model, device, precision, tokenizer.model_input_names)
    # Scoring needs no gradients: on a GPU batches as large as the token budget allows.
    batch_size = max(config.eval_batch_size, default_batch_size("cpu" if device == "cpu" else device))
    inputs = InputSettings(max_length=config.max_length, truncation=config.truncation,
                           head_tokens=config.head_tokens, batch_size=batch_size,
                           cleaning="none")  # frames are cleaned
    classifier = SentimentClassifier(backend, encoder_for(tokenizer), trainer.model.config, inputs,
                                     tokenizer=tokenizer)
    metrics, predictions = score_frame(classifier, frame, progress=progress, batch_option="--eval-batch-size")
    metrics.update(max_length=classifier.max_length, truncation=classifier.truncation,
                   head_tokens=classifier.head_tokens if classifier.truncation == "head-tail" else None)
    return metrics, predictions


# --------------------------------------------------------------------------- saving


def _run_keys(model: str, spec: DataSpec | None, settings: TrainRun) -> dict[str, Any]:
    """The top-level keys of ``train_config.toml`` (``data`` only when the run read a source)."""
    data = spec or DataSpec("")  # ready frames: the default reading settings, as before
    return {"model": str(model), "data": spec.source if spec is not None else None,
            "preset": settings.preset, "cleaning": data.cleaning, "text_column": data.text_column,
            "label_column": data.label_column, "max_test_samples": settings.max_test_samples}


def _save(output: str | os.PathLike[str], overwrite: bool, trainer: Trainer, result: TrainResult,
          run: dict[str, Any], predictions: pd.DataFrame | None) -> Path:
    """Model, tokenizer, metrics, run file and card, moved into ``output`` in one rename."""
    from .artifacts import atomic_output_dir, atomic_write_text, write_json
    from .model_card import render_model_card

    metrics = metrics_document(result)
    with atomic_output_dir(output, overwrite) as folder:
        trainer.model.save_pretrained(folder)  # safetensors
        trainer.processing_class.save_pretrained(folder)
        write_json(folder / "metrics.json", metrics)
        if predictions is not None:
            predictions.to_parquet(folder / "predictions.parquet", index=False)
        atomic_write_text(folder / "train_config.toml", to_toml(run, result.config))
        atomic_write_text(folder / "README.md", render_model_card(
            base_model=run["model"], data=run["data"], config=result.config, metrics=metrics,
            name=Path(output).name))
    return Path(output)
