"""Helpers shared by the ``custody`` command modules: lockfile, trust-file and registry
lookup, the ledger, progress bars, ``--as-of`` and ``--format`` checks, report output."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from custody.console import emit, err
from custody.errors import InputError
from custody.model import Ecosystem

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""No registry knows of anything before this: an earlier time is a mistake."""
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)
"""Far enough from the end of ``datetime`` for every computation on a time to stay in range."""
FUTURE_SLACK = timedelta(days=1)
"""How far past "now" an ``--as-of`` may be (clocks and time zones disagree a little)."""


def parse_time(text: str, option: str = "--as-of", *, past: bool = True) -> datetime:
    """ISO 8601 date or date-time; ``Z`` accepted; no zone means UTC. ``option`` names the
    option in messages. The time must be from 1970 on and, when ``past`` (``--as-of``: how the
    world looked then), not in the future: a future ``--as-of`` would quietly make every
    release old enough for the cooldown. Raises :class:`InputError`."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise InputError(f"{option}: not an ISO 8601 time: {text!r}") from None
        value = datetime(day.year, day.month, day.day)
    utc: datetime | None
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-05:00
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        raise InputError(
            f"{option}: {text!r} is out of range: give a time from 1970-01-01 on"
            + (", not in the future" if past else " and before the year 9999")
        )
    if past and utc > datetime.now(UTC) + FUTURE_SLACK:
        raise InputError(
            f"{option}: {text!r} is in the future: {option} evaluates as the world looked at a "
            "past time (a future one would make every release old enough for the cooldown)"
        )
    return utc


def lockfile_paths(paths: list[Path] | None) -> list[Path]:
    from custody.lockfiles import find_lockfiles

    if paths:
        return paths
    found = find_lockfiles(Path.cwd())
    if not found:
        raise InputError(
            "no lockfile found in the current directory; name one, e.g. "
            "`custody check package-lock.json`"
        )
    return found


def registry_settings(
    npm_registry: str | None, pypi_index: str | None, ecosystems: Iterable[Ecosystem]
) -> Any:
    """Registry locations for just the ecosystems a run needs (a Python-only project never
    needs npm configured)."""
    from custody.registries.config import resolve_settings

    return resolve_settings(
        Path.cwd(), npm_registry, pypi_index, dict(os.environ), ecosystems=set(ecosystems)
    )


def trust_path(option: Path | None) -> Path | None:
    from custody.trust import find_trust_file

    if option is not None:
        return option
    return find_trust_file(Path.cwd())


def write_report(report: Any, fmt: str, *, verbose: bool) -> None:
    """Print a report in ``fmt`` and exit with its code (0 allowed, 1 held or blocked)."""
    if fmt == "text":
        from custody.formats import text

        emit(text.render(report, verbose=verbose, color=sys.stdout.isatty()))
    else:
        from custody.formats import FORMATS

        emit(FORMATS[fmt](report))
    raise typer.Exit(report.exit_code)


def check_format(fmt: str, allowed: tuple[str, ...] = ("text", "json")) -> None:
    if fmt not in allowed:
        raise InputError(f"--format must be one of {', '.join(allowed)}; got {fmt!r}")


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr for interactive runs; nothing in CI logs or pipes."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        f"[progress.description]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err.console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def opened_ledger(database: str | None) -> Iterator[Any]:
    from custody.ledger import open_ledger

    ledger = open_ledger(database)
    try:
        yield ledger
    finally:
        ledger.close()
