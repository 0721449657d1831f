"""Run settings: one dataclass per stage, named presets, and TOML/YAML files.

A run is reproducible from one file: ``train`` saves the resolved settings as
``train_config.toml`` next to the model, and ``train --config`` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from .errors import UserError

SettingsT = TypeVar("SettingsT")

if typing.TYPE_CHECKING:
    import pandas as pd

    from .data import LoadReport

Truncation = Literal["head", "head-tail"]
Precision = Literal["auto", "bf16", "fp32"]

# Allowed values, defined here only. Training takes one input per review (no chunks) and trains
# in fp32 or bf16 (no int8); prediction and evaluation take them all.
TRUNCATIONS = ("head-tail", "head", "chunks")
TRAIN_TRUNCATIONS = ("head", "head-tail")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
TRAIN_PRECISIONS = ("auto", "bf16", "fp32")
LLAMA_CPP = "llama.cpp"
"""The backend that runs a GGUF language model on llama.cpp (``llama-cpp-python``), weights as quantized."""
BACKENDS = ("torch", "onnx", LLAMA_CPP, "auto")
TARGETS = ("label", "rating")
"""What ``train --target`` fits: the polarity alone, or the polarity and the star rating."""


def check_choice(kind: str, value: object, allowed: tuple[str, ...]) -> None:
    """A one-line refusal of a value not in ``allowed``."""
    if value not in allowed:
        raise UserError(f"{kind} must be one of {', '.join(allowed)}, not {value!r}")


def check_positive_sizes(settings: object, names: tuple[str, ...]) -> None:
    """Each named setting is unset (None) or a whole number above zero."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise UserError(f"{name.replace('_', ' ')} must be positive, got {value}")


def check_seed(seed: object) -> None:
    """Seeds drive numpy's generators, which take whole numbers from 0 only."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a whole number >= 0, got {seed!r}")


@dataclass(frozen=True)
class DataSpec:
    """Where the reviews come from and how train is split: one carve for every stage that reads them.

    ``train`` and ``tune`` build theirs with :meth:`TrainConfig.data_spec` from the same merged
    preset, run file and options, so they see the same train and validation reviews.
    """

    source: str
    text_column: str = "text"
    label_column: str = "label"
    cleaning: str = "basic"
    seed: int = 42
    validation_size: float = 0.1
    """Fraction of train carved as validation when the source has no validation split (0: none)."""
    group_column: str | None = None
    """Carve validation by whole groups of this column (``movie``) instead of by review."""
    test_size: float = 0.2
    """Fraction carved as test when the source is a single file."""

    def __post_init__(self) -> None:
        from .data import CLEANINGS, GROUP_COLUMNS

        check_choice("cleaning", self.cleaning, CLEANINGS)
        check_seed(self.seed)
        if not 0 <= self.validation_size < 1:
            raise UserError(f"validation size must be a fraction in [0, 1), got {self.validation_size}")
        if not 0 < self.test_size < 1:
            raise UserError(f"test size must be a fraction in (0, 1), got {self.test_size}")
        if self.group_column is not None:
            check_choice("group column", self.group_column, GROUP_COLUMNS)

    def load(self, require: tuple[str, ...] = ("train",), report: LoadReport | None = None,
             ) -> dict[str, pd.DataFrame]:
        """The cleaned ``train`` / ``validation`` / ``test`` frames (see :func:`data.load_splits`)."""
        from .data import load_splits

        return load_splits(self.source, text_column=self.text_column, label_column=self.label_column,
                           validation_size=self.validation_size, test_size=self.test_size, seed=self.seed,
                           cleaning=self.cleaning,  # type: ignore[arg-type]  # checked above
                           require=require, report=report, group_column=self.group_column)

    def record(self) -> dict[str, Any]:
        """The fields as a stage records them in its metrics and run (the source as ``data``)."""
        fields_ = asdict(self)
        return {"data": fields_.pop("source"), **fields_}


@dataclass
class InferenceConfig:
    """How a classifier reads reviews and runs: the ``SentimentClassifier.load`` options, carried
    as one value from the command line to every loader (``hybrid.load_model``, Ray actors, the
    explainer).

    ``None`` means "as the model was trained (its ``train_config.toml``), else the default"
    for the input settings, and "chosen for the device" for the batch settings.
    """

    max_length: int | None = None
    truncation: str | None = None
    head_tokens: int | None = None
    chunk_overlap: int | None = None
    batch_size: int | None = None
    max_batch_tokens: int | str | None = "auto"
    """Padded tokens per batch: ``auto`` picks a budget for the device, ``None`` caps rows only."""
    precision: str = "auto"
    device: str | None = None
    backend: str = "torch"
    trust_remote_code: bool = False
    """Allow model code from the model's repository."""

    def __post_init__(self) -> None:
        self.validate()

    def with_options(self, **options: Any) -> InferenceConfig:
        """This config with each option that is not ``None`` in place of its own (checked again)."""
        given = {key: value for key, value in options.items() if value is not None}
        return dataclasses.replace(self, **given)

    def validate(self) -> None:
        """Cheap checks before any model loads, so a typo fails in milliseconds."""
        if self.truncation is not None:
            check_choice("truncation", self.truncation, TRUNCATIONS)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("backend", self.backend, BACKENDS)
        check_positive_sizes(self, ("max_length", "batch_size"))
        for name in ("head_tokens", "chunk_overlap"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UserError(f"{name.replace('_', ' ')} must be >= 0, got {value}")
        batch_tokens = self.max_batch_tokens
        if batch_tokens != "auto" and batch_tokens is not None and (
                isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int) or batch_tokens <= 0):
            raise UserError(f"max batch tokens must be positive, got {batch_tokens}")

    def input_settings(self) -> dict[str, Any]:
        """The explicitly set settings of how reviews become inputs (these beat the trained ones)."""
        names = ("max_length", "truncation", "head_tokens", "chunk_overlap", "batch_size")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass
