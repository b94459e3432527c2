"""The ``custody`` command line, a thin layer over engine, trust and formats: the root command,
the entry point (``main``) and the registration of the commands, which live in the ``cli_*``
modules (helpers they share: cli_common; options: cli_options)."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from custody import (
    __version__,
    cli_baseline,
    cli_diff,
    cli_fragile,
    cli_recovery,
    cli_verify,
    cli_watch,
)
from custody.cli_db import db_app
from custody.console import err, escape
from custody.errors import CustodyError
from custody.proxy.cli import proxy_app

app = typer.Typer(
    name="custody",
    help=(
        "Keep track of who holds the keys to every dependency, and hold a change of hands "
        "until a person approves it.\n\n"
        "Exit codes: 0 nothing held or blocked; 1 something held or blocked; "
        "2 bad usage or unreadable input; 3 a registry could not be reached (never a pass); "
        "70 a bug in Custody (never a pass)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# The commands in the order `custody --help` lists them; the command groups come after them.
COMMANDS: tuple[Callable[..., None], ...] = (
    cli_baseline.init,
    cli_baseline.check,
    cli_baseline.history,
    cli_baseline.approve,
    cli_baseline.trust,
    cli_baseline.demo,
    cli_fragile.fragile,
    cli_recovery.where,
    cli_recovery.rollback,
    cli_watch.watch,
    cli_diff.diff,
    cli_verify.verify,
)
for _command in COMMANDS:
    app.command()(_command)
app.add_typer(db_app)  # `custody db`: the ledger's offline databases
app.add_typer(proxy_app)  # `custody proxy`: the registry firewall


def version_callback(value: bool) -> None:
    if value:
        print(f"custody {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = None,
) -> None:
    pass


def main() -> None:
    # A check holds about a million small objects (histories of every dependency) for the
    # length of one run: the cyclic collector would rescan them over and over for nothing.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        code = app(standalone_mode=False)  # returns the exit code of typer.Exit
    except CustodyError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        _exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # usage errors and the like
        usage, aborted = _click_exceptions()
        if isinstance(exc, usage):
            exc.show()  # "Usage: ... Error: No such option: --bogus"
            sys.exit(2)
        if isinstance(exc, aborted):
            sys.exit(130)
        if isinstance(exc, BrokenPipeError):  # the reader of stdout went away (`| head`)
            _exit(EXIT_BROKEN_PIPE)
        _internal_error(exc)
    _exit(code if isinstance(code, int) else 0)


EXIT_INTERNAL_ERROR = 70
"""EX_SOFTWARE: an exception Custody did not expect, a bug. Never 1 ("held"), which a crash
would otherwise exit with, so that CI never mistakes a crash for a verdict (nor for a pass)."""
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a writer whose reader went away."""


def _internal_error(exc: BaseException) -> NoReturn:
    """Report an unexpected exception: its traceback, and a request to report it. Plain
    ``sys.stderr``, not Rich: the message may hold anything, and Rich may be what failed."""
    import traceback

    text = "".join(traceback.format_exception(exc))
    with contextlib.suppress(Exception):
        sys.stderr.write(
            f"{text}internal error: {type(exc).__name__}: {exc}\n"
            f"This is a bug in custody {__version__}, not a verdict on your dependencies. "
            "Please report it with the output above.\n"
        )
        sys.stderr.flush()
    _exit(EXIT_INTERNAL_ERROR)


def _exit(code: int) -> NoReturn:
    """End the process once a command has finished: flush what it wrote, then ``os._exit``.
    Every resource is closed by then (ledger, clients, worker processes, temporary files, all
    context managers); what is left is tearing down the interpreter and freeing, one by one,
    the million objects a check of a thousand packages holds, 0.1 s that nobody waits for."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # the reader went away, or the stream is closed: nothing more to deliver
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)


def _click_exceptions() -> tuple[type[Any], tuple[type[BaseException], ...]]:
    """The class of usage errors, and the abort signals, of the click Typer parses with: a
    copy bundled as ``typer._click`` in recent Typers (its errors are not ``click``'s: catching
    only those let a mistyped option end in a traceback and exit code 1), else ``click``."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # an older Typer, on click itself
        import click

        return click.ClickException, (click.Abort, typer.Abort)
    return ClickException, (typer.Abort,)
