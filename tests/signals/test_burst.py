"""custody.publish-burst: one publisher releasing many packages within minutes."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from custody.judge import judge_release
from custody.model import Action, Custodian, Ecosystem, Provenance, PublishEvent, Severity
from custody.signals.burst import BURST_PACKAGES
from custody.trust import parse_trust_file
from tests.engine.builders import T0, history, locked, release

TRUST = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')
AT = T0 + timedelta(days=100)  # when pkg 1.0.1 is published
H = history(
    release("1.0.0", 0, maintainers=["alice"]), release("1.0.1", 100, maintainers=["alice"])
)
NOW = AT + timedelta(days=10)


def _event(
    package: str, minutes: float, who: str = "npm:user/alice", day: float = 0
) -> PublishEvent:
    return PublishEvent(
        Ecosystem.NPM, package, "9.9.9", who, AT + timedelta(days=day, minutes=minutes)
    )


def _judge(events, h=H, now=NOW):
    return judge_release(locked("1.0.1"), h, TRUST, now=now, publishes=events).decision


def _burst(decision):
    return next((f for f in decision.findings if f.rule == "custody.publish-burst"), None)


def test_five_packages_within_an_hour_are_a_burst() -> None:
    events = [_event(f"other-{i}", 3 * i) for i in range(BURST_PACKAGES - 1)]
    decision = _judge(events)
    finding = _burst(decision)
    assert finding is not None and finding.severity is Severity.HIGH
    assert decision.action is Action.HOLD
    assert finding.evidence["count"] == BURST_PACKAGES
    assert finding.evidence["window_minutes"] == 60
    assert finding.evidence["threshold"] == BURST_PACKAGES
    listed = {p["package"] for p in finding.evidence["packages"]}
    assert listed == {"pkg", *(f"other-{i}" for i in range(BURST_PACKAGES - 1))}
    assert finding.evidence["earlier_bursts"] == []


def test_fewer_packages_or_a_wider_spread_are_not_a_burst() -> None:
    assert _burst(_judge([_event(f"o-{i}", i) for i in range(BURST_PACKAGES - 2)])) is None
    spread = [_event(f"o-{i}", 25 * (i + 1)) for i in range(BURST_PACKAGES)]
    # before and after, but never five packages inside one 60-minute window with pkg
    assert _burst(_judge(spread)) is None
    # many versions of one package are one package
    assert _burst(_judge([_event("same", i) for i in range(10)])) is None


def test_other_publishers_and_later_events_do_not_count() -> None:
    others = [_event(f"o-{i}", i, who="npm:user/bob") for i in range(10)]
    assert _burst(_judge(others)) is None
    later = [_event(f"o-{i}", 31 + i) for i in range(10)]  # after --as-of
    now = AT + timedelta(minutes=30)
    assert _burst(_judge(later, now=now)) is None
    assert _burst(_judge(later)) is not None


def test_a_habitual_release_train_is_info() -> None:
    """A monorepo that always publishes its packages together has done it before."""
    train = [_event(f"pkg-{i}", i) for i in range(6)]
    before = [_event(f"pkg-{i}", i, day=-30) for i in range(6)]
    finding = _burst(_judge(train + before))
    assert finding is not None and finding.severity is Severity.INFO
    assert len(finding.evidence["earlier_bursts"]) == 1
    assert _judge(train + before).action is Action.ALLOW


def test_a_burst_that_adds_install_scripts_is_critical() -> None:
    worm = history(
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.0.1", 100, maintainers=["alice"], scripts={"postinstall": "node bundle.js"}),
    )
    events = [_event(f"o-{i}", i) for i in range(8)]
    finding = _burst(_judge(events, worm))
    assert finding is not None and finding.severity is Severity.CRITICAL
    assert finding.evidence["added_install_scripts"] == ["postinstall"]


def test_trusted_publishing_identities_are_not_accounts() -> None:
    ci = msgspec.structs.replace(
        release("1.0.1", 100, "GitHub Actions"),
        provenance=Provenance("npm-trusted-publisher", issuer="github"),
    )
    h = history(release("1.0.0", 0), ci)
    events = [_event(f"o-{i}", i, who="npm:user/GitHub Actions") for i in range(10)]
    assert _burst(_judge(events, h)) is None
    # a trusted publish that also carries an attestation: the publisher names the CI system
    attested = msgspec.structs.replace(
        release("1.0.1", 100, None),
        publisher=Custodian("npm:trusted-publisher/github"),
        provenance=Provenance("npm-attestation", source=Custodian("github:acme/pkg")),
    )
    h = history(release("1.0.0", 0), attested)
    events = [_event(f"o-{i}", i, who="npm:trusted-publisher/github") for i in range(10)]
    assert _burst(_judge(events, h)) is None


def test_a_monorepo_release_is_info() -> None:
    """Every package of the burst declares the same source repository (the tree knows them)."""
    from custody.judge import judge_all
    from custody.model import LockedDependency

    repo = "https://github.com/acme/mono"
    names = [f"@acme/p{i}" for i in range(6)]
    histories = {
        (Ecosystem.NPM, n): history(
            release("1.0.0", 0, name=n, repo=repo),
            release("1.1.0", 100 + i / 1440, name=n, repo=repo),
            name=n,
        )
        for i, n in enumerate(names)
    }
    trust = parse_trust_file(
        "".join(f'[[trusted."npm:{n}"]]\ncustodian = "npm:user/alice"\n' for n in names)
    )
    deps = [LockedDependency(Ecosystem.NPM, n, "1.1.0", direct=True) for n in names]
    events = {
        "npm:user/alice": [
            PublishEvent(Ecosystem.NPM, n, "1.1.0", "npm:user/alice", AT + timedelta(minutes=i))
            for i, n in enumerate(names)
        ]
    }
    judged = judge_all(
        deps, histories, trust, observations={}, now=NOW, fan_ins={}, publishes=events
    )
    for j in judged:
        finding = _burst(j.decision)
        assert finding is not None and finding.severity is Severity.INFO
        assert finding.evidence["one_repository"] == repo
        assert j.decision.action is Action.ALLOW
    # the same burst from unrelated repositories is held
    spread = {
        k: msgspec.structs.replace(
            h,
            releases=tuple(
                msgspec.structs.replace(r, repository=f"{repo}-{k[1]}") for r in h.releases
            ),
        )
        for k, h in histories.items()
    }
    judged = judge_all(deps, spread, trust, observations={}, now=NOW, fan_ins={}, publishes=events)
    assert all(_burst(j.decision).severity is Severity.HIGH for j in judged)
