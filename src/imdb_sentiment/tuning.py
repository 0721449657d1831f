"""Hyper-parameter search with Optuna: resumable, shareable between workers, pruned per epoch.

A study lives in a database (SQLite under the runs folder by default, PostgreSQL or MySQL for
workers on several machines). ``--trials N`` is the number of finished trials the study should
reach: running the same command again only runs the missing ones, and several workers started
with the same storage and study name share the work. Every trial optimises validation accuracy
(carved from train); the test split is never shown to a trial. An interrupted trial (Ctrl-C)
is recorded as failed, a crashed worker's trial is failed by its stale heartbeat and retried
once, and a trial that runs out of memory is recorded as failed while the study goes on.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import random
import re
import sys
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import DataSpec, TrainConfig, TrainRun
from .errors import UserError, first_line
from .formatting import format_value

if TYPE_CHECKING:
    import optuna
    import pandas as pd

SEARCHABLE = ("learning_rate", "batch_size", "epochs", "warmup", "weight_decay",
              "gradient_accumulation_steps", "max_length", "head_tokens")
INTEGER_SETTINGS = {"batch_size", "epochs", "gradient_accumulation_steps", "max_length", "head_tokens"}
DEFAULT_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 2e-4, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    "epochs": {"type": "int", "low": 1, "high": 4},
    "warmup": {"type": "float", "low": 0.0, "high": 0.2},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
}
"""The default space; ``configs/search_space.toml`` holds the same as an editable file."""
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")
STUDY_DB = "optuna.db"
DEFAULT_STUDY = "imdb-sentiment"
FINISHED = ("COMPLETE", "PRUNED")
HEARTBEAT_SECONDS = 60
GRACE_SECONDS = 180
SQLITE_TIMEOUT_SECONDS = 120
SCHEMA_ATTEMPTS = 5

TrainFn = Callable[..., Any]
Echo = Callable[[str], None]
FrameLoader = Callable[[], "dict[str, pd.DataFrame]"]


class TrialOutOfMemory(Exception):
    """A trial ran out of (GPU or host) memory: recorded as failed, the study goes on."""


@dataclass
class TuneSettings:
    """Everything one ``tune`` invocation needs (the CLI fills it from its options)."""

    model: str
    data: str
    trials: int = 10
    study_name: str = DEFAULT_STUDY
    storage: str | None = None
    runs_dir: Path | None = None
    base: TrainConfig = field(default_factory=TrainConfig)
    search_space: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))
    timeout: float | None = None
    prune: bool = True
    progress: bool = False
    max_test_samples: int | None = None
    cleaning: str = "basic"
    text_column: str = "text"
    label_column: str = "label"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Cheap checks of the options, before anything (a runs folder, a study) is created."""
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials <= 0:
            raise UserError(f"--trials must be positive, got {self.trials}")
        if self.timeout is not None and not self.timeout > 0:
            raise UserError(f"--timeout must be positive, got {self.timeout}")
        self.search_space = validate_search_space(self.search_space)
        self.data_spec()  # a bad cleaning or group column fails now, not when the first trial starts

    def data_spec(self) -> DataSpec:
        """The data settings the trials (and ``train --config best_config.toml``) load with."""
        return self.base.data_spec(self.data, cleaning=self.cleaning, text_column=self.text_column,
                                   label_column=self.label_column)

    def run_keys(self) -> dict[str, Any]:
        """The top-level keys of a ``train --config`` file that repeats this study's data settings."""
        return {"model": self.model, "data": self.data, "cleaning": self.cleaning,
                "text_column": self.text_column, "label_column": self.label_column}


@dataclass
class TuneResult:
    study_name: str
    storage: str
    counts: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    best_config: TrainConfig | None
    ran: int = 0
    final: Any = None
    study: Any = None


# --------------------------------------------------------------------------- search space


