"""Lockfile readers: which releases a project has locked, and where each one comes from.

``read_lockfile`` is the usual entry point. ``read_lockfile_report`` also returns the entries
that are not registry releases (git, URLs, local folders, workspace members, bundled npm
packages): a caller that gates releases should show those rather than pass them silently.
Every bad input raises ``custody.errors.LockfileError`` naming the file and, where known, the line.
"""

from __future__ import annotations

from pathlib import Path

from custody.lockfiles._common import LockfileReport, SkippedEntry, fail, read_text
from custody.lockfiles.base import LockfileReader
from custody.lockfiles.registry import (
    READERS,
    UNSUPPORTED,
    DetectingReader,
    detect_reader,
    is_lockfile_name,
    register_reader,
    unsupported,
)
from custody.model import LockedDependency

__all__ = [
    "READERS",
    "UNSUPPORTED",
    "DetectingReader",
    "LockfileReader",
    "LockfileReport",
    "SkippedEntry",
    "detect_reader",
    "find_lockfiles",
    "read_lockfile",
    "read_lockfile_report",
    "register_reader",
]


def read_lockfile(path: Path) -> list[LockedDependency]:
    """Every registry release locked in ``path``, whatever its format."""
    return list(read_lockfile_report(path).dependencies)


def read_lockfile_report(path: Path) -> LockfileReport:
    """Registry releases and skipped (non-registry) entries of the lockfile at ``path``."""
    path = Path(path)
    text = read_text(path)
    return detect_reader(path, text).read_report(path, text)


def find_lockfiles(directory: Path) -> list[Path]:
    """The lockfiles directly in ``directory``, by their known names, sorted (not recursive).

    When there are none but a lockfile no reader handles yet is there (``yarn.lock``), that is
    the error, rather than "no lockfile found"."""
    directory = Path(directory)
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise fail(directory, f"cannot list the directory: {exc.strerror or exc}") from None
    found = [
        entry
        for entry in entries
        if not entry.name.startswith(".") and is_lockfile_name(entry) and entry.is_file()
    ]
    if not found:
        for entry in entries:
            if entry.name in UNSUPPORTED and entry.is_file():
                raise unsupported(entry)
    return found
