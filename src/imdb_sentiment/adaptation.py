"""Domain adaptation: continue masked-language-model pre-training of an encoder on movie reviews.

"Within-task pre-training" (Sun et al. 2019): before fine-tuning, the encoder keeps learning to
fill in masked words, but on IMDB's own text: the 50,000 unlabeled reviews and the training
reviews' text (labels unused). Test reviews are never read, and neither is the validation split
that ``train`` carves from train with the same seed and size, so validation stays unseen text.

The output is a model folder (``*ForMaskedLM`` weights, tokenizer, ``adapt_config.json``,
``metrics.json`` with the masked-word loss before and after, and a card saying what it was
adapted on) that ``train --model`` accepts. Runs are resumable like ``train``: checkpoints live
in ``.NAME.work`` next to the output, and the finished folder appears in one rename.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from .config import DataSpec

TEXT_SPLITS = ("unsupervised", "train")
"""Where adaptation text may come from: the unlabeled reviews and the training reviews."""
UNLABELED_FILES = tuple(f"unsupervised{suffix}" for suffix in (".parquet", ".jsonl", ".csv", ".json", ".tsv"))


@dataclass
class AdaptConfig:
    """Masked-language-model settings (a subset of ``TrainingArguments`` plus the masking)."""

    learning_rate: float = 1e-4
    epochs: float = 1.0
    max_steps: int | None = None
    """Stop after this many optimisation steps (overrides ``epochs``)."""
    batch_size: int = 64
    warmup: float = 0.06
    weight_decay: float = 0.01
    max_length: int = 256
    """Tokens per training sequence; longer reviews are split into several sequences."""
    mask_rate: float = 0.15
    whole_word: bool = True
    """Mask all pieces of a word together (needs a fast tokenizer)."""
    precision: str = "auto"
    seed: int = 42
    validation_size: float = 0.1
    """The share of train that ``train`` carves for validation (with ``seed``): left out here."""
    eval_texts: int = 500
    """Held-out adaptation texts whose masked-word loss is reported before and after."""
    max_texts: int | None = None
    """Quick runs: adapt on a seeded subset of this many texts."""
    save_steps: int = 500

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        from .config import PRECISIONS

        positive = {"learning_rate": self.learning_rate, "epochs": self.epochs, "batch_size": self.batch_size,
                    "max_length": self.max_length, "save_steps": self.save_steps,
                    "eval_texts": self.eval_texts}
        for name, value in positive.items():
            if value is None or value <= 0:
                raise UserError(f"{name} must be positive, got {value}")
        for name in ("max_steps", "max_texts"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be positive, got {value}")
        if not 0 < self.mask_rate < 1:
            raise UserError(f"the masking rate must be in (0, 1), got {self.mask_rate}")
        if not 0 <= self.warmup < 1:
            raise UserError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if not 0 < self.validation_size < 1:
            raise UserError(f"validation_size must be in (0, 1), got {self.validation_size}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")

    def replace(self, **overrides: Any) -> AdaptConfig:
        """A copy with the non-None ``overrides`` applied (explicit options beat the preset)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **given)


PRESETS: dict[str, AdaptConfig] = {
    # Sized for MiniLM on one GPU in a few minutes: one pass over ~70k reviews in 256-token pieces
    # (about 1,500 steps of 64), bf16, a higher learning rate than BERT-base would take.
    "fast": AdaptConfig(learning_rate=1e-4, epochs=1.0, batch_size=64, max_length=256, warmup=0.06),
}


def adapt_preset(name: str) -> AdaptConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name])


@dataclass(frozen=True)
class AdaptRun:
    """How one adaptation run goes, beside its hyper-parameters (:class:`AdaptConfig`) and data."""

    texts: tuple[str, ...] = TEXT_SPLITS
    """Where the text comes from (see :data:`TEXT_SPLITS`)."""
    preset: str | None = None
    """The preset the settings started from, recorded in ``adapt_config.json``."""
    resume: bool = False
    """Continue from the last checkpoint of an interrupted run with the same settings."""
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        _check_text_splits(self.texts)


