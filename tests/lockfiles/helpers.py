"""Helpers for the lockfile tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, settings

from custody.model import LockedDependency

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lockfiles"

PROPERTY = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
"""For property tests of one reader's behaviour (``tmp_path`` is reused across examples)."""


def by_key(deps: list[LockedDependency]) -> dict[str, LockedDependency]:
    """Dependencies keyed by ``name@version`` (a test failure names the missing one)."""
    return {f"{d.name}@{d.version}": d for d in deps}


def names(deps: list[LockedDependency], **flags: bool) -> set[str]:
    """Names of the dependencies whose attributes equal ``flags`` (e.g. direct=True)."""
    return {d.name for d in deps if all(getattr(d, k) == v for k, v in flags.items())}


def copy_fixture(folder: str, dest: Path, *files: str) -> Path:
    """Copy fixture files (or the whole folder when none are named) into ``dest``."""
    src = FIXTURES / folder
    if not files:
        shutil.copytree(src, dest, dirs_exist_ok=True)
    for name in files:
        shutil.copy(src / name, dest / name)
    return dest


def line_text(path: Path, line: int | None) -> str:
    assert line is not None
    return path.read_text().splitlines()[line - 1]