class TrainConfig:
    """Fine-tuning hyper-parameters (the ``transformers.TrainingArguments`` subset we expose)."""

    learning_rate: float = 1e-4
    epochs: float = 3.0
    batch_size: int = 32
    eval_batch_size: int = 64
    warmup: float = 0.1
    """Warm-up as a fraction of the total optimisation steps."""
    weight_decay: float = 0.01
    max_length: int = 512
    truncation: Truncation = "head-tail"
    head_tokens: int | None = None
    """With head-tail truncation: tokens kept from the start, the rest come from the end.
    ``None``: a quarter of the budget (128 + 382 at 512 positions, 32 + 94 at 128)."""
    precision: Precision = "auto"
    group_by_length: bool = True
    """Batch reviews of similar length together so dynamic padding wastes little compute."""
    torch_compile: bool = False
    """``torch.compile`` the model; off because varying batch shapes cause recompilation."""
    seed: int = 42
    validation_size: float = 0.1
    group_column: str | None = None
    """Carve validation by whole groups of this column (``movie``) instead of by review."""
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    gradient_accumulation_steps: int = 1
    target: str = "label"
    """``label``: the polarity; ``rating``: the polarity plus a 1-10 star rating output."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_choice("truncation", self.truncation, TRAIN_TRUNCATIONS)
        check_choice("target", self.target, TARGETS)
        check_choice("precision", self.precision, TRAIN_PRECISIONS)
        check_seed(self.seed)
        positive = {
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "max_length": self.max_length,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }
        for name, value in positive.items():
            if value is None or value <= 0:
                raise UserError(f"{name} must be positive, got {value}")
        if not 0 <= self.warmup < 1:
            raise UserError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if self.weight_decay < 0:
            raise UserError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.validation_size < 1:
            raise UserError(f"validation_size must be in (0, 1), got {self.validation_size}")
        if self.head_tokens is not None and not 0 <= self.head_tokens < self.max_length:
            raise UserError(f"head_tokens must be in [0, max_length), got {self.head_tokens}")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be positive, got {value}")

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with the non-None ``overrides`` applied (explicit options beat the preset)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        unknown = set(given) - {f.name for f in fields(self)}
        if unknown:
            raise UserError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        for name, value in given.items():
            _check_type(name, value)
        return dataclasses.replace(self, **given)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def data_spec(self, source: str | Path, *, cleaning: str = "basic", text_column: str = "text",
                  label_column: str = "label") -> DataSpec:
        """The data settings of a run with these settings: ``train`` and ``tune`` both load through
        this, so a study's trials and the training run they lead to see the same validation split."""
        return DataSpec(source=str(source), text_column=text_column, label_column=label_column,
                        cleaning=cleaning, seed=self.seed, validation_size=self.validation_size,
                        group_column=self.group_column)


