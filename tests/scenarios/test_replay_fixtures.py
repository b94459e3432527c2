"""Noise on real histories: replay every release of the real packuments in
../shared/fixtures/npm-packuments, each judged against the releases before it a week after it
was published. Most publisher changes there are benign, so the default policy must hold few;
the same replay of a hand-over must still hold it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from custody.model import Action, Custodian, Ecosystem, PackageHistory, Release
from custody.registries.npm_packument import parse_packument
from custody.replay import replay

PACKUMENTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "npm-packuments"
FETCHED = datetime(2022, 6, 1, tzinfo=UTC)


def _histories() -> list[PackageHistory]:
    out = []
    for path in sorted(PACKUMENTS.rglob("*.json")):
        doc = orjson.loads(path.read_bytes())
        out.append(
            parse_packument(
                doc, name=doc["name"], registry="http://127.0.0.1:1/", fetched_at=FETCHED
            )
        )
    return out


@pytest.mark.skipif(not PACKUMENTS.is_dir(), reason="../shared/fixtures/npm-packuments absent")
def test_default_policy_holds_few_real_releases() -> None:
    judged = held = publisher_changes = 0
    for history in _histories():
        for j in replay(history):
            judged += 1
            rules = {f.rule for f in j.decision.findings}
            publisher_changes += "custody.new-publisher" in rules
            held += j.decision.action is not Action.ALLOW
    assert judged > 5000
    assert publisher_changes > 100  # the fixtures do change hands: the rule sees them
    assert held / judged < 0.02, f"held {held} of {judged}"


def _release(
    version: str, day: int, publisher: str, maintainers: list[str], deps: dict[str, str]
) -> Release:
    from custody.model import DeclaredDependency

    return Release(
        Ecosystem.NPM,
        "stream-kit",
        version,
        published_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day),
        publisher=Custodian.npm_user(publisher),
        maintainers=frozenset(Custodian.npm_user(m) for m in maintainers),
        dependencies=tuple(DeclaredDependency(n, s) for n, s in deps.items()),
    )


def test_replay_still_holds_a_handover() -> None:
    """A lone maintainer's package, taken over by an account added days before a patch
    release that adds a dependency: the event-stream pattern."""
    releases = [_release(f"1.0.{i}", 30 * i, "alice", ["alice"], {}) for i in range(6)]
    releases.append(
        _release("1.0.6", 30 * 5 + 3, "mallory", ["alice", "mallory"], {"flatmap-stream": "^0.1.0"})
    )
    history = PackageHistory(
        Ecosystem.NPM, "stream-kit", "http://127.0.0.1:1/", FETCHED, tuple(releases)
    )
    decisions = {j.decision.version: j.decision for j in replay(history)}
    assert all(decisions[f"1.0.{i}"].action is Action.ALLOW for i in range(1, 6))
    handover = decisions["1.0.6"]
    assert handover.action is Action.HOLD
    publisher = next(f for f in handover.findings if f.rule == "custody.new-publisher")
    assert publisher.severity.value == "critical"
    assert publisher.evidence["added_dependencies"] == ["flatmap-stream"]


def test_a_long_standing_co_maintainer_is_not_held() -> None:
    releases = [_release(f"1.0.{i}", 60 * i, "alice", ["alice", "bob"], {}) for i in range(5)]
    releases.append(_release("1.0.5", 60 * 5, "bob", ["alice", "bob"], {}))
    history = PackageHistory(
        Ecosystem.NPM, "stream-kit", "http://127.0.0.1:1/", FETCHED, tuple(releases)
    )
    decision = list(replay(history))[-1].decision
    assert decision.action is Action.ALLOW
    [finding] = [f for f in decision.findings if f.rule == "custody.new-publisher"]
    assert finding.severity.value == "low"
