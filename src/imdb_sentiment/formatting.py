"""Short text forms of values shown in reports, run names, tuning logs and model cards."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def short_model_name(model: str | Path) -> str:
    """The last part of a model path or Hub id (``outputs/fast/`` → ``fast``), else the whole of it."""
    return Path(str(model).rstrip("/")).name or str(model)


def format_value(value: Any, digits: int = 3) -> str:
    """A float to ``digits`` significant digits; anything else as ``str`` gives it."""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)
