"""Judging one locked release against the trust file and its history: each custody signal,
its weighing, and the policy that turns findings into actions."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from custody.judge import judge_release
from custody.model import Action, Custodian, Ecosystem, Observation, Severity
from custody.policy import DEFAULT_POLICY, Tier, holds, tier_for
from custody.trust import parse_trust_file

from .builders import T0, history, locked, release

TRUST_ALICE = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')


def judge(hist, version, trust=TRUST_ALICE, **kw):
    return judge_release(locked(version), hist, trust, now=T0 + timedelta(days=3000), **kw).decision


def rules(decision) -> dict[str, Severity]:
    return {f.rule: f.severity for f in decision.findings}


def test_trusted_publisher_is_allowed_without_findings() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"]), release("1.0.1", 10, maintainers=["alice"])
    )
    d = judge(h, "1.0.1")
    assert d.action is Action.ALLOW and d.findings == () and d.from_version == "1.0.0"


def test_new_maintainer_publishing_at_once_is_held_high() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.0.1", 100, "mallory", ["alice", "mallory"]),
    )
    d = judge(h, "1.0.1")
    assert d.action is Action.HOLD
    assert rules(d)["custody.new-publisher"] is Severity.HIGH
    assert "custody.new-maintainer" in rules(d)


def test_hand_over_with_new_dependency_is_critical() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.0.1", 100, "mallory", ["mallory"], deps={"flatmap-stream": "^0.1.0"}),
    )
    finding = next(f for f in judge(h, "1.0.1").findings if f.rule == "custody.new-publisher")
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["added_dependencies"] == ["flatmap-stream"]
    assert finding.evidence["removed_custodians"] == ["npm:user/alice"]


def test_long_listed_co_maintainer_is_a_weak_signal() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice", "bob"]),
        release("1.0.1", 200, "bob", ["alice", "bob"]),
    )
    d = judge(h, "1.0.1")
    assert d.action is Action.ALLOW
    assert rules(d) == {"custody.new-publisher": Severity.LOW}


def test_new_member_of_an_established_team_is_weak() -> None:
    team = ["alice", "bob", "carol"]
    h = history(
        release("1.0.0", 0, maintainers=team), release("1.0.1", 10, "dave", [*team, "dave"])
    )
    assert judge(h, "1.0.1").action is Action.ALLOW
    # ... but not when the same release adds an install script
    h2 = history(
        release("1.0.0", 0, maintainers=team),
        release("1.0.1", 10, "dave", [*team, "dave"], scripts={"postinstall": "node x.js"}),
    )
    assert judge(h2, "1.0.1").action is Action.HOLD


def test_same_provenance_source_lowers_a_new_publisher() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"], provenance="acme/pkg", repo_id="42"),
        release("1.0.1", 10, "bot", ["alice", "bot"], provenance="acme/pkg", repo_id="42"),
    )
    d = judge(h, "1.0.1")
    assert d.action is Action.ALLOW
    assert rules(d)["custody.new-publisher"].rank <= Severity.LOW.rank


def test_provenance_downgrade_is_held() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"], provenance="acme/pkg", repo_id="42"),
        release("1.0.1", 10, maintainers=["alice"]),
    )
    d = judge(h, "1.0.1")
    assert d.action is Action.HOLD
    assert rules(d) == {"custody.provenance-downgrade": Severity.HIGH}


def test_provenance_from_another_repository_is_held_but_a_rename_is_not() -> None:
    moved = history(
        release("1.0.0", 0, maintainers=["alice"], provenance="acme/pkg", repo_id="42"),
        release("1.0.1", 10, maintainers=["alice"], provenance="evil/pkg", repo_id="99"),
    )
    assert rules(judge(moved, "1.0.1"))["custody.provenance-source-changed"] is Severity.HIGH
    renamed = history(
        release("1.0.0", 0, maintainers=["alice"], provenance="acme/pkg", repo_id="42"),
        release("1.0.1", 10, maintainers=["alice"], provenance="acme/pkg-renamed", repo_id="42"),
    )
    d = judge(renamed, "1.0.1")
    assert d.action is Action.ALLOW
    assert rules(d)["custody.provenance-source-changed"] is Severity.INFO
    # a re-registered repository of the same name has another numeric id
    reregistered = history(
        release("1.0.0", 0, maintainers=["alice"], provenance="acme/pkg", repo_id="42"),
        release("1.0.1", 10, maintainers=["alice"], provenance="acme/pkg", repo_id="77"),
    )
    assert judge(reregistered, "1.0.1").action is Action.HOLD


def test_workflow_change_is_medium() -> None:
    h = history(
        release(
            "1.0.0",
            0,
            maintainers=["alice"],
            provenance="acme/pkg",
            repo_id="42",
            workflow="release.yml",
        ),
        release(
            "1.0.1",
            10,
            maintainers=["alice"],
            provenance="acme/pkg",
            repo_id="42",
            workflow="other.yml",
        ),
    )
    assert rules(judge(h, "1.0.1"))["custody.provenance-source-changed"] is Severity.MEDIUM


def test_repository_change_alone_is_weak() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"], repo="https://github.com/alice/pkg"),
        release("1.0.1", 10, maintainers=["alice"], repo="https://github.com/acme/pkg"),
    )
    d = judge(h, "1.0.1")
    assert d.action is Action.ALLOW and rules(d) == {"custody.repository-changed": Severity.INFO}


def test_unpublished_and_missing_versions_are_held() -> None:
    gone = msgspec.structs.replace(release("1.0.1", 10), unpublished=True)
    h = history(release("1.0.0", 0), gone)
    assert rules(judge(h, "1.0.1")) == {"release.unpublished": Severity.HIGH}
    assert rules(judge(h, "9.9.9")) == {"release.unpublished": Severity.HIGH}


def test_package_missing_from_trust_file_needs_review() -> None:
    h = history(release("1.0.0", 0), release("1.0.1", 10))
    empty = parse_trust_file("")
    d = judge(h, "1.0.1", trust=empty)
    assert d.action is Action.HOLD and set(rules(d)) == {"deps.new-package"}
    tofu = parse_trust_file('[policy]\nnew-packages = "trust-on-first-use"\n')
    assert judge(h, "1.0.1", trust=tofu).action is Action.ALLOW


def test_approval_allows_exactly_that_version() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"]), release("1.0.1", 10, "mallory", ["mallory"])
    )
    trust = parse_trust_file(
        '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
        '[[approved."npm:pkg"]]\nversion = "1.0.1"\nby = "r@example.com"\nreason = "ok"\n'
    )
    d = judge(h, "1.0.1", trust=trust)
    assert d.action is Action.ALLOW and d.approved_by == "r@example.com"
    assert d.findings  # the evidence stays visible


def test_trust_dates_are_respected() -> None:
    trust = parse_trust_file(
        '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\nuntil = 2024-01-05\n'
    )
    h = history(
        release("1.0.0", 0, maintainers=["alice"]), release("1.0.1", 30, maintainers=["alice"])
    )
    assert "custody.new-publisher" in rules(judge(h, "1.0.1", trust=trust))


def test_observed_owner_change_is_held() -> None:
    """PyPI shows only today's owners: an owner absent at an earlier look is new."""
    look1, look2 = T0 + timedelta(days=5), T0 + timedelta(days=20)
    obs = [
        Observation(Ecosystem.PYPI, "pkg", "owner", "pypi:user/alice", "Owner", look1, look2),
        Observation(Ecosystem.PYPI, "pkg", "owner", "pypi:user/mallory", "Owner", look2, look2),
    ]
    trust = parse_trust_file('[[trusted."pypi:pkg"]]\ncustodian = "pypi:user/alice"\n')
    h = history(
        release("1.0.0", 0, None, ecosystem=Ecosystem.PYPI),
        release("1.0.1", 15, None, ecosystem=Ecosystem.PYPI),
        ecosystem=Ecosystem.PYPI,
    )
    d = judge_release(
        locked("1.0.1", ecosystem=Ecosystem.PYPI), h, trust, observations=obs, now=look2
    ).decision
    finding = next(f for f in d.findings if f.rule == "custody.new-maintainer")
    assert finding.evidence["maintainer"] == "pypi:user/mallory"
    assert finding.severity is Severity.MEDIUM and d.action is Action.HOLD
    # as of the first look, mallory was not there yet
    early = judge_release(
        locked("1.0.1", ecosystem=Ecosystem.PYPI), h, trust, observations=obs, now=look1
    )
    assert not any(f.rule == "custody.new-maintainer" for f in early.decision.findings)


