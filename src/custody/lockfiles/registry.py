"""The list of known readers and format detection: by file name first, then by content.

A new format (yarn, pnpm, bun ...) is one module with a ``DetectingReader`` and one
``register_reader`` call (or one line in ``READERS``)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from custody.errors import LockfileError
from custody.lockfiles._common import LockfileReport, fail
from custody.lockfiles.base import LockfileReader
from custody.lockfiles.npm import PackageLockReader
from custody.lockfiles.poetry import PoetryLockReader
from custody.lockfiles.pylock import PylockReader
from custody.lockfiles.requirements import RequirementsReader
from custody.lockfiles.uv import UvLockReader


class DetectingReader(LockfileReader, Protocol):
    """A ``LockfileReader`` that can say separately whether a name or a content is its format,
    and report the entries it skips."""

    def matches_name(self, path: Path) -> bool: ...

    def matches_content(self, text: str) -> bool: ...

    def read_report(self, path: Path, text: str) -> LockfileReport: ...


READERS: list[DetectingReader] = [
    PackageLockReader(),
    PylockReader(),
    PoetryLockReader(),
    UvLockReader(),
]
"""Readers in the order content detection tries them."""

FALLBACK: DetectingReader = RequirementsReader()
"""Plain text lines are a requirements file: tried by content after every other reader."""

UNSUPPORTED = {
    "yarn.lock": "yarn",
    "pnpm-lock.yaml": "pnpm",
    "bun.lock": "bun",
    "bun.lockb": "bun",
    "Pipfile.lock": "Pipenv",
    "pdm.lock": "PDM",
}
"""Lockfiles known by name that no reader handles yet: a clear error instead of a guess."""


def register_reader(reader: DetectingReader) -> None:
    """Add a reader; it is tried before the requirements fallback."""
    READERS.append(reader)


def all_readers() -> list[DetectingReader]:
    return [*READERS, FALLBACK]


def detect_reader(path: Path, text: str) -> DetectingReader:
    """The reader for ``path``: a known file name wins, then the content decides."""
    for reader in all_readers():
        if reader.matches_name(path):
            return reader
    if path.name in UNSUPPORTED:
        raise unsupported(path)
    for reader in all_readers():
        if reader.matches_content(text):
            return reader
    raise fail(
        path,
        "unknown lockfile format (known: package-lock.json, npm-shrinkwrap.json, "
        "requirements.txt, poetry.lock, uv.lock, pylock.toml)",
    )


def unsupported(path: Path) -> LockfileError:
    """The error for a lockfile of a known format that no reader handles (see ``fail``)."""
    return fail(path, f"{UNSUPPORTED[path.name]} lockfiles are not supported yet")


def is_lockfile_name(path: Path) -> bool:
    return any(reader.matches_name(path) for reader in all_readers())
