"""The lockfile reader interface: one reader per format, all behind ``LockfileReader``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from custody.model import Ecosystem, LockedDependency


class LockfileReader(Protocol):
    """Reads one lockfile format.

    ``read`` returns every locked release, or raises ``custody.errors.LockfileError`` naming the
    file and line. It must never raise anything else on bad input (hypothesis checks this)."""

    format_name: str  # "package-lock", "requirements", "poetry.lock", "uv.lock", "pylock" ...
    ecosystem: Ecosystem

    def matches(self, path: Path, text: str) -> bool:
        """Is this file in this reader's format? Decided from the name, then the content."""
        ...

    def read(self, path: Path, text: str) -> list[LockedDependency]: ...