def load_search_space(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The search space in a TOML file (one table per setting, optionally under ``[search_space]``)."""
    if path is None:
        return validate_search_space(DEFAULT_SEARCH_SPACE)
    file = Path(path)
    if not file.is_file():
        raise UserError(f"search space file not found: {file}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"cannot parse search space file {file}: {error}") from error
    space = data.get("search_space", data)
    return validate_search_space({k: v for k, v in space.items() if isinstance(v, dict)}, str(file))


def validate_search_space(space: Mapping[str, Any], where: str = "search space") -> dict[str, dict[str, Any]]:
    """Normalised copy of ``space``; unknown settings or malformed ranges are one-line errors."""
    if not space:
        raise UserError(f"{where} names no settings to search")
    normal: dict[str, dict[str, Any]] = {}
    for name, spec in space.items():
        if name not in SEARCHABLE:
            raise UserError(f"{where}: cannot search {name!r}; searchable: {', '.join(SEARCHABLE)}")
        normal[name] = _validate_dimension(name, dict(spec), where)
    return normal


def _validate_dimension(name: str, spec: dict[str, Any], where: str) -> dict[str, Any]:
    kind = spec.get("type", "categorical" if "choices" in spec else "float")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise UserError(f"{where}: {name} needs a non-empty list of choices")
        return {"type": kind, "choices": list(choices)}
    if kind not in ("float", "int"):
        raise UserError(f"{where}: {name} has type {kind!r}; use float, int or categorical")
    if kind == "float" and name in INTEGER_SETTINGS:
        raise UserError(f"{where}: {name} is a whole number; use type int or categorical")
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{where}: {name} needs numeric low and high") from error
    log = bool(spec.get("log", False))
    if not low <= high or (log and low <= 0):
        raise UserError(f"{where}: {name} needs low <= high{' and low > 0 on a log scale' if log else ''}")
    if kind == "int":
        return {"type": kind, "low": int(low), "high": int(high), "log": log}
    return {"type": kind, "low": low, "high": high, "log": log}


def suggest(trial: optuna.Trial, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Draw one setting per dimension of ``space``."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec["log"])
        else:
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec["log"])
    return params


def search_space_toml(space: Mapping[str, Mapping[str, Any]]) -> str:
    """Render a search space as the TOML that :func:`load_search_space` reads."""
    import json

    lines = []
    for name, spec in space.items():
        lines.append(f"[search_space.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in spec.items()]
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- storage and study


def default_storage(runs_dir: Path | None) -> str:
    """The SQLite study database in ``runs_dir``, creating the folder."""
    from .tracking import ensure_writable

    url = storage_url(None, runs_dir)
    ensure_writable(runs_dir)  # type: ignore[arg-type]  # storage_url refused None
    return url


def storage_url(storage: str | None, runs_dir: Path | None) -> str:
    """The study database URL: ``storage``, else SQLite in ``runs_dir`` (nothing is created)."""
    if storage:
        return storage
    if runs_dir is None:
        raise UserError("tuning keeps its study in a database: pass --runs-dir DIR or --storage URL")
    return f"sqlite:///{Path(runs_dir).expanduser().resolve() / STUDY_DB}"


def display_url(url: str) -> str:
    """The storage URL with any password masked, for messages and records."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL: mask what sits between "user:" and "@"
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def check_storage_url(url: str) -> str:
    """Refuse URL schemes Optuna cannot use and prepare a SQLite file's folder."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.split("+", 1)[0] not in STORAGE_SCHEMES:
        hint = " (write postgresql://)" if scheme.startswith("postgres") else ""
        raise UserError(f"unsupported storage URL scheme {scheme or url!r}{hint}; use sqlite:///PATH.db, "
                        "postgresql://USER:PASSWORD@HOST/DB or mysql://USER:PASSWORD@HOST/DB")
    if scheme == "sqlite":
        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path
        if path and path != ":memory:":
            from .tracking import ensure_writable

            ensure_writable(Path(path).expanduser().parent)
        return url
    _check_server_url(url)
    return url


def _check_server_url(url: str) -> None:
    """A PostgreSQL/MySQL URL must parse and name a database (before any connection is tried)."""
    from sqlalchemy.engine import make_url

    expected = "expected postgresql://USER:PASSWORD@HOST:PORT/DB"
    try:
        parsed = make_url(url)
        port = parsed.port
    except ValueError as error:
        reason = "the port is not a number" if "int()" in str(error) else first_line(error)
        raise UserError(f"malformed storage URL {display_url(url)}: {reason}; {expected}") from error
    if port is not None and not 0 < port < 65536:
        raise UserError(f"malformed storage URL {display_url(url)}: port {port} is out of range; {expected}")
    if not parsed.database:
        raise UserError(f"storage URL {display_url(url)} names no database; {expected}")


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """A database storage with heartbeats (stale trials of crashed workers fail and are retried once)."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    check_storage_url(url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local workers write to one file: wait for the lock instead of failing at once.
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}}
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with _sqlite_lock(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are stable
        try:
            for attempt in range(SCHEMA_ATTEMPTS):
                try:
                    return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_SECONDS,
                                      grace_period=GRACE_SECONDS,
                                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                                          max_retry=1))
                except Exception as error:
                    # Workers on several machines opening a new database race to create its tables;
                    # the loser sees "duplicate"/"already exists" and finds the tables on a retry.
                    if attempt + 1 == SCHEMA_ATTEMPTS or not _lost_schema_race(error):
                        raise
                    time.sleep(0.2 + random.random())
            raise AssertionError("unreachable")
        except ModuleNotFoundError as error:
            raise UserError(f"the database driver for {display_url(url)} is not installed "
                            f"({error.name}); for PostgreSQL: pip install 'imdb-sentiment[scale]'") from error
        except Exception as error:
            if type(error).__name__ == "OperationalError":  # refused, unknown host, bad password...
                reason = re.sub(r"^\([\w.]+\) ", "", first_line(error))
                raise UserError(f"cannot connect to the study database {display_url(url)} (is the server "
                                f"running and reachable?): {reason}") from error
            raise UserError(f"cannot open study storage {display_url(url)}: {first_line(error)}") from error


