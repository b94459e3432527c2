"""Which release rollback goes back to, per project trust file, and what it refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from custody.ledger import InventoryEntry
from custody.model import Custodian, Ecosystem, PackageHistory, Release
from custody.rollback import apply, last_trusted, plan
from custody.trust import parse_trust_file

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TRUST = """
[[trusted."npm:kit"]]
custodian = "npm:user/alice"

[[approved."npm:kit"]]
version = "2.0.0-rc.1"
by = "r@example.com"
reason = "checked"
"""


def _r(version: str, day: int, who: str, **kw: object) -> Release:
    return Release(
        Ecosystem.NPM,
        "kit",
        version,
        published_at=T0 + timedelta(days=day),
        publisher=Custodian.npm_user(who),
        **kw,  # type: ignore[arg-type]
    )


HISTORY = PackageHistory(
    Ecosystem.NPM,
    "kit",
    "http://r/",
    T0 + timedelta(days=100),
    (
        _r("1.0.0", 1, "alice"),
        _r("1.1.0", 2, "alice"),
        _r("1.2.0", 3, "alice", deprecated="broken"),
        _r("1.2.1", 4, "mallory"),
        _r("2.0.0-rc.1", 5, "mallory"),
    ),
)


def _trust(tmp_path: Path, text: str = TRUST) -> Path:
    path = tmp_path / "custody.toml"
    path.write_text(text)
    return path


def test_last_trusted_skips_deprecated_and_prefers_final_releases(tmp_path: Path) -> None:
    trust = parse_trust_file(TRUST, _trust(tmp_path))
    target = last_trusted(HISTORY, trust)
    assert target is not None and target.version == "1.1.0"
    assert target.why.startswith("published by npm:user/alice")
    only_approved = parse_trust_file(TRUST.replace("alice", "nobody"), _trust(tmp_path))
    target = last_trusted(HISTORY, only_approved)
    assert (
        target is not None
        and target.version == "2.0.0-rc.1"
        and target.why == "approved by r@example.com"
    )


def _entry(project: Path, version: str) -> InventoryEntry:
    return InventoryEntry(
        project=project.name,
        lockfile=str(project / "package-lock.json"),
        ecosystem=Ecosystem.NPM,
        name="kit",
        version=version,
        direct=True,
        dev=False,
        optional=False,
        paths=(("kit",),),
        scanned_at=T0,
    )


def test_plan_per_project(tmp_path: Path) -> None:
    good, bad, lost, other = (tmp_path / n for n in ("good", "bad", "lost", "other"))
    for p in (good, bad, lost):
        p.mkdir()
        (p / "package.json").write_text('{"name": "x", "dependencies": {"kit": "^1.0.0"}}\n')
        _trust(p)
    (lost / "custody.toml").write_text('[[trusted."npm:kit"]]\ncustodian = "npm:user/nobody"\n')
    other.mkdir()
    (other / "poetry.lock").write_text("")
    _trust(other)
    entries = [_entry(good, "1.1.0"), _entry(bad, "1.2.1"), _entry(lost, "1.2.1")]
    entries.append(
        InventoryEntry(
            "other",
            str(other / "poetry.lock"),
            Ecosystem.NPM,
            "kit",
            "1.2.1",
            True,
            False,
            False,
            (),
            T0,
        )
    )
    changes, notes = plan(Ecosystem.NPM, "kit", entries, HISTORY)
    assert notes == [f"good: {good / 'package-lock.json'} already locks a trusted kit@1.1.0"]
    by = {c.project: c for c in changes}
    assert by["bad"].target is not None and by["bad"].target.version == "1.1.0"
    assert '"kit": "1.1.0"' in by["bad"].diff()
    assert by["lost"].problem is not None and "no release of kit" in by["lost"].problem
    assert by["other"].problem is not None and "cannot edit this format" in by["other"].problem

    outcome = apply(by["bad"], Ecosystem.NPM, "kit", relock=False)
    assert outcome.written and outcome.confirmed is None
    assert "now run: cd" in outcome.message and "npm install --package-lock-only" in outcome.message
    assert json.loads((bad / "package.json").read_text())["overrides"] == {"kit": "1.1.0"}

    calls: list[tuple[str, ...]] = []

    def failing(argv: object, cwd: Path) -> tuple[int, str]:
        calls.append(tuple(argv))  # type: ignore[arg-type]
        return 1, "npm ERR! boom"

    failed = apply(by["bad"], Ecosystem.NPM, "kit", relock=True, runner=failing)
    assert calls and failed.confirmed is None and "failed (exit 1): npm ERR! boom" in failed.message

    forced, _ = plan(Ecosystem.NPM, "kit", [_entry(bad, "1.2.1")], HISTORY, to_version="1.0.0")
    assert forced[0].target is not None and forced[0].target.version == "1.0.0"