@dataclass(frozen=True)
class TrainRun:
    """How one fine-tuning run goes, beside its hyper-parameters (:class:`TrainConfig`) and data."""

    evaluate_test: bool = True
    """Score the kept model once on the test split."""
    max_test_samples: int | None = None
    """Score a seeded, stratified test subset of this size (None: the whole split)."""
    preset: str | None = None
    """The preset the settings started from, recorded in ``train_config.toml``."""
    resume: bool = False
    """Continue from the last checkpoint of an interrupted run with the same settings."""
    trust_remote_code: bool = False
    push_to_hub: str | None = None
    """After saving, upload the model folder to this Hub repository."""

    def __post_init__(self) -> None:
        if self.preset is not None:
            check_choice("preset", self.preset, tuple(PRESETS))
        if self.max_test_samples is not None and (
                isinstance(self.max_test_samples, bool) or not isinstance(self.max_test_samples, int)):
            raise UserError(f"max_test_samples must be a whole number, not {self.max_test_samples!r}")


@dataclass(frozen=True)
class EvaluationConfig:
    """How ``evaluate`` scores a model: the test subset, how reviews become inputs, and how the model runs.

    ``None`` input settings mean "as the model was trained (its ``train_config.toml``), else the
    default"; ``batch_size=None`` is chosen for the device.
    """

    max_samples: int | None = None
    """Score a fixed, seeded, label-stratified subset of this size."""
    seed: int | None = None
    """Seed of that subset; ``None``: the data's seed (42 for ready frames)."""
    max_length: int | None = None
    truncation: str | None = None
    head_tokens: int | None = None
    batch_size: int | None = None
    precision: str = "auto"
    device: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.truncation is not None:
            check_choice("truncation", self.truncation, TRUNCATIONS)
        check_choice("precision", self.precision, PRECISIONS)
        check_positive_sizes(self, ("max_length", "batch_size"))
        if self.head_tokens is not None and self.head_tokens < 0:
            raise UserError(f"head tokens must be >= 0, got {self.head_tokens}")
        if self.max_samples is not None and self.max_samples <= 0:
            raise UserError(f"--max-samples must be positive, got {self.max_samples}")
        if self.seed is not None:
            check_seed(self.seed)


def _check_type(name: str, value: Any) -> None:
    """Catch a mistyped setting from a run file (``batch_size = "32"``) before training starts."""
    hint = typing.get_type_hints(TrainConfig)[name]
    allowed = tuple(arg for arg in typing.get_args(hint) if isinstance(arg, type)) or (hint,)
    if typing.get_origin(hint) is Literal or not all(isinstance(kind, type) for kind in allowed):
        return  # named choices are checked by validate()
    if float in allowed:
        allowed = (*allowed, int)
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        expected = " or ".join(kind.__name__ for kind in allowed if kind is not type(None))
        raise UserError(f"training setting {name} must be {expected}, not {value!r}")


