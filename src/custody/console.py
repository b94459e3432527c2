"""Where the command line writes: ``emit`` for reports on stdout, and the consoles for
messages, made on first use.

Rich costs about 40 ms to import: a ``check --format json`` that has nothing to say on stderr,
the common case in CI, never needs it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from custody.fdio import write_all

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A ``rich.console.Console`` made with ``options`` the first time it is used."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self.console.print(*objects, **options)


def emit(text: str) -> None:
    """Write a report (or any output a program reads) to stdout whole.

    Through the descriptor with ``fdio.write_all``: ``sys.stdout`` can silently drop part of a
    large write into a full pipe when the process is stopped and continued (see ``fdio``).
    Falls back to ``sys.stdout.write`` where stdout has no descriptor (captured in tests)."""
    stream = sys.stdout
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        stream.write(text)
        stream.flush()
        return
    stream.flush()  # what was printed before goes first
    write_all(fd, text.encode(stream.encoding or "utf-8", stream.errors or "strict"))


err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)
"""Messages, warnings and errors: stderr, so that stdout carries only the report."""


def escape(text: str) -> str:
    """``rich.markup.escape``: ``text`` printed as it is, not read as markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
