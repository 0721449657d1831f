"""The ``imdb-sentiment`` command line: a thin Typer layer over the Python API.

Each concern registers its commands from its own module; heavy libraries (torch,
transformers) are imported inside the commands so ``--help`` and start-up stay fast.
"""

from __future__ import annotations

import logging
import os
import sys

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
        baseline_cmds,
        data_cmds,
        evaluate_cmds,
        export_cmds,
        hybrid_cmds,
        predict_cmds,
        quickstart_cmds,
        report_cmds,
        runs_cmds,
        serve_cmds,
        train_cmds,
        tune_cmds,
    )

    for module in (data_cmds, baseline_cmds, evaluate_cmds, train_cmds, tune_cmds, runs_cmds, report_cmds,
                   predict_cmds, export_cmds, serve_cmds, quickstart_cmds, hybrid_cmds):
        module.register(app)


_register_commands()


def _quiet_libraries() -> None:
    # Library chatter (load reports, tokenizer warnings) would bury our one-line messages.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # transformers resets its level on import
    logging.getLogger("transformers").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user mistakes into one line on stderr and exit 2."""
    _quiet_libraries()
    try:
        app(args=argv, standalone_mode=False)
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        return error.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as done:
        return done.exit_code
    except Exception as error:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(error, click.exceptions.Abort):
            typer.echo("aborted", err=True)
            return 1
        if isinstance(error, click.ClickException):
            error.show()
            return error.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
