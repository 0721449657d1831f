"""Soft labels for unlabeled reviews: a teacher classifier's P(positive) per review.

Any model :func:`hybrid.load_model` loads (a fine-tuned transformer, an ONNX export, a hybrid, a
prompted language model) or a baseline folder teaches. The output keeps every column of the
split, in input order, and adds ``p_positive``; the teacher and its settings go to a sidecar
``OUTPUT.teacher.json``. Work goes in parts of ``part_rows`` reviews, each written atomically to
``.OUTPUT.parts/`` as soon as it is scored, so a killed run continues where it stopped and no review
is scored twice; the parts folder is removed once the output is complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .data import SOFT_LABEL_COLUMN
from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from .classifier import Progress
    from .config import InferenceConfig

PART_ROWS = 1024
"""Reviews per part file: what a killed run can lose."""
SIDECAR_SUFFIX = ".teacher.json"
MANIFEST = "manifest.json"
FORMAT = "imdb-sentiment-labels"


class Teacher(Protocol):
    """What labelling needs of a classifier: probabilities and a description of itself."""

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: Progress | None = None) -> np.ndarray: ...

    def info(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LabelJob:
    """Which reviews :func:`label` scores, with which model, into which file."""

    model: str
    data: str
    output: Path
    split: str = "unsupervised"
    max_samples: int | None = None
    """A seeded random subset of this many reviews, kept in input order (default: all)."""
    seed: int = 42
    text_column: str = "text"
    part_rows: int = PART_ROWS
    overwrite: bool = False
    """Start over even if the output or its parts come from another model or sample."""
    config: InferenceConfig | None = None

    def __post_init__(self) -> None:
        if self.max_samples is not None and self.max_samples <= 0:
            raise UserError(f"--max-samples must be positive, got {self.max_samples}")
        if self.part_rows <= 0:
            raise UserError(f"--part-rows must be positive, got {self.part_rows}")


@dataclass
class LabelSummary:
    rows: int
    scored: int
    """Reviews this run scored (the others came from the parts of an interrupted run)."""
    resumed: int
    bad_rows: int
    seconds: float
    output: Path
    already_done: bool = False


def parts_dir(output: str | os.PathLike[str]) -> Path:
    """Where the parts of ``output`` wait until it is complete."""
    path = Path(output)
    return path.parent / f".{path.name}.parts"


def sidecar_path(output: str | os.PathLike[str]) -> Path:
    """The teacher record written next to ``output``."""
    path = Path(output)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def label(job: LabelJob, *, teacher: Teacher | None = None, progress: Progress | None = None,
          on_rows: Callable[[int, int], Any] | None = None) -> LabelSummary:
    """Score every review of ``job``'s split with its model and write the labelled file.

    ``teacher``: an already loaded classifier standing for ``job.model`` (else it is loaded).
    ``on_rows`` hears the number of reviews and how many earlier parts hold, before scoring starts.
    """
    from .artifacts import read_json, write_json
    from .tables import add_columns, check_output_file, write_table

    output = _check_output(job.output)
    frame = _reviews(job)
    key = _job_key(job, frame)
    parts = parts_dir(output)
    sidecar = sidecar_path(output)
    resuming = (parts / MANIFEST).is_file() and not job.overwrite
    if resuming and _read_key(parts / MANIFEST) != key:
        raise UserError(f"{output} was started with another model, data or sample ({parts}); repeat those "
                        "options or pass --overwrite to start over")
    if not resuming and output.exists() and not job.overwrite:
        if sidecar.is_file() and read_json(sidecar).get("job") == key:
            return LabelSummary(len(frame), 0, 0, 0, 0.0, output, already_done=True)
        raise UserError(f"{output} exists and holds other labels (model, data or sample differ); "
                        "pass --overwrite to replace it")
    check_output_file(output, None, overwrite=True)
    if not resuming:
        _fresh_parts(parts, key)
    count = len(frame)
    starts = range(0, count, job.part_rows)
    done = {start: _read_part(parts, start, min(job.part_rows, count - start)) for start in starts}
    done = {start: part for start, part in done.items() if part is not None}
    resumed = sum(len(part) for part in done.values())
    if on_rows is not None:
        on_rows(count, resumed)
    texts = frame[job.text_column].tolist()
    started = time.perf_counter()
    scored = 0
    if len(done) < len(starts):
        teacher = teacher if teacher is not None else load_teacher(job.model, job.config)
        info = teacher.info()
        write_json(parts / MANIFEST, {"format": FORMAT, "job": key, "teacher": info})  # for a resumed run
        for start in starts:
            if start in done:
                continue
            done[start] = _score_part(teacher, texts[start:start + job.part_rows], progress)
            write_table(done[start], parts / _part_name(start), "parquet")
            scored += len(done[start])
    else:
        info = read_json(parts / MANIFEST).get("teacher") or {}
    seconds = time.perf_counter() - started
    results = _concat([done[start] for start in starts])
    problems = [value if isinstance(value, str) else None for value in results["error"]]
    columns: dict[str, Sequence[object]] = {SOFT_LABEL_COLUMN: results[SOFT_LABEL_COLUMN].to_numpy()}
    bad = sum(problem is not None for problem in problems)
    if bad:
        columns["error"] = problems
    labelled, _ = add_columns(frame, columns)
    write_table(labelled, output)
    write_json(sidecar, {"format": FORMAT, "job": key, "teacher": info, "rows": count, "bad_rows": bad,
                         "column": SOFT_LABEL_COLUMN})
    _remove_parts(parts)
    return LabelSummary(count, scored, resumed, bad, seconds, output)


# --------------------------------------------------------------------------- the teacher


def load_teacher(model: str, config: InferenceConfig | None = None) -> Teacher:
    """A baseline folder as a :class:`BaselineTeacher`; anything else through :func:`hybrid.load_model`."""
    from .hybrid import load_model

    if is_baseline_folder(model):
        return BaselineTeacher.load(model)
    return load_model(model, config)


def is_baseline_folder(model: str | os.PathLike[str]) -> bool:
    """Whether ``model`` is a baseline output folder (or its ``model/``), not a hybrid holding one."""
    from .baselines import MODEL_FILE
    from .hybrid import is_hybrid

    folder = Path(model).expanduser()
    return not is_hybrid(folder) and any((candidate / MODEL_FILE).is_file()
                                         for candidate in (folder, folder / "model"))


class BaselineTeacher:
    """A saved bag-of-words baseline scoring reviews cleaned as its training reviews were."""

    def __init__(self, pipeline: Pipeline, name: str, cleaning: str = "basic") -> None:
        from .hybrid import check_screen

        check_screen(pipeline, name)  # a classifier of 0/1 with probabilities (not ridge-rating)
        self.pipeline, self.name, self.cleaning = pipeline, name, cleaning

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> BaselineTeacher:
        from .artifacts import read_json
        from .baselines import load_baseline
        from .hybrid import baseline_model_dir

        model_dir = baseline_model_dir(folder)
        cleaning = "basic"
        for metrics in (model_dir / "metrics.json", model_dir.parent / "metrics.json"):
            if metrics.is_file():
                cleaning = str(read_json(metrics).get("cleaning", cleaning))
                break
        return cls(load_baseline(model_dir), str(folder), cleaning)

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None,
                      progress: Progress | None = None) -> np.ndarray:
        from .data import clean_text

        cleaned = [clean_text(text, self.cleaning) for text in texts]  # type: ignore[arg-type]
        positive = self.pipeline.predict_proba(cleaned)[:, list(self.pipeline.classes_).index(1)]
        if progress is not None:
            progress(len(texts))
        return np.column_stack([1.0 - positive, positive])

    def info(self) -> dict[str, Any]:
        return {"model": self.name, "kind": "baseline", "cleaning": self.cleaning,
                "steps": [type(step).__name__ for _, step in self.pipeline.steps]}


# --------------------------------------------------------------------------- reviews and parts


def _check_output(path: Path) -> Path:
    from .tables import TABLE_SUFFIXES

    output = Path(path)
    if output.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"unsupported output type {output.suffix or '(none)'} for {output}; "
                        f"use one of {', '.join(TABLE_SUFFIXES)}")
    if output.exists() and not output.is_file():
        raise UserError(f"output path {output} is not a regular file; labels are written in parts "
                        "next to a file")
    return output


def _reviews(job: LabelJob) -> pd.DataFrame:
    """The split's rows (every column), or a seeded random subset of them in input order."""
    from .data import read_split

    frame = read_split(job.data, job.split, job.text_column)
    if job.max_samples is not None and job.max_samples < len(frame):
        rows = np.sort(np.random.default_rng(job.seed).choice(len(frame), job.max_samples, replace=False))
        frame = frame.iloc[rows]
    return frame.reset_index(drop=True)