def _check_text_splits(splits: tuple[str, ...]) -> None:
    unknown = sorted(set(splits) - set(TEXT_SPLITS))
    if unknown or not splits:
        raise UserError(f"adaptation text comes from {', '.join(TEXT_SPLITS)}, "
                        f"not {', '.join(unknown) or 'none'}")


def adaptation_spec(data: DataSpec | str | os.PathLike[str], config: AdaptConfig) -> DataSpec:
    """The data settings of an adaptation: a source name gets the defaults and ``config``'s carve;
    a :class:`DataSpec` must carve as ``config`` says, so the validation reviews stay unseen."""
    from .config import DataSpec

    if not isinstance(data, DataSpec):
        return DataSpec(str(data), seed=config.seed, validation_size=config.validation_size)
    differ = [name for name in ("seed", "validation_size") if getattr(data, name) != getattr(config, name)]
    if differ:
        raise UserError(f"the data settings and the adaptation settings disagree on {', '.join(differ)}")
    return data


@dataclass
class AdaptResult:
    output_dir: Path
    metrics: dict[str, Any]


# --------------------------------------------------------------------------- text


def adaptation_texts(data: DataSpec | str | os.PathLike[str], splits: tuple[str, ...] = TEXT_SPLITS, *,
                     config: AdaptConfig) -> tuple[list[str], dict[str, int]]:
    """The texts to adapt on and how many came from each split (duplicates dropped).

    ``data``'s text column and cleaning apply; a source name is read with the defaults.
    """
    from .data import carve_split, clean_text, load_splits
    from .tables import read_table

    _check_text_splits(splits)
    spec = adaptation_spec(data, config)
    data, text_column, cleaning = spec.source, spec.text_column, spec.cleaning
    parts: dict[str, pd.DataFrame] = {}
    if "unsupervised" in splits:
        folder = Path(data).expanduser()
        files = [folder / name for name in UNLABELED_FILES if (folder / name).is_file()]
        if not files:
            raise UserError(f"{data} has no unlabeled reviews (expected {UNLABELED_FILES[0]} in a data "
                            "folder); pass --texts train to adapt on the training reviews only")
        parts["unsupervised"] = read_table(files[0], text_column, label_column=None)
    if "train" in splits:
        # The same carve as ``train`` (size and seed): its validation reviews stay unseen here.
        train = load_splits(data, text_column=text_column, validation_size=0, seed=config.seed,
                            cleaning="none", require=("train",))["train"]  # type: ignore[arg-type]
        parts["train"], _ = carve_split(train, config.validation_size, config.seed)
    texts: list[str] = []
    sources: list[str] = []
    seen: set[str] = set()
    for split, frame in parts.items():
        for text in frame[text_column if text_column in frame else "text"].tolist():
            if isinstance(text, str) and text.strip() and text not in seen:
                seen.add(text)
                texts.append(clean_text(text, cleaning))  # type: ignore[arg-type]
                sources.append(split)
    if config.max_texts is not None and config.max_texts < len(texts):
        import numpy as np

        keep = np.sort(np.random.default_rng(config.seed).permutation(len(texts))[: config.max_texts])
        texts, sources = [texts[i] for i in keep], [sources[i] for i in keep]
    counts = {split: sources.count(split) for split in parts}
    if len(texts) < 2:
        raise UserError(f"too few texts to adapt on ({len(texts)}) in {data}")
    return texts, counts


class _Pieces:
    """Tokenized sequences for the masked-word collator (pieces of at most ``max_length`` tokens)."""

    def __init__(self, encoded: dict[str, list[Any]]) -> None:
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded["input_ids"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {key: values[index] for key, values in self.encoded.items()}


def _pieces(tokenizer: Any, texts: list[str], max_length: int, whole_word: bool) -> _Pieces:
    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_overflowing_tokens=True,
                        return_special_tokens_mask=True, return_offsets_mapping=whole_word)
    keep = ["input_ids", "attention_mask", "special_tokens_mask"]
    if "token_type_ids" in encoded:
        keep.append("token_type_ids")
    if whole_word:
        keep.append("offset_mapping")
    return _Pieces({key: encoded[key] for key in keep})