def _lost_schema_race(error: BaseException) -> bool:
    text = str(error).lower()
    return type(error).__name__ in ("IntegrityError", "ProgrammingError") and (
        "duplicate" in text or "already exists" in text)


@contextlib.contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    """Serialise schema creation when two local workers open a new SQLite study together."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        yield
        return
    from .tracking import folder_lock

    path = Path(url.split("://", 1)[1][1:]).expanduser()
    with folder_lock(path.parent, f".{path.name}.lock"):
        yield


def study_signature(settings: TuneSettings) -> dict[str, Any]:
    """What makes trials comparable: the search space, the fixed and data settings, the model's name."""
    fixed = {k: v for k, v in settings.base.to_dict().items() if k not in settings.search_space}
    data = {key: value for key, value in settings.run_keys().items() if key not in ("model", "data")}
    return {"search_space": settings.search_space, "fixed": fixed,
            "model": Path(str(settings.model).rstrip("/")).name, "data_settings": data}


def open_study(settings: TuneSettings, storage: Any) -> optuna.Study:
    """Create or resume the study; refuse one that was created for another search."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=_sampler_seed(settings.base.seed), n_startup_trials=5)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if settings.prune
              else optuna.pruners.NopPruner())
    try:
        study = optuna.create_study(storage=storage, study_name=settings.study_name, sampler=sampler,
                                    pruner=pruner, direction="maximize", load_if_exists=True)
    except Exception as error:
        raise UserError(f"cannot open study {settings.study_name!r}: {first_line(error)}") from error
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise UserError(f"study {settings.study_name!r} minimises; it was not created by this tool")
    _check_signature(study, study_signature(settings), storage)
    return study


def _check_signature(study: optuna.Study, signature: dict[str, Any], storage: Any) -> None:
    stored = study.user_attrs
    if not stored.get("search_space"):
        for key, value in signature.items():
            study.set_user_attr(key, value)
        return
    where = f"study {study.study_name!r} in {display_url(str(storage.url))}"
    if _normal(stored["search_space"]) != _normal(signature["search_space"]):
        raise UserError(f"{where} was created with another search space "
                        f"({', '.join(stored['search_space'])}); choose another --study-name")
    for key, what in (("fixed", "fixed settings"), ("model", "model"), ("data_settings", "data settings")):
        if key in stored and _normal(stored[key]) != _normal(signature[key]):
            changed = _differences(stored[key], signature[key])
            raise UserError(f"{where} was created with other {what} ({changed}); "
                            "choose another --study-name")


def _normal(value: Any) -> Any:
    """JSON round trip, so stored and fresh values compare alike (tuples vs lists, ints vs floats)."""
    import json

    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _differences(stored: Any, fresh: Any) -> str:
    if isinstance(stored, dict) and isinstance(fresh, dict):
        keys = sorted(k for k in set(stored) | set(fresh) if _normal(stored.get(k)) != _normal(fresh.get(k)))
        return ", ".join(f"{k}: {stored.get(k)!r} → {fresh.get(k)!r}" for k in keys[:4])
    return f"{stored!r} → {fresh!r}"


def _sampler_seed(seed: int) -> int:
    """Seeded, but distinct per worker process, so concurrent workers do not draw the same trials."""
    return (seed * 1_000_003 + os.getpid()) % (2**31)


def count_states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def finished_count(study: optuna.Study) -> int:
    counts = count_states(study)
    return sum(counts.get(state, 0) for state in FINISHED)


# --------------------------------------------------------------------------- the objective


def pruning_callback(trial: optuna.Trial) -> Any:
    """A ``TrainerCallback`` that reports each epoch's validation accuracy and stops a losing trial.

    Stopping through ``control.should_training_stop`` lets training end cleanly; the objective
    then raises ``TrialPruned``.
    """
    from transformers import TrainerCallback

    class PruneOnValidationAccuracy(TrainerCallback):
        def __init__(self) -> None:
            self.pruned_at: int | None = None
            self.reports = 0

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None,
                        **kwargs: Any) -> Any:
            value = (metrics or {}).get("eval_accuracy")
            if value is None:
                return control
            self.reports += 1
            step = max(1, round(getattr(state, "epoch", 0) or 0) or self.reports)
            trial.report(float(value), step)
            if trial.should_prune():
                self.pruned_at = step
                control.should_training_stop = True
            return control

    return PruneOnValidationAccuracy()


def make_objective(settings: TuneSettings, frames: dict[str, pd.DataFrame], train_fn: TrainFn
                   ) -> Callable[[optuna.Trial], float]:
    """The function Optuna maximises: fine-tune with the trial's settings, return validation accuracy."""

    def objective(trial: optuna.Trial) -> float:
        config = settings.base.replace(**suggest(trial, settings.search_space))
        callback = pruning_callback(trial) if settings.prune else None
        trial.set_user_attr("worker", f"{platform.node()}:{os.getpid()}")
        started = time.perf_counter()
        result = _train_trial(settings, trial, config, frames, train_fn, callback, started)
        return _finish_trial(settings, trial, config, result, getattr(callback, "pruned_at", None), started)

    return objective


