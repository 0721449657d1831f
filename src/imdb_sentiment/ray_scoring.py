"""Score big corpora with Ray Data: many files in, partitioned parquet out, one model load per actor.

The files (a folder, a glob or one file; parquet, CSV or JSONL) become one Ray dataset read by
Ray's own readers; ``map_batches`` sends batches of rows to a fixed pool of actors, each of which
loads the classifier once and scores with the same :func:`scoring.predict_frame` as
single-process ``predict``, so the output parquet parts hold the same columns (input columns plus
label, score, truncated, error) and a bad row gets its ``error`` instead of stopping the job.
Row order is not kept across parts: join on an id column. On a cluster, the model, the inputs and
the output folder must be paths every node can read (or write): a shared file system.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import InferenceConfig
from .errors import UserError, first_line

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

ENGINES = ("local", "ray")
"""``predict --engine``: this process, or a Ray cluster (local or joined with ``--address``)."""
RAY_SUFFIXES = (".parquet", ".csv", ".tsv", ".jsonl", ".json", ".txt")
INSTALL_HINT = "pip install 'imdb-sentiment[scale]'"
ADDED_COLUMNS_KEY = b"imdb_sentiment.added_columns"
"""Parquet schema metadata: the names the scoring gave its label, score, truncated and error columns."""
IO_TASK = {"num_cpus": 0}
"""Reading and writing reserve no CPU: the actors take them all, and I/O tasks waiting for a free
CPU behind a full actor pool would never run."""


@dataclass
class RayScoring:
    """One ``predict --engine ray`` job; each actor loads ``model`` with ``hybrid.load_model``."""

    model: str
    inputs: str
    output: Path
    text_column: str = "text"
    address: str | None = None
    actors: int | None = None
    """Actor pool size; default: as many as the cluster's CPUs (or GPUs) allow."""
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    rows_per_batch: int = 256
    overwrite: bool = False
    progress: bool = False
    config: InferenceConfig = field(default_factory=InferenceConfig)
    """How the classifier reads reviews and runs."""
    mode: str | None = None
    """A hybrid folder's mode for this job (None: the folder's own)."""
    threshold: float | None = None
    """A hybrid folder's cascade threshold for this job (None: the folder's own)."""


@dataclass
class RaySummary:
    files: int
    rows: int
    bad_rows: int
    seconds: float
    actors: int
    columns: list[str]
    """Names of the label, score, truncated and error columns, as the scoring chose them
    (see ``tables.free_names``)."""


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise UserError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    return engine


def expand_inputs(pattern: str) -> list[Path]:
    """The input files: one file, every parquet/CSV/JSONL file under a folder, or a glob's matches."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in RAY_SUFFIXES)
    elif path.is_file():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise UserError(f"no input files match {pattern}")
    unsupported = sorted({p.suffix or "(none)" for p in files if p.suffix.lower() not in RAY_SUFFIXES})
    if unsupported:
        raise UserError(f"--engine ray reads {', '.join(RAY_SUFFIXES)} files, not {', '.join(unsupported)}")
    return [p.resolve() for p in files]  # actors may run in other folders (or on other machines)


def import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError as error:
        raise UserError(f"--engine ray needs Ray: {INSTALL_HINT}") from error
    return ray


def score_files(job: RayScoring) -> RaySummary:
    """Score every row of ``job.inputs`` on Ray into parquet parts in ``job.output`` (atomically)."""
    from .artifacts import atomic_output_dir, check_output_dir

    files = expand_inputs(job.inputs)
    check_output_dir(job.output, job.overwrite)
    if job.rows_per_batch <= 0 or (job.actors is not None and job.actors <= 0):
        raise UserError("--actors and the rows per batch must be positive")
    model = _resolved_model(job)
    ray = import_ray()
    started_here = _connect(ray, job.address)
    try:
        dataset = _read(ray, files, job.text_column, job.progress)
        actors = job.actors or _default_actors(ray, job)
        scored = dataset.map_batches(
            _Scorer, fn_constructor_args=(model, job, job.cpus_per_actor),
            batch_format="pandas", batch_size=job.rows_per_batch,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=job.cpus_per_actor, num_gpus=job.gpus_per_actor)
        started = time.perf_counter()
        with atomic_output_dir(job.output, job.overwrite) as folder:
            try:
                scored.write_parquet(str(folder), ray_remote_args=IO_TASK)
            except Exception as error:  # a bad file or model option inside a task: show its one line
                raise _user_error(error) or error from error
        seconds = time.perf_counter() - started
    finally:
        if started_here:
            ray.shutdown()
    rows, bad, names = _count(Path(job.output))
    return RaySummary(len(files), rows, bad, seconds, actors, names)


def _resolved_model(job: RayScoring) -> str:
    """Load the model once here: bad options fail in one line, and an ONNX export is cached once."""
    from .hybrid import load_model

    local = Path(job.model).expanduser()
    model = str(local.resolve()) if local.exists() else job.model
    config = job.config
    if job.gpus_per_actor > 0:  # this process may have no GPU; the actors' device is checked there
        config = dataclasses.replace(config, device="cpu")
    load_model(model, config, mode=job.mode, threshold=job.threshold)
    return model


def _connect(ray: Any, address: str | None) -> bool:
    """Join ``address`` (or start a local instance); True when this call started it."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except Exception as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise UserError(f"cannot start or reach {where}: {first_line(error)}") from error
    return True