class _PadOffsets:
    """Pad each batch's ``offset_mapping`` (which ``tokenizer.pad`` leaves ragged) for whole-word masking."""

    def __init__(self, collator: Any, multiple: int | None) -> None:
        self.collator = collator
        self.multiple = multiple

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if features and "offset_mapping" in features[0]:
            width = max(len(item["input_ids"]) for item in features)
            if self.multiple:
                width = -(-width // self.multiple) * self.multiple
            features = [{**item, "offset_mapping": list(item["offset_mapping"])
                         + [(0, 0)] * (width - len(item["offset_mapping"]))} for item in features]
        return self.collator(features)


# --------------------------------------------------------------------------- run


def adapt(model: str, data: DataSpec | str | os.PathLike[str], output: str | os.PathLike[str],
          config: AdaptConfig, settings: AdaptRun | None = None, *, overwrite: bool = False,
          progress: bool = True, runs_dir: str | os.PathLike[str] | None = None) -> AdaptResult:
    """Continue masked-word pre-training of ``model`` on ``data``'s review text; save to ``output``.

    ``data``: a :class:`DataSpec` that carves as ``config`` does, or a source name. The metrics
    record the data settings. With ``runs_dir`` the run is recorded there (stage ``adapt``), like
    ``train``'s.
    """
    from .artifacts import check_output_dir
    from .training import prepare_checkpoints, work_dir

    config.validate()
    settings = settings or AdaptRun()
    splits, resume, trust_remote_code = settings.texts, settings.resume, settings.trust_remote_code
    spec = adaptation_spec(data, config)
    check_output_dir(output, overwrite)  # fail before the slow part
    texts, counts = adaptation_texts(spec, splits, config=config)
    run = {"model": str(model), "data": spec.source, "splits": list(splits), "preset": settings.preset,
           "cleaning": spec.cleaning, "config": asdict(config)}
    stamp = json.dumps(run, sort_keys=True, indent=1) + "\n"
    with work_dir(output) as work:
        checkpoint = prepare_checkpoints(work, stamp, resume, progress)
        trainer, metrics = _fit(model, texts, config, work, checkpoint, progress, trust_remote_code)
        metrics.update(texts=counts, n_texts=len(texts), resumed_from=checkpoint, **spec.record())
        folder = _save(output, overwrite, trainer, run, metrics)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    if runs_dir is not None:
        from .tracking import RunEntry, log_run

        log_run(runs_dir, RunEntry(stage="adapt", model=str(model),
                                   params={**spec.record(), "texts": ",".join(splits), **asdict(config)},
                                   metrics={key: value for key, value in metrics.items() if key != "texts"},
                                   duration=metrics["train_seconds"], artifacts=[folder]))
    return AdaptResult(folder, metrics)


def _fit(model_id: str, texts: list[str], config: AdaptConfig, work: Path, checkpoint: str | None,
         progress: bool, trust_remote_code: bool) -> tuple[Any, dict[str, Any]]:
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments, set_seed

    from .modeling import default_device, out_of_memory_hint, resolve_precision
    from .training import library_progress_bars

    set_seed(config.seed)
    model, tokenizer = load_masked_lm(model_id, trust_remote_code)
    if config.whole_word and not getattr(tokenizer, "is_fast", False):
        raise UserError("whole-word masking needs a fast tokenizer; pass --no-whole-word")
    held = min(config.eval_texts, max(1, len(texts) // 10))
    evaluation = _pieces(tokenizer, texts[:held], config.max_length, config.whole_word)
    training = _pieces(tokenizer, texts[held:], config.max_length, config.whole_word)
    device = default_device()
    cuda = device.startswith("cuda")
    args = TrainingArguments(
        output_dir=str(work), learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, warmup_steps=config.warmup,
        weight_decay=config.weight_decay, seed=config.seed, data_seed=config.seed,
        bf16=resolve_precision(config.precision, device) == "bf16",
        save_strategy="steps", save_steps=config.save_steps, save_total_limit=1,
        logging_strategy="steps", logging_steps=max(1, min(50, config.save_steps)), eval_strategy="no",
        remove_unused_columns=False,  # the collator needs the offsets and special-token masks
        dataloader_num_workers=min(4, (os.cpu_count() or 1) // 2) if cuda else 0,
        dataloader_pin_memory=cuda, report_to="none", disable_tqdm=not progress, use_cpu=device == "cpu",
    )
    multiple = 8 if cuda else None
    with warnings.catch_warnings():  # whole words are always replaced by [MASK]: expected, not news
        warnings.simplefilter("ignore")
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mask_rate,
                                                   whole_word_mask=config.whole_word, seed=config.seed,
                                                   pad_to_multiple_of=multiple)
    trainer = Trainer(model=model, args=args, train_dataset=training, eval_dataset=evaluation,
                      data_collator=_PadOffsets(collator, multiple), processing_class=tokenizer)
    with library_progress_bars(progress):
        before = trainer.evaluate()["eval_loss"] if checkpoint is None else None
        started = time.perf_counter()
        with out_of_memory_hint(config.batch_size):
            trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.perf_counter() - started
        after = trainer.evaluate()["eval_loss"]
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metrics = {"eval_loss_before": before, "eval_loss": after,
               "train_loss_first": losses[0] if losses else None,
               "train_loss_last": losses[-1] if losses else None, "steps": trainer.state.global_step,
               "n_sequences": len(training), "n_eval_sequences": len(evaluation),
               "train_seconds": round(seconds, 2), "device": str(args.device),
               "dtype": "bf16" if args.bf16 else "fp32", "model": model_id}
    return trainer, metrics


def load_masked_lm(id_or_path: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """An encoder with a masked-word head (a fresh head when the checkpoint has none)."""
    from transformers import AutoModelForMaskedLM

    from .modeling import check_weight_files, hub_error, load_config, load_tokenizer, resolve_model_source

    source = resolve_model_source(id_or_path)
    config = load_config(source, trust_remote_code)
    if getattr(config, "is_decoder", False):
        raise UserError(f"{id_or_path} is a decoder; masked-word adaptation needs an encoder (BERT-like)")
    tokenizer = load_tokenizer(source, trust_remote_code)
    if tokenizer.mask_token is None:
        raise UserError(f"the tokenizer of {id_or_path} has no mask token; it cannot be adapted this way")
    check_weight_files(source)
    try:
        model = AutoModelForMaskedLM.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise hub_error(source, error) from error
    return model, tokenizer


def _save(output: str | os.PathLike[str], overwrite: bool, trainer: Any, run: dict[str, Any],
          metrics: dict[str, Any]) -> Path:
    from .artifacts import atomic_output_dir, atomic_write_text, write_json

    with atomic_output_dir(output, overwrite) as folder:
        trainer.model.save_pretrained(folder)  # safetensors
        trainer.processing_class.save_pretrained(folder)
        write_json(folder / "adapt_config.json", run)
        write_json(folder / "metrics.json", metrics)
        atomic_write_text(folder / "README.md", _card(run, metrics, Path(output).name))
    return Path(output)


def _card(run: dict[str, Any], metrics: dict[str, Any], name: str) -> str:
    config = run["config"]
    sources = ", ".join(f"{count:,} {split} reviews" for split, count in metrics["texts"].items())
    before = metrics.get("eval_loss_before")
    loss = (f"{before:.3f} → {metrics['eval_loss']:.3f}" if before is not None
            else f"{metrics['eval_loss']:.3f} (resumed run)")
    return f"""---
base_model: {run['model']}
library_name: transformers
tags: [fill-mask, domain-adaptation, imdb-sentiment]
---

# {name}

`{run['model']}` after continued masked-language-model pre-training on movie reviews
(within-task pre-training, Sun et al. 2019), made by `imdb-sentiment adapt`. Fine-tune it with
`imdb-sentiment train --model {name}`.

- Adapted on: {sources} from `{run['data']}` ({metrics['n_texts']:,} texts, duplicates dropped).
  Test reviews were not used, nor the validation split `train` carves from train
  ({config['validation_size']:.0%}, seed {config['seed']}).
- Masking: {config['mask_rate']:.0%} of {'whole words' if config['whole_word'] else 'word pieces'};
  pieces of {config['max_length']} tokens.
- Steps: {metrics['steps']:,} of {config['batch_size']} sequences,
  learning rate {config['learning_rate']:g},
  {metrics['dtype']} on {metrics['device']}, {metrics['train_seconds']:.0f} s.
- Masked-word loss on {metrics['n_eval_sequences']:,} held-out sequences: {loss}.
"""
