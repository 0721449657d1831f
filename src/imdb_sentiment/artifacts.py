"""Atomic artifacts: output folders and files appear complete or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import UserError


def check_output_dir(path: str | os.PathLike[str], overwrite: bool = False,
                     inputs: Iterable[object] = ()) -> Path:
    """Refuse, before any work, an output folder that cannot be used.

    That is one that holds something (unless ``overwrite``), one that is, contains or lies
    inside any of ``inputs`` (an overwrite would delete them; Hub ids and ``None`` are skipped),
    or one whose location cannot be written.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a folder")
    check_no_overlap(out, inputs)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} is not empty; pass --overwrite to replace it")
    check_writable(out)
    return out


def check_no_overlap(output: str | os.PathLike[str], inputs: Iterable[object]) -> None:
    """Refuse an output that is, contains, or lies inside an input that exists on disk."""
    out = Path(output).expanduser().resolve()
    for given in inputs:
        if given is None or not isinstance(given, str | os.PathLike):
            continue
        source = Path(given).expanduser()
        if not source.exists():
            continue  # a Hub id, or a path whose absence its own check reports
        source = source.resolve()
        if out == source:
            raise UserError(f"output {output} is the input {given}; choose another output folder")
        if out in source.parents:
            raise UserError(f"output {output} contains the input {given}; writing it would delete the input")
        if source in out.parents:
            raise UserError(f"output {output} lies inside the input {given}; choose a folder outside it")


def check_writable(path: str | os.PathLike[str]) -> None:
    """Refuse, before any work, an output whose nearest existing folder cannot be written.

    A probe folder is made and removed: permission bits alone miss read-only file systems and
    pseudo file systems such as /sys, and root passes every permission check.
    """
    target = Path(path).expanduser().absolute()
    existing = target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write {target}: {existing} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as error:
        raise UserError(f"cannot write {target}: {_reason(error)} ({existing})") from error


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename.

    On failure the temporary folder is removed and ``path`` is left as it was, so a
    half-written model or report never sits where a finished one is expected. A failure to
    write there (permissions, a full disk) is a one-line error naming the output.
    """
    final = check_output_dir(path, overwrite)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs should read like any folder
    except OSError as error:
        raise UserError(f"cannot write {final}: {_reason(error)}") from error
    try:
        yield tmp
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and _within(getattr(error, "filename", None), tmp):
            raise UserError(f"cannot write {final}: {_reason(error)}") from error
        raise
    try:
        if final.exists():
            trash = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write {final}: {_reason(error)}") from error


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _within(name: object, folder: Path) -> bool:
    return isinstance(name, str | os.PathLike) and Path(folder) in (Path(name), *Path(name).parents)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise UserError(f"cannot write {target}: {_reason(error)}") from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise UserError(f"cannot write {target}: {_reason(error)}") from error
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON atomically, with numpy scalars and arrays converted to plain Python."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_to_plain) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def folder_fingerprint(folder: Path, *extra: str) -> str:
    """A short key that changes whenever a file of ``folder`` (or one of ``extra``) changes.

    Only file names, sizes and modification times are read, so a cache hit costs milliseconds.
    """
    import hashlib

    parts = [str(folder.resolve()), *extra]
    for file in sorted(folder.iterdir()):
        if file.is_file():
            stat = file.stat()
            parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:24]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _to_plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


CACHE_ENV = "IMDB_SENTIMENT_CACHE"


def cache_root() -> Path:
    """``$IMDB_SENTIMENT_CACHE``, else ``$XDG_CACHE_HOME/imdb-sentiment``, else ``~/.cache/...``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imdb-sentiment"
