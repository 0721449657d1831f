"""Score tables of reviews: a frame or a file in, the same rows out with the results added.

Every input row comes back, in order, with its input columns; label, score, (stars,) truncated,
error (and a hybrid's decided_by) are added under names no input column has. A bad row (see
:func:`tables.row_problem`) gets only its error and is never tokenized. ``predict --input``, the
Ray actors and the Python API all score here, so their outputs match.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from .classifier import Classifier, Progress, to_predictions
from .tables import OUTPUT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class FileSummary:
    rows: int
    scored: int
    bad_rows: int
    seconds: float
    columns: list[str]
    """Names of the label, score, truncated and error columns (see ``tables.free_names``)."""
    added: list[str] | None = None
    """Every added column, in order (``stars`` and ``decided_by`` too, where the model has them)."""

    @property
    def renamed(self) -> bool:
        """Whether the input had columns named like the results, so the results took other names."""
        return not set(self.added or self.columns) <= {*OUTPUT_COLUMNS, "stars", "decided_by"}


@dataclass(frozen=True)
class FileOptions:
    """Which file :func:`predict_file` scores, and where and how it writes the results."""

    input_path: Path
    output_path: Path | None = None
    """Written atomically; ``None``: the results go to a stream (stdout)."""
    text_column: str = "text"
    output_format: str | None = None
    """csv, tsv, jsonl, json or parquet; ``None``: the output suffix, or csv on a stream."""
    overwrite: bool = False
    """Replace an existing output file."""


def predict_frame(classifier: Classifier, frame: pd.DataFrame, text_column: str = "text", *,
                  batch_size: int | None = None, progress: Progress | None = None
                  ) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` plus label, score, (stars,) truncated, error (and decided_by) columns; bad rows
    (see :func:`tables.row_problem`) get only an error and are never tokenized.

    Returns the new frame and the names of its label, score, truncated and error columns: an
    input column is never overwritten (see :func:`tables.free_names`).
    """
    from .tables import add_columns, row_problem

    problems = [row_problem(value) for value in frame[text_column].tolist()]
    good = [i for i, problem in enumerate(problems) if problem is None]
    if progress is not None and len(good) < len(frame):
        progress(len(frame) - len(good))  # bad rows are done at once
    details = classifier.predict_details([frame[text_column].iat[i] for i in good], batch_size, progress)
    labels: list[str | None] = [None] * len(frame)
    scores = np.full(len(frame), np.nan)
    truncated: list[bool | None] = [None] * len(frame)
    for slot, (i, item) in enumerate(zip(good, to_predictions(details.probabilities), strict=True)):
        labels[i], scores[i], truncated[i] = item["label"], item["score"], bool(details.truncated[slot])
    columns: dict[str, Sequence[object]] = {"label": labels, "score": scores}
    if details.stars is not None:  # a rating model: stars after the score
        stars = np.full(len(frame), np.nan)
        stars[good] = np.round(details.stars, 2)
        columns["stars"] = stars
    columns.update(truncated=truncated, error=problems)
    if details.decided_by is not None:  # a hybrid: which part decided each review
        decided: list[str | None] = [None] * len(frame)
        for slot, i in enumerate(good):
            decided[i] = str(details.decided_by[slot])
        columns["decided_by"] = decided
    out, names = add_columns(frame, columns)
    return out, [names[name] for name in OUTPUT_COLUMNS]


def predict_file(classifier: Classifier, files: FileOptions, *, batch_size: int | None = None,
                 progress: Progress | None = None, on_rows: Progress | None = None,
                 reviews: pd.DataFrame | None = None, stream: BinaryIO | None = None) -> FileSummary:
    """Score every row of ``files.input_path`` into ``files.output_path`` (atomically); bad rows
    are marked.

    Without an output path the results go to ``stream`` (stdout). ``reviews`` is the file already
    read by :func:`tables.read_reviews`, if it was. ``on_rows`` hears the row count once the file
    is read (e.g. to size a progress bar).
    """
    from .tables import check_output_file, check_output_format, read_reviews, write_stream, write_table

    output_path, output_format = files.output_path, files.output_format
    if output_path is not None:
        check_output_file(output_path, files.input_path, files.overwrite, output_format)
    else:
        check_output_format(output_format)
    frame = reviews if reviews is not None else read_reviews(files.input_path, files.text_column)
    if on_rows is not None:
        on_rows(len(frame))
    started = time.perf_counter()
    scored, names = predict_frame(classifier, frame, files.text_column, batch_size=batch_size,
                                  progress=progress)
    seconds = time.perf_counter() - started
    if output_path is not None:
        write_table(scored, Path(output_path), output_format)
    else:
        write_stream(scored, output_format or "csv", stream)
    bad = int(scored[names[3]].notna().sum())
    added = [str(name) for name in scored.columns[len(frame.columns):]]
    return FileSummary(len(frame), len(frame) - bad, bad, seconds, names, added)