def _job_key(job: LabelJob, frame: pd.DataFrame) -> dict[str, Any]:
    """What makes two runs the same labelling: the model, how it runs, and exactly which reviews."""
    digest = hashlib.sha256()
    for text in frame[job.text_column]:
        digest.update(str(text).encode("utf-8", "surrogatepass") + b"\0")
    model = Path(job.model).expanduser()
    return {
        "model": str(model.resolve()) if model.exists() else job.model,
        # How a transformer runs changes its numbers a little; a baseline takes no such settings.
        "inference": dataclasses.asdict(job.config) if job.config is not None and not is_baseline_folder(
            job.model) else None,
        "data": str(Path(job.data).expanduser().resolve()), "split": job.split,
        "max_samples": job.max_samples, "seed": job.seed if job.max_samples is not None else None,
        "text_column": job.text_column, "part_rows": job.part_rows, "rows": len(frame),
        "texts_sha256": digest.hexdigest(),
    }


def _read_key(manifest: Path) -> dict[str, Any] | None:
    from .artifacts import read_json

    try:
        return read_json(manifest).get("job")
    except (OSError, ValueError, AttributeError):
        return None


def _fresh_parts(parts: Path, key: dict[str, Any]) -> None:
    from .artifacts import write_json

    _remove_parts(parts)
    write_json(parts / MANIFEST, {"format": FORMAT, "job": key})