def _train_trial(settings: TuneSettings, trial: optuna.Trial, config: TrainConfig,
                 frames: dict[str, pd.DataFrame], train_fn: TrainFn, callback: Any, started: float) -> Any:
    """Train without saving; memory errors become ``TrialOutOfMemory`` (failed, study goes on)."""
    try:
        return train_fn(settings.model, frames, None, config, TrainRun(evaluate_test=False),
                        callbacks=[callback] if callback else [], progress=settings.progress)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        trial.set_user_attr("out_of_memory", True)
        _track_trial(settings, trial, config, {}, time.perf_counter() - started, "out-of-memory", ())
        raise TrialOutOfMemory(f"trial {trial.number} ran out of memory: {first_line(error)}") from error
    finally:
        _free_memory()


def _finish_trial(settings: TuneSettings, trial: optuna.Trial, config: TrainConfig, result: Any,
                  pruned_at: int | None, started: float) -> float:
    """Record the trial (pruned ones too, with the epochs they ran) and hand Optuna its value."""
    import optuna

    seconds = float(getattr(result, "train_seconds", None) or time.perf_counter() - started)
    trial.set_user_attr("train_seconds", seconds)
    trial.set_user_attr("validation", _plain_metrics(result.validation_metrics))
    run_id = _track_trial(settings, trial, config,
                          {"validation": result.validation_metrics, "train_seconds": seconds},
                          time.perf_counter() - started, "pruned" if pruned_at is not None else "complete",
                          getattr(result, "history", ()) or ())
    if run_id:
        trial.set_user_attr("run_id", run_id)
    if pruned_at is not None:
        raise optuna.TrialPruned(f"behind the median after epoch {pruned_at}")
    accuracy = result.validation_metrics.get("accuracy")
    if accuracy is None or not math.isfinite(float(accuracy)):
        raise UserError(f"trial {trial.number} gave no finite validation accuracy "
                        "(is the validation split empty?)")
    return float(accuracy)


