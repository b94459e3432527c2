"""The inventory (check --record) and ``where`` with version ranges, on both ledger backends,
from real lockfiles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from custody.engine import read_lockfiles
from custody.errors import InputError
from custody.inventory import in_range, record_locked, where
from custody.ledger import Ledger
from custody.model import Ecosystem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lockfiles"
WHEN = datetime(2024, 6, 1, tzinfo=UTC)


def _record(ledger: Ledger, *paths: Path, project: str | None = None) -> None:
    locked = read_lockfiles(list(paths))
    record_locked(
        ledger, list(locked.lockfiles), list(locked.dependencies), project=project, scanned_at=WHEN
    )


def test_record_and_where_across_projects(ledger: Ledger) -> None:
    _record(
        ledger,
        FIXTURES / "npm-v3" / "package-lock.json",
        FIXTURES / "npm-workspaces-v3" / "package-lock.json",
    )
    _record(
        ledger,
        FIXTURES / "requirements" / "requirements.txt",
        FIXTURES / "uv" / "uv.lock",
        project="py",
    )
    found = where(ledger, Ecosystem.NPM, "event-stream")
    assert {Path(e.project).name for e in found} == {"npm-v3", "npm-workspaces-v3"}
    assert all(Path(e.lockfile).is_absolute() for e in found)
    through = where(ledger, Ecosystem.NPM, "through", "<2.3.8")
    assert [(e.version, e.direct) for e in through] == [("2.2.7", True)]
    nested = where(ledger, Ecosystem.NPM, "through", "2.3.8")
    assert nested and all(("event-stream", "through") in e.paths for e in nested)

    requests = where(ledger, Ecosystem.PYPI, "Requests")  # PEP 503 normalised
    assert {Path(e.lockfile).name for e in requests} == {"requirements.txt", "uv.lock"}
    assert {e.project for e in requests} == {"py"}
    version = requests[0].version
    assert where(ledger, Ecosystem.PYPI, "requests", f">={version}")
    assert not where(ledger, Ecosystem.PYPI, "requests", f"<{version}")
    assert where(ledger, Ecosystem.PYPI, "requests", version)  # a bare version: exactly it

    # a second scan replaces what the lockfile locked before
    _record(
        ledger,
        FIXTURES / "npm-v3" / "package-lock.json",
        project=str((FIXTURES / "npm-v3").resolve()),
    )
    assert len(where(ledger, Ecosystem.NPM, "event-stream")) == 2
    assert len(ledger.inventory()) > 20


def test_ranges() -> None:
    assert in_range(Ecosystem.NPM, "1.0.6", "^1.0.0")
    assert in_range(Ecosystem.NPM, "1.0.6", ">=1.0.6 <2")
    assert not in_range(Ecosystem.NPM, "1.0.5", "1.0.6")
    assert in_range(Ecosystem.NPM, "2.0.0-beta.1", ">=2.0.0-alpha")
    assert in_range(Ecosystem.PYPI, "2.32.0", ">=2.31,<2.33")
    assert in_range(Ecosystem.PYPI, "1.0", "1.0.0")
    assert in_range(Ecosystem.PYPI, "3.0rc1", ">=3.0a1")
    assert not in_range(Ecosystem.PYPI, "not-a-version", ">=1")


def test_bad_ranges_are_usage_errors(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="not an npm version range"):
        where(ledger, Ecosystem.NPM, "x", "what is this?")
    with pytest.raises(InputError, match="not a PEP 440 version specifier"):
        where(ledger, Ecosystem.PYPI, "x", ">=1,,<<2")
