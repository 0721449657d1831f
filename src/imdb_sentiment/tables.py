"""Files of reviews in and out: every reader and writer of the tables the commands take and give.

Readers keep every row where it was: no data column becomes the index, a CSV blank line of a
one-column file is an (empty) review as in ``.txt``, lines end in ``\\r\\n``, ``\\n`` or a lone
``\\r``, and a line that does not fit its file is a one-line error naming that line. Writers never
overwrite an input column, write nested values as JSON, and write files atomically (device nodes
and FIFOs directly: a temporary file renamed over them would replace them).
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
TEXT_SUFFIXES = (".txt", ".text")
OUTPUT_FORMATS = tuple(suffix.removeprefix(".") for suffix in TABLE_SUFFIXES)
"""Result formats by name (``--format``); without an output file the results go to stdout."""
OUTPUT_COLUMNS = ("label", "score", "truncated", "error")
"""The columns ``predict`` adds to every table (``stars`` and ``decided_by`` where the model has them)."""
MAX_REVIEW_CHARS = 1_000_000
"""Longer reviews are marked as errors before tokenizing: a tokenizer needs about 90 bytes of memory
per character of one text (4.6 GB for a 50 MB line), and the longest IMDB review has 13,704."""

_LINE_END = re.compile(r"\r\n|\r|\n")


# --------------------------------------------------------------------------- readers


def read_reviews(path: Path, text_column: str = "text") -> pd.DataFrame:
    """A table (CSV/TSV/JSONL/JSON/parquet) or plain text, one review per line, as a frame."""
    import pandas as pd

    check_input_file(path)
    if path.suffix.lower() in TEXT_SUFFIXES:
        return pd.DataFrame({text_column: read_lines(path.read_bytes(), str(path))})
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise UserError(f"unsupported input type {path.suffix or '(none)'} for {path}; "
                        f"use one of {', '.join(TABLE_SUFFIXES + TEXT_SUFFIXES)}")
    return read_table(path, text_column, label_column=None)


def check_input_file(path: Path) -> Path:
    """Refuse, in one line, an input that is missing, a folder, or no regular file."""
    kind = _file_kind(path, "read input")
    if kind is None:
        raise UserError(f"input file not found: {path}")
    if stat.S_ISDIR(kind):
        raise UserError(f"input path {path} is a folder, not a file; give one file "
                        "(--engine ray reads folders of files)")
    if not stat.S_ISREG(kind):
        raise UserError(f"input path {path} is not a regular file")
    return path


def read_lines(raw: bytes, where: str) -> list[str]:
    """One review per line, lines ending in ``\\r\\n``, ``\\n`` or a lone ``\\r`` (old Macs).

    Blank lines are kept as rows so row numbers match line numbers.
    """
    lines = _LINE_END.split(_decode(raw, where))
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_table(path: Path, text_column: str = "text", label_column: str | None = "label") -> pd.DataFrame:
    """Read one CSV / TSV / JSONL / JSON / parquet file, checking that the columns exist."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UserError(f"unsupported file type {suffix or '(none)'} for {path}; "
                        f"use one of {', '.join(TABLE_SUFFIXES)}")
    try:
        if suffix == ".parquet":
            frame = _with_index_as_columns(pd.read_parquet(path))
        elif suffix in {".csv", ".tsv"}:
            frame = _read_delimited(path, "\t" if suffix == ".tsv" else ",")
        else:
            frame = _read_json_records(path)
    except UserError:
        raise
    except Exception as error:  # parser errors differ by format; report them in one line
        raise UserError(f"cannot read {path}: {error}") from error
    check_columns(frame, text_column, label_column, str(path))
    return frame


def check_columns(frame: pd.DataFrame, text_column: str, label_column: str | None, where: str) -> None:
    """Raise a one-line error naming the missing column(s) and the ones that exist."""
    needed = [text_column] + ([label_column] if label_column else [])
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        # Name only the options for the missing columns: predict has no --label-column.
        options = " / ".join(("--text-column" if column == text_column else "--label-column")
                             for column in missing)
        found = ", ".join(map(str, frame.columns)) or "none: the file holds no rows"
        raise UserError(f"{where} has no column {', '.join(map(repr, missing))} (columns: {found}); "
                        f"use {options}")


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{where} is not valid UTF-8 (bad byte at offset {error.start})") from error