PRESETS: dict[str, TrainConfig] = {
    # The reference study's first TrainingArguments: lr 2e-5, batch 16, 1 epoch, stock Trainer.
    "seed": TrainConfig(
        learning_rate=2e-5, epochs=1, batch_size=16, eval_batch_size=16, warmup=0.0,
        weight_decay=0.0, truncation="head", precision="fp32", group_by_length=False,
    ),
    # The study's second setting: lr 1e-5, batch 32, 3 epochs.
    "seed-tuned": TrainConfig(
        learning_rate=1e-5, epochs=3, batch_size=32, eval_batch_size=32, warmup=0.0,
        weight_decay=0.0, truncation="head", precision="fp32", group_by_length=False,
    ),
    # Our recipe: higher lr with warm-up and decay, bf16, length-grouped batches, head+tail tokens.
    "fast": TrainConfig(
        learning_rate=1e-4, epochs=3, batch_size=32, eval_batch_size=64, warmup=0.1,
        weight_decay=0.01, truncation="head-tail", precision="auto", group_by_length=True,
    ),
}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name])


def settings_from_file(cls: type[SettingsT], path: str | Path) -> SettingsT:
    """A settings dataclass from a TOML (or YAML/JSON) file of its fields; an unknown key is a
    one-line error that lists the known ones."""
    data = read_config_file(path)
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"unknown key(s) in {path}: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**data)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML run file into a dict (``[train]`` table plus top-level run keys)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"config file not found: {file}")
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text) or {}
        elif file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except Exception as error:  # each parser has its own error type
        raise UserError(f"cannot parse config file {file}: {error}") from error
    if not isinstance(data, dict):
        raise UserError(f"config file {file} must hold a table of settings")
    return data


def train_config_from_file(path: str | Path, base_preset: str | None = None
                           ) -> tuple[TrainConfig, dict[str, Any]]:
    """The ``TrainConfig`` in a run file and its other (top-level) keys.

    Settings come from ``base_preset`` (else the file's ``preset``, else ``fast``), overridden by
    the file's ``[train]`` table.
    """
    data = read_config_file(path)
    run = {key: value for key, value in data.items() if not isinstance(value, dict)}
    base = preset(str(base_preset or run.get("preset") or "fast"))
    settings = data.get("train", {})
    try:
        return base.replace(**settings), run
    except TypeError as error:
        raise UserError(f"bad setting in {path}: {error}") from error


RUN_KEYS = ("model", "data", "preset", "cleaning", "text_column", "label_column", "max_test_samples")
"""Top-level keys of a training run file, next to its ``[train]`` table."""


def resolve_train_settings(config_file: str | Path | None, preset_name: str | None, overrides: dict[str, Any],
                           run_overrides: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """The settings of a training run: the preset, then the run file, then explicit ``overrides``.

    ``train`` and ``tune`` both merge through this. Also returns the run keys (:data:`RUN_KEYS`:
    model, data, ...), each from ``run_overrides`` when given there, else from the run file, else
    the default.
    """
    from .data import DEFAULT_SOURCE

    if config_file is not None:
        config, file_run = train_config_from_file(config_file, base_preset=preset_name)
        unknown = sorted(set(file_run) - set(RUN_KEYS))
        if unknown:
            raise UserError(f"unknown key(s) in {config_file}: {', '.join(unknown)} "
                            f"(top-level keys: {', '.join(RUN_KEYS)}; settings go in [train])")
    else:
        config, file_run = preset(preset_name or "fast"), {}
    defaults = {"data": DEFAULT_SOURCE, "cleaning": "basic", "text_column": "text", "label_column": "label"}
    run = {key: run_overrides.get(key) if run_overrides.get(key) is not None
           else file_run.get(key, defaults.get(key)) for key in RUN_KEYS}
    run["preset"] = preset_name or file_run.get("preset") or ("fast" if config_file is None else None)
    if not run["model"]:
        raise UserError("pass --model (a Hub id or a local model folder), or a --config file with a model")
    config = config.replace(**overrides)
    quick = config.max_train_samples
    if quick is not None:  # a quick run: validate and test on subsets of the same size unless told
        config = config.replace(max_eval_samples=config.max_eval_samples or quick)
        run["max_test_samples"] = run["max_test_samples"] or quick
    return config, run


def to_toml(run: dict[str, Any], train: TrainConfig) -> str:
    """Render run keys and the ``[train]`` table as TOML (flat scalars only)."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in run.items() if value is not None]
    lines += ["", "[train]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in train.to_dict().items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))
