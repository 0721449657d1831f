"""Run tracking: every baseline, evaluation, training and tuning trial as one MLflow run.

The store is a folder (``--runs-dir``, default ``./runs``) holding ``mlflow.db`` (SQLite) and
``artifacts/``; ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`` browses it. Tracking
is a by-product: a failure to record is a one-line warning, never a failed command, and mlflow
is imported only when a run is actually recorded.

Conventional metric names, read by ``runs`` and ``report``: ``accuracy``, ``f1``, ``roc_auc``,
``n_test`` (reviews evaluated), ``train_seconds``, ``reviews_per_second`` (evaluation speed);
a nested ``{"test": {...}}`` becomes ``test_accuracy`` and so on. A ``confusion_matrix``
(2x2, rows true, columns predicted) is logged as ``confusion_tn/fp/fn/tp``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import write_json
from .errors import UserError, first_line
from .formatting import short_model_name

EXPERIMENT = "imdb-sentiment"
DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "artifacts"
DEFAULT_RUNS_DIR = "runs"
RUNS_DIR_ENV = "IMDB_SENTIMENT_RUNS_DIR"
DISABLED = frozenset({"none", "off"})
"""``--runs-dir none`` (or the environment variable set to it) turns tracking off."""
COPY_LIMIT_BYTES = 20_000_000
"""Artifacts above this size (e.g. model folders) are recorded by location, not copied."""
_CONFUSION_NAMES = (("confusion_tn", "confusion_fp"), ("confusion_fn", "confusion_tp"))


@dataclass
class RunRecord:
    """One recorded run, as read back for ``runs`` and ``report``."""

    run_id: str
    stage: str
    model: str
    status: str
    start_time: float
    duration: float | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_dir: Path | None = None

    def metric(self, *names: str) -> float | None:
        """The first of ``names`` that this run recorded."""
        for name in names:
            if name in self.metrics:
                return self.metrics[name]
        return None

    def artifact(self, name: str) -> Path | None:
        """A logged artifact by name (searched recursively), else one inside a folder recorded by location."""
        folders = [self.artifact_dir] if self.artifact_dir is not None else []
        for key, value in sorted(self.tags.items()):
            if key.startswith("location."):
                if key == f"location.{name}" and Path(value).exists():
                    return Path(value)
                folders.append(Path(value))
        for folder in folders:
            found = sorted(folder.rglob(name)) if folder.is_dir() else []
            if found:
                return found[0]
        return None


# --------------------------------------------------------------------------- the store


def resolve_runs_dir(value: str | os.PathLike[str] | None) -> Path | None:
    """The runs folder for an option value; ``None`` when tracking is off."""
    if value is None or str(value).strip().lower() in DISABLED or not str(value).strip():
        return None
    return Path(value).expanduser()


def tracking_uri(runs_dir: str | os.PathLike[str]) -> str:
    """The MLflow store URI of a runs folder (absolute, so any working directory finds it)."""
    return f"sqlite:///{Path(runs_dir).expanduser().resolve() / DB_NAME}"


def ensure_writable(runs_dir: str | os.PathLike[str]) -> Path:
    """Create ``runs_dir`` if needed and prove it is writable, or raise a one-line error."""
    folder = Path(runs_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        message = f"runs folder {folder} is not writable ({reason}); pass another --runs-dir"
        raise UserError(message) from error
    return folder


@contextlib.contextmanager
def folder_lock(folder: Path, name: str = ".lock") -> Iterator[None]:
    """An exclusive inter-process lock on ``folder`` (POSIX; a no-op elsewhere).

    First use creates the SQLite schemas; two workers starting together must not both migrate.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock, accept the (small) race
        yield
        return
    with open(folder / name, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def quiet_mlflow() -> None:
    """Silence MLflow's and Alembic's INFO chatter (schema creation, experiment creation)."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # a local tool sends no usage data
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


@functools.lru_cache(maxsize=8)
def _store(runs_dir: str) -> tuple[Any, str]:
    """An MLflow client on ``runs_dir`` and the experiment id (cached: one per process)."""
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    folder = ensure_writable(runs_dir)
    with folder_lock(folder):
        client = MlflowClient(tracking_uri=tracking_uri(folder))
        quiet_mlflow()  # mlflow configures its loggers on import
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return client, experiment.experiment_id
        location = (folder.resolve() / ARTIFACTS_NAME).as_uri()
        return client, client.create_experiment(EXPERIMENT, artifact_location=location)


def create_schema(runs_dir: str | os.PathLike[str]) -> Path:
    """Create an empty store (tables only) in ``runs_dir``; its ``mlflow.db`` can seed other folders."""
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    folder = ensure_writable(runs_dir)
    with folder_lock(folder):
        MlflowClient(tracking_uri=tracking_uri(folder)).search_experiments(max_results=1)
    return folder / DB_NAME


def open_store(runs_dir: str | os.PathLike[str]) -> tuple[Any, str]:
    """The client and experiment id of ``runs_dir``, creating the store on first use."""
    return _store(str(Path(runs_dir).expanduser().resolve()))


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RunEntry:
    """What one stage records: its name, what it ran on, its settings, scores and files.

    ``params`` and ``metrics`` may nest (flattened with ``.`` and ``_``); non-numeric metrics are
    kept in the ``metrics.json`` artifact only. ``history`` holds per-epoch dicts, logged as steps.
    """

    stage: str
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    duration: float | None = None
    artifacts: Sequence[str | os.PathLike[str]] = ()
    tags: Mapping[str, Any] = field(default_factory=dict)
    history: Sequence[Mapping[str, Any]] = ()
    status: str = "FINISHED"

    def __post_init__(self) -> None:
        if not self.stage:
            raise ValueError("a run needs a stage name")
        if self.duration is not None and self.duration < 0:
            raise ValueError(f"a run's duration must be >= 0, got {self.duration}")


def log_run(runs_dir: str | os.PathLike[str] | None, entry: RunEntry, *, strict: bool = False) -> str | None:
    """Record ``entry``; return its run id, or ``None`` when tracking is off or failed.

    Failures print one warning line unless ``strict`` (then they raise ``UserError``).
    """
    folder = resolve_runs_dir(runs_dir)
    if folder is None:
        return None
    try:
        return _record(folder, entry)
    except Exception as error:  # tracking must never break the command that produced the result
        reason = (f"{error.name} is not installed (reinstall imdb-sentiment; --runs-dir none "
                  "skips recording)" if isinstance(error, ModuleNotFoundError) else first_line(error))
        message = f"run not recorded in {folder}: {reason}"
        if strict:
            raise UserError(message) from error
        print(f"warning: {message}", file=sys.stderr)
        return None


def _record(folder: Path, entry: RunEntry) -> str:
    from mlflow.entities import Metric, Param

    stage, model, duration = entry.stage, entry.model, entry.duration
    params, metrics = dict(entry.params), dict(entry.metrics)
    client, experiment_id = open_store(folder)
    now = time.time()
    start = now - (duration or 0.0)
    all_tags = {**hardware_tags(), **_model_tags(stage, model), **{k: str(v) for k, v in entry.tags.items()},
                "stage": stage, "model": model}
    run = client.create_run(experiment_id, start_time=int(start * 1000),
                            tags=_clip(all_tags, 8000), run_name=f"{stage}: {short_model_name(model)}")
    run_id = run.info.run_id
    numeric = flatten_metrics(metrics)
    if duration is not None:
        numeric.setdefault("duration_seconds", float(duration))
    stamp = int(now * 1000)
    logged = [Metric(key, value, stamp, 0) for key, value in numeric.items()]
    logged += _history_metrics(list(entry.history), stamp)
    client.log_batch(run_id, metrics=logged,
                     params=[Param(k, v) for k, v in _clip(flatten_params(params), 6000).items()])
    _log_files(client, run_id, metrics, list(entry.artifacts))
    client.set_terminated(run_id, status=entry.status, end_time=stamp)
    return run_id


def _log_files(client: Any, run_id: str, metrics: dict[str, Any],
               artifacts: list[str | os.PathLike[str]]) -> None:
    """``metrics.json`` and a confusion-matrix picture, then the caller's files.

    Big files and folders are recorded by location (tag ``location.<name>``) instead of copied.
    """
    with tempfile.TemporaryDirectory(prefix="imdb-track-") as scratch:
        if metrics:
            client.log_artifact(run_id, str(write_json(Path(scratch) / "metrics.json", metrics)))
        matrix = metrics.get("confusion_matrix") or _nested(metrics, "confusion_matrix")
        if matrix is not None:
            with contextlib.suppress(Exception):  # a picture is a convenience, not a record
                picture = Path(scratch) / "confusion_matrix.png"
                from .plots import plot_confusion_matrix

                plot_confusion_matrix(matrix, picture)
                client.log_artifact(run_id, str(picture))
    for item in artifacts:
        path = Path(item)
        if not path.exists():
            print(f"warning: artifact {path} not found; not recorded", file=sys.stderr)
        elif _size(path) > COPY_LIMIT_BYTES:
            client.set_tag(run_id, f"location.{path.name}", str(path.resolve()))
        elif path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=path.name)
        else:
            client.log_artifact(run_id, str(path))


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numbers only, nested keys joined with ``_``; a 2x2 confusion matrix as four counts."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, f"{name}_"))
        elif key == "confusion_matrix" and _is_2x2(value):
            for row, names in zip(value, _CONFUSION_NAMES, strict=True):
                for cell, cell_name in zip(row, names, strict=True):
                    flat[f"{prefix}{cell_name}"] = float(cell)
        elif _is_number(value):
            flat[name] = float(value)
    return flat


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def _history_metrics(history: list[Mapping[str, Any]], stamp: int) -> list[Any]:
    from mlflow.entities import Metric

    logged = []
    for step, entry in enumerate(history, start=1):
        for key, value in flatten_metrics(entry).items():
            if key != "epoch":
                logged.append(Metric(f"epoch_{key}", value, stamp, int(entry.get("epoch", step) or step)))
    return logged


def _model_tags(stage: str, model: str) -> dict[str, str]:
    """For evaluations: was the model fine-tuned by this tool (it has a ``train_config.toml``)?

    The report tells a pretrained classifier's score apart from a re-evaluated fine-tuned one.
    """
    if stage != "evaluate":
        return {}
    folder = Path(str(model)).expanduser()
    return {"model_origin": "fine-tuned" if (folder / "train_config.toml").is_file() else "pretrained"}


def hardware_tags() -> dict[str, str]:
    """Where the run ran: CPU model and cores, the GPU when torch already uses one, versions.

    torch is consulted only if the caller already imported it, so a baseline stays torch-free.
    """
    from .engines import cpu_model

    tags = {
        "hardware.cpu": cpu_model(),
        "hardware.cpu_count": str(os.cpu_count() or 0),
        "hardware.platform": platform.platform(terse=True),
        "version.python": platform.python_version(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        tags["version.torch"] = str(getattr(torch, "__version__", "?"))
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                tags["hardware.gpu"] = torch.cuda.get_device_name(0)
                tags["hardware.gpu_count"] = str(torch.cuda.device_count())
    tags["hardware"] = tags.get("hardware.gpu") or f"CPU x{tags['hardware.cpu_count']}"
    return tags


# --------------------------------------------------------------------------- reading


def list_runs(runs_dir: str | os.PathLike[str], stages: Iterable[str] | None = None) -> list[RunRecord]:
    """All recorded runs, oldest first (optionally only some stages); refuses a folder without a store."""
    folder = Path(runs_dir).expanduser()
    if not (folder / DB_NAME).is_file():
        raise UserError(f"no runs recorded in {folder} (no {DB_NAME}); pass the --runs-dir the runs used")
    try:
        client, experiment_id = open_store(folder)
        runs = _search_all(client, experiment_id)
    except UserError:
        raise
    except Exception as error:
        raise UserError(f"cannot read the run store in {folder}: {first_line(error)}") from error
    wanted = set(stages) if stages is not None else None
    records = [_to_record(run, folder) for run in runs]
    return [r for r in sorted(records, key=lambda r: r.start_time) if wanted is None or r.stage in wanted]


def _search_all(client: Any, experiment_id: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _to_record(run: Any, folder: Path) -> RunRecord:
    info, data = run.info, run.data
    end = info.end_time or None
    duration = data.metrics.get("duration_seconds")
    if duration is None and end:
        duration = (end - info.start_time) / 1000
    return RunRecord(
        run_id=info.run_id, stage=data.tags.get("stage", "?"), model=data.tags.get("model", "?"),
        status=info.status, start_time=info.start_time / 1000, duration=duration,
        params=dict(data.params), metrics=dict(data.metrics), tags=dict(data.tags),
        artifact_dir=_artifact_dir(info, folder),
    )


def _artifact_dir(info: Any, folder: Path) -> Path | None:
    """The run's local artifact folder; falls back to the runs folder when it was moved."""
    from urllib.parse import unquote, urlparse

    uri = info.artifact_uri or ""
    path = Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else None
    if path is not None and path.is_dir():
        return path
    # moved or copied: the same layout under this runs folder (.../artifacts/[exp/]RUN/artifacts)
    tail = path.parts[path.parts.index(info.run_id):] if path and info.run_id in path.parts else ()
    for candidate in (folder / ARTIFACTS_NAME / Path(*tail) if tail else None,
                      folder / ARTIFACTS_NAME / str(info.experiment_id) / info.run_id / "artifacts"):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


# --------------------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str) and math.isfinite(number)


def _is_2x2(value: Any) -> bool:
    try:
        return len(value) == 2 and all(len(row) == 2 for row in value)
    except TypeError:
        return False


def _nested(metrics: Mapping[str, Any], key: str) -> Any:
    """``key`` inside the first nested table that has it (e.g. ``{"test": {"confusion_matrix": ...}}``)."""
    for value in metrics.values():
        if isinstance(value, Mapping) and key in value:
            return value[key]
    return None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _clip(values: Mapping[str, str], limit: int) -> dict[str, str]:
    return {key[:250]: value[:limit] for key, value in values.items()}