def _track_trial(settings: TuneSettings, trial: optuna.Trial, config: TrainConfig, metrics: dict[str, Any],
                 duration: float, state: str, history: Any) -> str | None:
    if settings.runs_dir is None:
        return None
    from .tracking import RunEntry, log_run

    return log_run(settings.runs_dir, RunEntry(
        stage="tune-trial", model=settings.model, params=config.to_dict(),
        metrics=metrics, duration=duration, history=list(history),
        tags={"study": settings.study_name, "trial": trial.number, "trial_state": state,
              "split": "validation", "data": settings.data},
        status="FINISHED" if state in ("complete", "pruned") else "FAILED",
    ))


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA/MPS out-of-memory errors, host ``MemoryError``, or any error that says so.

    Training turns memory errors into a one-line ``UserError`` that says "out of memory"; the
    message test catches those without importing torch.
    """
    if isinstance(error, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom_type is not None and isinstance(error, oom_type):
        return True
    return "out of memory" in str(error).lower()


def _quiet_progress_bars() -> None:
    """Without a terminal, one line per trial is the progress; loading bars would bury it."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    with contextlib.suppress(Exception):
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def _plain_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}


def trial_line(trial: Any) -> str:
    """One progress line per trial: its settings and outcome."""
    settings = ", ".join(f"{k}={format_value(v)}" for k, v in trial.params.items())
    state = trial.state.name
    if state == "COMPLETE":
        outcome = f"validation accuracy {trial.value:.4f}"
    elif state == "PRUNED":
        last = max(trial.intermediate_values) if trial.intermediate_values else 0
        outcome = f"pruned after epoch {last}"
    else:
        outcome = f"failed{': out of memory' if trial.user_attrs.get('out_of_memory') else ''}"
    seconds = trial.user_attrs.get("train_seconds")
    took = f" ({seconds:.0f} s)" if seconds else ""
    return f"trial {trial.number}: {settings} → {outcome}{took}"


# --------------------------------------------------------------------------- running a study


def load_tuning_data(settings: TuneSettings) -> dict[str, pd.DataFrame]:
    """Train/validation (and test, kept apart for ``--final``), subsampled as configured."""
    from .data import subsample

    base = settings.base
    frames = settings.data_spec().load(require=("train",))  # the carve `train` makes with these settings
    frames["train"] = subsample(frames["train"], base.max_train_samples, base.seed)
    frames["validation"] = subsample(frames["validation"], base.max_eval_samples, base.seed)
    return frames


