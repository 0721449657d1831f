"""User-facing errors: one line, no traceback, exit code 2 in the CLI, 4xx in the service."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or environment, reported as one clear line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Keep messages to one line so the CLI prints exactly one line on stderr.
        super().__init__(" ".join(str(message).split()))


class HubUnreachableError(UserError):
    """A Hub id was given but the Hub cannot be reached (offline, firewall, unknown id)."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """An exception as one short line (its message's first line, else its type), for one-line errors."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