def _with_index_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A stored index (``df.set_index("id").to_parquet()``) is data: keep it as columns."""
    import pandas as pd

    if isinstance(frame.index, pd.RangeIndex) and frame.index.name is None:
        return frame.reset_index(drop=True)
    return frame.reset_index()


def _read_delimited(path: Path, separator: str) -> pd.DataFrame:
    """CSV or TSV, every value as text; the header's first field never becomes an index.

    A blank line of a one-column file is an empty review; of a wider file, no row. A line with
    more fields than the header is an error naming it, except in a one-column file, where an
    unquoted separator is part of the review and the whole line is the text.
    """
    import csv

    import pandas as pd

    lines = io.StringIO(_decode(path.read_bytes(), str(path)), newline="")
    record_lines: list[str] = []  # the physical lines of the record being read

    def feed() -> Iterator[str]:
        for line in lines:
            record_lines.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=separator)
    name = "tab" if separator == "\t" else repr(separator)
    previous_limit = csv.field_size_limit(2**31 - 1)  # the default (128 KiB) is below a long review
    try:
        header, rows, line = None, [], 0
        for record in reader:
            start, line = line + 1, line + len(record_lines)
            if header is None:
                if record:  # blank lines before the header
                    header = _header(record, path)
            elif len(record) == len(header):
                rows.append(record)
            elif len(header) == 1:
                rows.append(["".join(record_lines).rstrip("\r\n") if record else ""])
            elif not record:
                pass
            elif len(record) > len(header):
                raise UserError(f"cannot read {path}: line {start} has {len(record)} {name}-separated "
                                f"fields, the header {len(header)}; quote values that hold a {name}")
            else:  # short lines: the missing values are missing, as in any CSV reader
                rows.append(record + [None] * (len(header) - len(record)))
            record_lines.clear()
    except csv.Error as error:
        raise UserError(f"cannot read {path}: line {line + 1}: {error}") from error
    finally:
        csv.field_size_limit(previous_limit)
    if header is None:
        raise UserError(f"cannot read {path}: the file is empty (no header line)")
    return pd.DataFrame({column: [row[i] for row in rows] for i, column in enumerate(header)},
                        columns=header)


def _header(record: list[str], path: Path) -> list[str]:
    names = [name if name else f"Unnamed: {i}" for i, name in enumerate(record)]  # as pandas names them
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"cannot read {path}: the header names the column {name!r} twice")
        seen.add(name)
    return names


def _read_json_records(path: Path) -> pd.DataFrame:
    """A JSON array of objects (``.json``) or one object per line; a value that is no object is an
    error naming its line (or its place in the array)."""
    import pandas as pd

    raw = _decode(path.read_bytes(), str(path))
    if path.suffix.lower() == ".json" and raw.lstrip().startswith("["):
        try:
            records = json.loads(raw)
        except json.JSONDecodeError as error:
            raise UserError(f"cannot read {path}: invalid JSON at line {error.lineno}, column {error.colno}: "
                            f"{error.msg}") from error
        for number, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                raise UserError(f"cannot read {path}: item {number} of the array is not a JSON object "
                                f"({_json_type(record)})")
    else:
        records = []
        for number, line in enumerate(raw.split("\n"), start=1):  # JSON text holds no raw newline
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"cannot read {path}: line {number} is not valid JSON "
                                f"({error.msg} at column {error.colno})") from error
            if not isinstance(record, dict):
                raise UserError(f"cannot read {path}: line {number} is not a JSON object "
                                f"({_json_type(record)})")
            records.append(record)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _json_type(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


# --------------------------------------------------------------------------- rows and columns


def row_problem(value: object) -> str | None:
    """Why a cell cannot be scored (``None`` when it can): missing, not text, empty or too long."""
    if isinstance(value, str):
        if len(value) > MAX_REVIEW_CHARS:
            return f"text too long ({len(value):,} characters; the limit is {MAX_REVIEW_CHARS:,})"
        return None if value.strip() else "empty text"
    if value is None or (isinstance(value, float) and np.isnan(value)) or type(value).__name__ == "NAType":
        return "missing text"
    return f"not text ({type(value).__name__})"


def free_names(wanted: Sequence[str], columns: Sequence[object]) -> list[str]:
    """Names for added columns that overwrite none of ``columns``.

    When the input already has one of ``wanted``, all of them become ``predicted_<name>`` (so
    they stay recognisable together); a name still taken gets ``_2``, ``_3``, ...
    """
    taken = {str(column) for column in columns}
    names = list(wanted) if taken.isdisjoint(wanted) else [f"predicted_{name}" for name in wanted]
    free = []
    for name in names:
        candidate, number = name, 2
        while candidate in taken:
            candidate, number = f"{name}_{number}", number + 1
        taken.add(candidate)
        free.append(candidate)
    return free


def add_columns(frame: pd.DataFrame, columns: dict[str, Sequence[object]]
                ) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` plus ``columns`` after its own, in order, under :func:`free_names`.

    Returns the new frame and each column's name in it.
    """
    names = dict(zip(columns, free_names(list(columns), frame.columns), strict=True))
    out = frame.copy()
    for key, values in columns.items():
        out[names[key]] = values
    return out, names


# --------------------------------------------------------------------------- writers


def check_output_format(output_format: str | None) -> None:
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise UserError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not {output_format!r}")