def _remove_parts(parts: Path) -> None:
    import shutil

    shutil.rmtree(parts, ignore_errors=True)


def _part_name(start: int) -> str:
    return f"part-{start:09d}.parquet"


def _read_part(parts: Path, start: int, rows: int) -> pd.DataFrame | None:
    """A finished part, or ``None`` if it is missing or unreadable (it is then scored again)."""
    import pandas as pd

    file = parts / _part_name(start)
    if not file.is_file():
        return None
    try:
        part = pd.read_parquet(file)
    except Exception:  # a part is written atomically; an unreadable one is simply redone
        return None
    return part if len(part) == rows and {SOFT_LABEL_COLUMN, "error"} <= set(part.columns) else None


def _score_part(teacher: Teacher, texts: list[object], progress: Progress | None) -> pd.DataFrame:
    """``p_positive`` and ``error`` per review; a bad row (see :func:`tables.row_problem`) is not scored."""
    import pandas as pd

    from .tables import row_problem

    problems = [row_problem(text) for text in texts]
    good = [i for i, problem in enumerate(problems) if problem is None]
    positive = np.full(len(texts), np.nan)
    if progress is not None and len(good) < len(texts):
        progress(len(texts) - len(good))
    if good:
        positive[good] = teacher.predict_proba([str(texts[i]) for i in good], None, progress)[:, 1]
    return pd.DataFrame({SOFT_LABEL_COLUMN: positive, "error": pd.Series(problems, dtype=object)})


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    if not parts:
        return pd.DataFrame({SOFT_LABEL_COLUMN: np.array([], dtype=float),
                             "error": pd.Series([], dtype=object)})
    return pd.concat(parts, ignore_index=True)
