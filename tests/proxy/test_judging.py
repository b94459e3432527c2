"""Judging every version of a package for the firewall: trust on first use, the trust file, the
firewall's own reviews. Pure: synthetic histories, no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import orjson
import pytest

from custody.model import Action, Custodian, Ecosystem, PackageHistory, Release
from custody.policy import DEFAULT_POLICY
from custody.proxy import judging
from custody.proxy.judging import (
    ReviewNote,
    held_rows,
    judge_package,
    next_change,
    verdicts,
    version_key,
)
from custody.registries.npm_packument import parse_packument
from custody.trust import EMPTY_TRUST, parse_trust_file

NOW = datetime(2025, 6, 1, tzinfo=UTC)
NO_COOLDOWN = parse_trust_file('[policy]\ncooldown = "0"\n')


def _release(version: str, publisher: str, when: datetime, maintainers: list[str]) -> Release:
    return Release(
        Ecosystem.NPM,
        "kit",
        version,
        published_at=when,
        publisher=Custodian.npm_user(publisher),
        maintainers=frozenset(Custodian.npm_user(m) for m in maintainers),
    )


def _history(*releases: Release) -> PackageHistory:
    return PackageHistory(Ecosystem.NPM, "kit", "http://registry/", NOW, releases=releases)


def _day(n: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)


def _actions(history: PackageHistory, **kw: object) -> dict[str, Action]:
    judged = judge_package(history, kw.pop("trust", EMPTY_TRUST), now=NOW, **kw)  # type: ignore[arg-type]
    return {v: d.action for v, d in judged.decisions.items()}


HANDOVER = _history(
    _release("1.0.0", "alice", _day(0), ["alice"]),
    _release("1.0.1", "alice", _day(30), ["alice"]),
    _release("1.0.2", "mallory", _day(60), ["alice", "mallory"]),
    _release("1.0.3", "mallory", _day(90), ["alice", "mallory"]),
)


def test_first_use_trusts_the_package_as_found_and_holds_only_the_handover() -> None:
    actions = _actions(HANDOVER, unknown_packages="first-use", first_seen=NOW)
    assert actions == {
        "1.0.0": Action.ALLOW,
        "1.0.1": Action.ALLOW,
        "1.0.2": Action.HOLD,  # mallory's first release, days after being listed
        "1.0.3": Action.ALLOW,  # the past: judged against its own earlier releases
    }


def test_after_first_use_a_held_release_lends_no_trust() -> None:
    actions = _actions(HANDOVER, unknown_packages="first-use", first_seen=_day(45))
    assert actions["1.0.2"] is Action.HOLD
    assert actions["1.0.3"] is Action.HOLD  # mallory is still not trusted


def test_a_brand_new_package_installs_under_first_use() -> None:
    history = _history(_release("0.1.0", "zoe", _day(100), ["zoe"]))
    assert _actions(history, unknown_packages="first-use", first_seen=NOW) == {
        "0.1.0": Action.ALLOW
    }


def test_policy_mode_judges_unknown_packages_as_custody_check_does() -> None:
    actions = _actions(HANDOVER, unknown_packages="policy", first_seen=NOW)
    assert set(actions.values()) == {Action.HOLD}  # deps.new-package under review


def test_a_known_package_follows_the_trust_file() -> None:
    trust = parse_trust_file('[[trusted."npm:kit"]]\ncustodian = "npm:user/alice"\n')
    actions = _actions(HANDOVER, unknown_packages="first-use", trust=trust, first_seen=NOW)
    assert actions["1.0.1"] is Action.ALLOW
    assert actions["1.0.2"] is Action.HOLD and actions["1.0.3"] is Action.HOLD


def test_cooldown_sets_when_to_judge_again() -> None:
    fresh = _history(
        _release("1.0.0", "alice", _day(0), ["alice"]),
        _release("1.0.1", "alice", NOW - timedelta(hours=2), ["alice"]),
    )
    judged = judge_package(fresh, EMPTY_TRUST, unknown_packages="first-use", now=NOW)
    assert judged.decisions["1.0.1"].action is Action.HOLD
    assert judged.changes_at == NOW - timedelta(hours=2) + DEFAULT_POLICY.cooldown
    assert next_change(judged, timedelta(hours=1)) == NOW + timedelta(hours=1)
    assert next_change(judged, timedelta(days=3)) == judged.changes_at
    [(version, action, rules, summary)] = held_rows(judged)
    assert (version, action, rules) == ("1.0.1", Action.HOLD, ("release.too-new",))
    assert "cooldown" in summary


def test_a_failing_judge_holds_rather_than_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(judging, "judge_release", broken)
    judged = judge_package(HANDOVER, EMPTY_TRUST, unknown_packages="first-use", now=NOW)
    assert {d.action for d in judged.decisions.values()} == {Action.HOLD}
    assert judged.decisions["1.0.0"].findings[0].rule == judging.ERROR_RULE


def test_reviews_approve_held_deny_any_and_never_unblock() -> None:
    judged = judge_package(HANDOVER, NO_COOLDOWN, unknown_packages="first-use", now=NOW)
    note = ReviewNote("approve", "r@example.com", "read the diff", NOW)
    deny = ReviewNote("deny", "r@example.com", "bad build", NOW)
    out = verdicts(judged, {"1.0.2": note, "1.0.1": deny})
    assert out["1.0.2"].action is Action.ALLOW and out["1.0.2"].approved_by == "r@example.com"
    assert out["1.0.1"].action is Action.BLOCK and out["1.0.1"].rules[0] == judging.DENIED_RULE
    assert out["1.0.0"].action is Action.ALLOW and out["1.0.0"].reviewed is None


def test_pypi_versions_compare_by_pep_440() -> None:
    assert version_key(Ecosystem.PYPI, "1.0") == version_key(Ecosystem.PYPI, "1.0.0")
    assert version_key(Ecosystem.NPM, "1.0") != version_key(Ecosystem.NPM, "1.0.0")


FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "npm-packuments"


def test_first_use_stays_quiet_on_real_histories() -> None:
    """Judged as a first sight today, real packages' histories are mostly allowed: only
    hand-over releases themselves are held (about 1.7% of releases), and the latest version
    of very few packages."""
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures/npm-packuments is not available")
    releases = held = latest_held = 0
    for path in sorted(FIXTURES.rglob("*.json")):
        doc = orjson.loads(path.read_bytes())
        if not isinstance(doc, dict) or not isinstance(doc.get("versions"), dict):
            continue
        history = parse_packument(
            doc, name=doc.get("name", path.stem), registry="x", fetched_at=NOW
        )
        judged = judge_package(history, EMPTY_TRUST, unknown_packages="first-use", now=NOW)
        withheld = {v for v, d in judged.decisions.items() if d.action is not Action.ALLOW}
        releases += len(judged.decisions)
        held += len(withheld)
        latest_held += doc.get("dist-tags", {}).get("latest") in withheld
    assert releases > 5000
    assert held / releases < 0.025
    assert latest_held <= 6


def test_old_decisions_are_reused_when_their_inputs_did_not_change() -> None:
    trust = parse_trust_file('[[trusted."npm:kit"]]\ncustodian = "npm:user/alice"\n')
    first = judge_package(HANDOVER, trust, unknown_packages="first-use", now=NOW, trust_version="a")
    newer = _release("1.0.4", "alice", NOW - timedelta(days=1), ["alice", "mallory"])
    grown = msgspec.structs.replace(HANDOVER, releases=(*HANDOVER.releases, newer))
    again = judge_package(
        grown, trust, unknown_packages="first-use", now=NOW, trust_version="a", previous=first
    )
    assert all(again.decisions[v] is first.decisions[v] for v in first.decisions)
    assert again.decisions["1.0.4"].action is Action.HOLD  # too new: judged, not reused
    other = judge_package(
        grown, trust, unknown_packages="first-use", now=NOW, trust_version="b", previous=first
    )
    assert not any(other.decisions[v] is first.decisions[v] for v in first.decisions)