def check_output_file(path: str | os.PathLike[str], input_path: Path | None, overwrite: bool,
                      output_format: str | None = None) -> Path:
    """Refuse an unknown format, a folder, the input file itself, an existing file without
    ``overwrite``, or a place that cannot be written. ``output_format`` overrides the suffix.

    A character device or FIFO (``/dev/null``, a named pipe) is written to directly and replaces
    nothing, so it needs no ``overwrite``; block devices and sockets are refused.
    """
    from .artifacts import check_writable

    given = os.fspath(path)
    if given.endswith(("/", os.sep)):
        raise UserError(f"--output {given} ends with '/', which names a folder; give a file name")
    path = Path(given)
    check_output_format(output_format)
    kind = _file_kind(path, "write")
    if kind is not None and stat.S_ISDIR(kind):
        raise UserError(f"output path {path} is a folder; give a file name")
    if kind is not None and (stat.S_ISBLK(kind) or stat.S_ISSOCK(kind)):
        raise UserError(f"output path {path} is a {'block device' if stat.S_ISBLK(kind) else 'socket'}; "
                        "give a file name")
    if output_format is None and path.suffix.lower() not in TABLE_SUFFIXES and not _is_stream(kind):
        raise UserError(f"unsupported output type {path.suffix or '(none)'} for {path}; "
                        f"use one of {', '.join(TABLE_SUFFIXES)} or --format")
    if input_path is not None and path.resolve() == input_path.resolve():
        raise UserError("--output must differ from --input; the input file is never modified")
    if kind is not None and not stat.S_ISREG(kind):  # a character device or a FIFO
        if not os.access(path, os.W_OK):
            raise UserError(f"cannot write {path}: permission denied")
        return path
    if kind is not None and not overwrite:
        raise UserError(f"output file {path} exists; pass --overwrite to replace it")
    check_writable(path)
    return path


def _is_stream(kind: int | None) -> bool:
    """A character device or FIFO (``/dev/null``, ``/dev/stdout``, a named pipe): written in place."""
    return kind is not None and (stat.S_ISCHR(kind) or stat.S_ISFIFO(kind))


def _suffix_format(path: Path, kind: int | None) -> str:
    """The format ``path``'s suffix names; CSV, as on stdout, for a stream named without one."""
    suffix = path.suffix.lower()
    return "csv" if suffix not in TABLE_SUFFIXES and _is_stream(kind) else suffix.removeprefix(".")


def write_table(frame: pd.DataFrame, path: Path, output_format: str | None = None) -> None:
    """Write ``frame`` in ``output_format``, by default the one named by ``path``'s suffix: a file
    atomically, a character device or FIFO directly."""
    from .artifacts import atomic_write_bytes

    kind = _file_kind(path, "write")
    data = table_bytes(frame, output_format or _suffix_format(path, kind))
    if kind is None or stat.S_ISREG(kind):
        atomic_write_bytes(path, data)
        return
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from error


def write_stream(frame: pd.DataFrame, output_format: str, stream: BinaryIO | None = None) -> None:
    """Write ``frame`` in ``output_format`` to ``stream`` (stdout)."""
    out = stream if stream is not None else sys.stdout.buffer
    out.write(table_bytes(frame, output_format))
    out.flush()


def table_bytes(frame: pd.DataFrame, output_format: str) -> bytes:
    """``frame`` as ``csv``, ``tsv``, ``jsonl``, ``json`` or ``parquet`` bytes, without its index."""
    check_output_format(output_format)
    if output_format in ("csv", "tsv"):
        return _nested_as_json(frame).to_csv(index=False, sep="\t" if output_format == "tsv" else ",") \
            .encode("utf-8")
    if output_format == "jsonl":
        return frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    if output_format == "json":
        return frame.to_json(orient="records", force_ascii=False, indent=1).encode("utf-8")
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except Exception:  # pyarrow refuses columns mixing types (e.g. a number among texts)
        buffer = io.BytesIO()
        _mixed_as_text(frame).to_parquet(buffer, index=False)
    return buffer.getvalue()


def _nested_as_json(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists and objects (from JSON or parquet inputs) as JSON text, not Python's repr."""
    nested = [column for column in frame.columns
              if frame[column].dtype == object and any(_is_nested(value) for value in frame[column])]
    if not nested:
        return frame
    out = frame.copy()
    for column in nested:
        out[column] = [_as_json(value) if _is_nested(value) else value for value in frame[column]]
    return out


def _mixed_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = [None if value is None else _as_json(value) if _is_nested(value) else str(value)
                           for value in out[column]]
    return out


def _is_nested(value: object) -> bool:
    return isinstance(value, list | dict | tuple | np.ndarray)


def _as_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=_plain)


def _plain(value: object) -> object:
    if hasattr(value, "tolist"):  # numpy arrays (parquet lists) and scalars
        return value.tolist()
    return str(value)


def _file_kind(path: Path, action: str) -> int | None:
    """``st_mode`` of ``path`` (links followed), ``None`` when nothing is there; a name the system
    refuses (too long, a file used as a folder) is a one-line error."""
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        shown = str(path) if len(str(path)) <= 120 else f"{str(path)[:60]}...{str(path)[-40:]}"
        raise UserError(f"cannot {action} {shown}: {error.strerror or error}") from error
