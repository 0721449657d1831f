"""The ``imdb-sentiment`` command line: a thin Typer layer over the Python API.

Each concern registers its commands from its own module; heavy libraries (torch,
transformers) are imported inside the commands so ``--help`` and start-up stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import typer

from .. import __version__
from ..errors import UserError

app = typer.Typer(
    name="imdb-sentiment",
    help="Sentiment analysis of movie reviews with pretrained language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"imdb-sentiment {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """Sentiment analysis of movie reviews with pretrained language models."""


def _register_commands() -> None:
    from . import (
        adapt_cmds,
        baseline_cmds,
        data_cmds,
        evaluate_cmds,
        export_cmds,
        hybrid_cmds,
        label_cmds,
        predict_cmds,
        prompt_cmds,
        quickstart_cmds,
        report_cmds,
        runs_cmds,
        serve_cmds,
        train_cmds,
        tune_cmds,
    )

    for module in (data_cmds, baseline_cmds, evaluate_cmds, adapt_cmds, train_cmds, tune_cmds, runs_cmds,
                   report_cmds, predict_cmds, export_cmds, serve_cmds, quickstart_cmds,
                   hybrid_cmds):
        module.register(app)
    label_cmds.register(app)
    prompt_cmds.register(app)


_register_commands()


def _quiet_libraries() -> None:
    # Library chatter (load reports, tokenizer warnings) would bury our one-line messages.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # transformers resets its level on import
    logging.getLogger("transformers").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line on stderr and exit 2, Ctrl-C exits 130.

    Exit codes: 0 done, 1 an unexpected failure (with its traceback), 2 a usage error or another
    user mistake, 130 interrupted.
    """
    _quiet_libraries()
    _flags_without_type()
    try:
        code = app(args=argv, prog_name="imdb-sentiment", standalone_mode=False)
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        return error.exit_code
    except KeyboardInterrupt:  # typer versions that let the interrupt through
        code = INTERRUPTED
    except Exception as error:
        handled = _click_outcome(error)
        if handled is None:
            raise
        code = handled
    # Without standalone mode typer returns the code of an exit (Ctrl-C becomes 130) instead of
    # leaving the process: it must reach the shell.
    code = code if isinstance(code, int) else 0
    if code == INTERRUPTED:
        typer.echo("interrupted", err=True)
    return code


INTERRUPTED = 130


def _click_outcome(error: Exception) -> int | None:
    """The exit code for click's exceptions, after showing the message; ``None`` for anything else.

    typer 0.29 ships its own copy of click (``typer._click``) with its own exception classes,
    while older releases raise click's own: both are recognised, whichever typer is installed.
    """
    if isinstance(error, _exception_types("Exit")):
        return int(getattr(error, "exit_code", 0))
    if isinstance(error, _exception_types("Abort")):
        if isinstance(error.__context__, KeyboardInterrupt):  # click < 8.2 turns Ctrl-C into an abort
            return INTERRUPTED
        typer.echo("aborted", err=True)
        return 1
    if isinstance(error, _exception_types("ClickException")):
        error.show()  # click's usage message; a bare `imdb-sentiment` shows the help (exit 2)
        return int(getattr(error, "exit_code", 2))
    return None


def _exception_types(name: str) -> tuple[type, ...]:
    import importlib

    found = []
    for module_name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            kind = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            continue
        if isinstance(kind, type) and issubclass(kind, BaseException):
            found.append(kind)
    return tuple(found)


def _flags_without_type() -> None:
    """typer 0.29's rich help labels on/off flags ``<bool>``; a flag takes no value, so show none."""
    try:
        from typer.core import TyperOption
    except ImportError:
        return
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "flags_without_type", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        flag = getattr(self, "is_flag", False) and not getattr(self, "count", False)
        return None if flag else shown(self, ctx)

    display_type_rich.flags_without_type = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich


if __name__ == "__main__":
    sys.exit(main())