def tune(settings: TuneSettings, *, train_fn: TrainFn | None = None,
         load_frames: FrameLoader | None = None, echo: Echo = print) -> TuneResult:
    """Run (or resume, or join) the study until it has ``settings.trials`` finished trials.

    ``load_frames`` is called only when trials remain (a finished study needs no data).
    """
    settings.validate()
    if settings.runs_dir is not None:
        from .tracking import ensure_writable

        ensure_writable(settings.runs_dir)  # the trials are recorded there
    url = settings.storage or default_storage(settings.runs_dir)
    study = open_study(settings, open_storage(url))
    remaining = settings.trials - finished_count(study)
    ran = 0
    if remaining > 0:
        if train_fn is None:
            from .training import train as train_fn

            if not settings.progress:
                _quiet_progress_bars()
        frames = load_frames() if load_frames is not None else load_tuning_data(settings)
        trial_frames = {split: frames[split] for split in ("train", "validation")}  # never test
        ran = _optimize(study, settings, make_objective(settings, trial_frames, train_fn), remaining, echo)
    result = summarize(study, settings, url, ran)
    result.study = study
    return result


def _optimize(study: optuna.Study, settings: TuneSettings, objective: Callable[[optuna.Trial], float],
              remaining: int, echo: Echo) -> int:
    """Run up to ``remaining`` trials, stopping early once the study (all workers) has enough."""
    import optuna

    ran = 0

    def report(study: optuna.Study, trial: Any) -> None:
        nonlocal ran
        ran += 1
        echo(trial_line(trial))

    enough = optuna.study.MaxTrialsCallback(settings.trials, states=_finished_states())
    study.optimize(objective, n_trials=remaining, timeout=settings.timeout, catch=(TrialOutOfMemory,),
                   callbacks=[enough, report])
    return ran


def _finished_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def summarize(study: optuna.Study, settings: TuneSettings, url: str, ran: int = 0) -> TuneResult:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else None
    best_config = None
    if best is not None:
        best_config = settings.base.replace(**{k: _as_setting(k, v) for k, v in best.params.items()})
    return TuneResult(
        study_name=study.study_name, storage=display_url(url), counts=count_states(study),
        best_value=best.value if best else None, best_params=dict(best.params) if best else {},
        best_trial=best.number if best else None, best_config=best_config, ran=ran,
    )


def _as_setting(name: str, value: Any) -> Any:
    return int(value) if name in INTEGER_SETTINGS else value


# --------------------------------------------------------------------------- outputs