def test_unknown_publisher_is_reported_not_silently_passed() -> None:
    h = history(release("1.0.0", 0, None), release("1.0.1", 10, None))
    d = judge(h, "1.0.1")
    assert rules(d) == {"custody.unknown-publisher": Severity.INFO}


def test_tiers() -> None:
    assert tier_for(DEFAULT_POLICY, 0).name == "normal"
    assert tier_for(DEFAULT_POLICY, 7).name == "high"
    assert tier_for(DEFAULT_POLICY, 25).name == "critical"
    critical = Tier("critical", 20, Severity.MEDIUM, "hold")
    assert holds(critical, "custody.new-publisher", Severity.LOW)
    assert not holds(critical, "release.yanked", Severity.LOW)
    warn = Tier("low", 0, Severity.MEDIUM, "warn")
    assert not holds(warn, "custody.new-publisher", Severity.CRITICAL)


def test_critical_tier_holds_a_weak_custody_change() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice", "bob"]),
        release("1.0.1", 200, "bob", ["alice", "bob"]),
    )
    d = judge(h, "1.0.1", fan_in=50)
    assert d.tier == "critical" and d.action is Action.HOLD


def test_custodian_matching() -> None:
    assert Custodian("github:acme/pkg").matches("github:acme/*")
    assert not Custodian("github:acme-evil/pkg").matches("github:acme/*")


def test_failed_provenance_verification_blocks_through_judge_all() -> None:
    from custody.judge import judge_all
    from custody.provenance import Failure, ProvenanceCheck, Status

    h = history(
        release("1.0.0", 0, maintainers=["alice"], provenance="acme/pkg", repo_id="42"),
        release("1.0.1", 10, maintainers=["alice"], provenance="acme/pkg", repo_id="42"),
    )
    check = ProvenanceCheck(
        "npm:pkg@1.0.1",
        Status.INVALID,
        "the attested digest is not the tarball's",
        "npm-attestation",
        failure=Failure.DIGEST,
        expected={"sha512": "aa"},
        actual={"sha512": "bb"},
    )
    [judged] = judge_all(
        [locked("1.0.1")],
        {(h.ecosystem, h.name): h},
        TRUST_ALICE,
        observations={},
        now=T0 + timedelta(days=3000),
        fan_ins={},
        provenance_checks={"npm:pkg@1.0.1": check},
    )
    assert judged.decision.action is Action.BLOCK
    finding = next(f for f in judged.decision.findings if f.rule == "provenance.invalid")
    assert finding.evidence["failure"] == "digest"