def _read(ray: Any, files: list[Path], text_column: str, progress: bool) -> Any:
    """One dataset block per file, each read by :func:`tables.read_reviews` as `predict` reads it."""
    import logging

    ray.data.DataContext.get_current().enable_progress_bars = progress
    if not progress:  # the one-line summary says what happened; Ray Data's plan logs would bury it
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    paths = ray.data.from_items([{"path": str(path)} for path in files], override_num_blocks=len(files))
    return paths.map_batches(_read_files, batch_size=1, batch_format="pandas", **IO_TASK,
                             fn_kwargs={"text_column": text_column})


def _read_files(batch: pd.DataFrame, text_column: str) -> pd.DataFrame:
    import pandas as pd

    from .tables import read_reviews

    return pd.concat([read_reviews(Path(path), text_column) for path in batch["path"]], ignore_index=True)


def _default_actors(ray: Any, job: RayScoring) -> int:
    resources = ray.cluster_resources()
    if job.gpus_per_actor > 0:
        return max(1, int(resources.get("GPU", 0) // job.gpus_per_actor))
    return max(1, int(resources.get("CPU", 1) // job.cpus_per_actor))


class _Scorer:
    """A Ray actor: loads the classifier once, then scores batch after batch."""

    def __init__(self, model: str, job: RayScoring, cpus: float) -> None:
        import torch

        from .hybrid import load_model

        torch.set_num_threads(max(1, int(cpus)))  # one thread per reserved CPU: actors do not fight
        self.classifier = load_model(model, job.config, mode=job.mode, threshold=job.threshold)
        self.text_column = job.text_column

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        import pyarrow as pa

        from .scoring import predict_frame

        out, names = predict_frame(self.classifier, batch, self.text_column)
        # Fixed types, so a part with no errors (or only errors) has the same schema as the others.
        table = pa.Table.from_pandas(out, preserve_index=False)
        for name, kind in zip(names, (pa.string(), pa.float64(), pa.bool_(), pa.string()), strict=True):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, table.column(index).cast(kind))
        # The names chosen here travel with the parts, so the summary reads the right columns.
        metadata = {**(table.schema.metadata or {}), ADDED_COLUMNS_KEY: json.dumps(names).encode()}
        return table.replace_schema_metadata(metadata)


def _count(folder: Path) -> tuple[int, int, list[str]]:
    """Rows, bad rows and the label, score, truncated and error column names, read back from the
    written parts (each part's error column under the name its scoring chose)."""
    import pyarrow.parquet as pq

    from .tables import OUTPUT_COLUMNS

    parts = sorted(folder.glob("*.parquet"))
    if not parts:  # no rows in the input
        return 0, 0, list(OUTPUT_COLUMNS)
    rows = bad = 0
    first: list[str] | None = None
    for part in parts:
        names = _part_columns(part)
        errors = pq.read_table(part, columns=[names[3]]).column(0)
        rows, bad = rows + len(errors), bad + len(errors) - errors.null_count
        first = first or names
    return rows, bad, first or list(OUTPUT_COLUMNS)


def _part_columns(part: Path) -> list[str]:
    """The label, score, truncated and error column names a written part records."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(part).metadata or {}
    if ADDED_COLUMNS_KEY not in metadata:
        raise UserError(f"{part} does not record its result columns; it was not written by --engine ray")
    return [str(name) for name in json.loads(metadata[ADDED_COLUMNS_KEY])]


def _user_error(error: BaseException) -> UserError | None:
    """The ``UserError`` a Ray task raised, found through Ray's wrapping exceptions."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UserError):
            return UserError(str(current))
        pending += [current.__cause__, getattr(current, "cause", None)]
    return None