def best_config_toml(result: TuneResult, settings: TuneSettings) -> str:
    """The best settings as a ``train --config`` file, with where they came from as comments."""
    from .config import to_toml

    if result.best_config is None:
        raise UserError(f"study {result.study_name!r} has no completed trial yet; nothing to write")
    header = (f"# Best of study {result.study_name!r} ({result.storage}): trial {result.best_trial}, "
              f"validation accuracy {result.best_value:.4f}.\n# Use: imdb-sentiment train --config THIS_FILE "
              "--output DIR\n")
    return header + to_toml(settings.run_keys(), result.best_config)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, settings, training time, run id."""
    import pandas as pd

    rows = []
    for trial in study.get_trials(deepcopy=False):
        rows.append({
            "trial": trial.number, "state": trial.state.name, "validation_accuracy": trial.value,
            **{f"param_{k}": v for k, v in trial.params.items()},
            "train_seconds": trial.user_attrs.get("train_seconds"),
            "epochs_reported": len(trial.intermediate_values),
            "run_id": trial.user_attrs.get("run_id"),
        })
    return pd.DataFrame(rows)


def write_outputs(folder: Path, result: TuneResult, settings: TuneSettings, study: optuna.Study) -> None:
    """``study.json``, ``trials.csv``, ``search_space.toml`` and ``best_config.toml`` into ``folder``.

    Each file is replaced atomically; the best config comes last as it needs a completed trial.
    """
    from .artifacts import atomic_write_text, write_json

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "study.json", {
        "study_name": result.study_name, "storage": result.storage, "trials": result.counts,
        "best_trial": result.best_trial, "best_validation_accuracy": result.best_value,
        "best_params": result.best_params, "model": settings.model, "data": settings.data,
        "target_trials": settings.trials,
    })
    atomic_write_text(folder / "trials.csv", trials_frame(study).to_csv(index=False))
    atomic_write_text(folder / "search_space.toml", search_space_toml(settings.search_space))
    atomic_write_text(folder / "best_config.toml", best_config_toml(result, settings))


def run_study(settings: TuneSettings, output: str | Path, *, final: bool = False, overwrite: bool = False,
              train_fn: TrainFn | None = None, load_frames: FrameLoader | None = None, echo: Echo = print
              ) -> TuneResult:
    """The ``tune`` command: search, write the outputs, and with ``final`` retrain and test the best.

    The data is loaded once, and only if a trial or the final training needs it.
    """
    from .artifacts import check_output_dir

    folder = Path(output).expanduser()
    rerun = is_study_output(folder, settings.study_name)
    check_output_dir(folder, overwrite or rerun, inputs=(settings.model, settings.data))  # before any trial
    cache: dict[str, dict[str, pd.DataFrame]] = {}

    def frames() -> dict[str, pd.DataFrame]:
        if "frames" not in cache:
            cache["frames"] = load_frames() if load_frames is not None else load_tuning_data(settings)
        return cache["frames"]

    result = tune(settings, train_fn=train_fn, load_frames=frames, echo=echo)
    write_outputs(folder, result, settings, result.study)
    if final:
        result.final = run_final(settings, result, frames(), folder / "model", train_fn,
                                 overwrite=overwrite or rerun)
    return result


def is_study_output(folder: Path, study_name: str) -> bool:
    """True when ``folder`` holds an earlier output of this study (safe to replace on a rerun)."""
    from .artifacts import read_json

    marker = folder / "study.json"
    with contextlib.suppress(OSError, ValueError):
        return marker.is_file() and read_json(marker).get("study_name") == study_name
    return False


def run_final(settings: TuneSettings, result: TuneResult, frames: dict[str, pd.DataFrame], output: Path,
              train_fn: TrainFn | None = None, *, overwrite: bool = False) -> Any:
    """Retrain the best settings on train and evaluate once on test; record it as stage ``tuned``."""
    if result.best_config is None:
        raise UserError(f"study {result.study_name!r} has no completed trial; --final needs one")
    if "test" not in frames:
        raise UserError(f"{settings.data} has no test split; --final evaluates on test")
    if train_fn is None:
        from .training import train as train_fn
    started = time.perf_counter()
    final = train_fn(settings.model, frames, output, result.best_config,
                     TrainRun(max_test_samples=settings.max_test_samples), overwrite=overwrite,
                     progress=settings.progress)
    if settings.runs_dir is not None:
        from .tracking import RunEntry, log_run

        # The predictions feed the report's ROC curve; the model folder is recorded by location.
        artifacts = [p for p in (Path(output) / "predictions.parquet", Path(output)) if p.exists()]
        log_run(settings.runs_dir, RunEntry(
            stage="tuned", model=settings.model, params=result.best_config.to_dict(),
            metrics={"test": final.test_metrics or {}, "validation": final.validation_metrics,
                     "train_seconds": final.train_seconds},
            duration=time.perf_counter() - started, artifacts=artifacts, history=final.history or (),
            tags={"study": result.study_name, "best_trial": result.best_trial, "split": "test",
                  "data": settings.data, "output": str(Path(output).resolve())}))
    return final


