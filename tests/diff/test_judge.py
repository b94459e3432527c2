"""Judging a diff without the network: the replaced release's custody is the baseline."""

from __future__ import annotations

from datetime import timedelta

from custody.diff import compute_changes, judge_changes, removed_decisions
from custody.model import Action, Decision, Ecosystem, LockedDependency, PackageHistory
from custody.trust import EMPTY_TRUST, TrustFile, parse_trust_file
from tests.engine.builders import T0, history, locked, release

NOW = T0 + timedelta(days=400)

HANDOVER = history(
    release("1.0.0", 0, "alice", ["alice"]),
    release("1.0.1", 100, "mallory", ["alice", "mallory"]),
)
SAME_HANDS = history(
    release("1.0.0", 0, "alice", ["alice"]), release("1.0.1", 100, "alice", ["alice"])
)


def judge(
    old: list[LockedDependency],
    new: list[LockedDependency],
    histories: dict[tuple[Ecosystem, str], PackageHistory],
    trust: TrustFile = EMPTY_TRUST,
) -> dict[str, Decision]:
    changes = compute_changes(old, new)
    judged = judge_changes(changes, old, new, histories, trust, observations={}, now=NOW)
    decisions = [j.decision for j in judged] + removed_decisions(changes, old)
    return {d.key: d for d in decisions}


def rules(d: Decision) -> set[str]:
    return {f.rule for f in d.findings}


def test_same_publisher_passes_without_a_trust_file() -> None:
    out = judge([locked("1.0.0")], [locked("1.0.1")], {(Ecosystem.NPM, "pkg"): SAME_HANDS})
    d = out["npm:pkg@1.0.1"]
    assert (d.action, d.from_version) == (Action.ALLOW, "1.0.0")
    assert "deps.new-package" not in rules(d)


def test_new_publisher_is_held_without_a_trust_file() -> None:
    out = judge([locked("1.0.0")], [locked("1.0.1")], {(Ecosystem.NPM, "pkg"): HANDOVER})
    d = out["npm:pkg@1.0.1"]
    assert d.action is Action.HOLD
    assert d.from_version == "1.0.0"
    assert "custody.new-publisher" in rules(d)
    assert "deps.new-package" not in rules(d)


def test_trusting_the_new_publisher_allows_it() -> None:
    trust = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/mallory"\n')
    out = judge([locked("1.0.0")], [locked("1.0.1")], {(Ecosystem.NPM, "pkg"): HANDOVER}, trust)
    assert out["npm:pkg@1.0.1"].action is Action.ALLOW


def test_an_approval_allows_the_exact_release() -> None:
    trust = parse_trust_file(
        '[[approved."npm:pkg"]]\nversion = "1.0.1"\nby = "r@example.com"\nreason = "read it"\n'
    )
    out = judge([locked("1.0.0")], [locked("1.0.1")], {(Ecosystem.NPM, "pkg"): HANDOVER}, trust)
    assert out["npm:pkg@1.0.1"].approved_by == "r@example.com"


def test_downgrade_to_a_release_by_the_same_hands_passes() -> None:
    out = judge([locked("1.0.1")], [locked("1.0.0")], {(Ecosystem.NPM, "pkg"): SAME_HANDS})
    d = out["npm:pkg@1.0.0"]
    assert (d.action, d.from_version) == (Action.ALLOW, "1.0.1")


def test_unknown_publishers_never_make_an_upgrade_a_new_package() -> None:
    """A registry that hides publishers gives no baseline custodians: still not a new package."""
    hidden = history(release("1.0.0", 0, None), release("1.0.1", 100, None))
    out = judge([locked("1.0.0")], [locked("1.0.1")], {(Ecosystem.NPM, "pkg"): hidden})
    d = out["npm:pkg@1.0.1"]
    assert "deps.new-package" not in rules(d)
    assert "custody.unknown-publisher" in rules(d)


def test_added_package_is_held_for_review_by_default() -> None:
    out = judge(
        [],
        [locked("1.0.0", "fresh")],
        {(Ecosystem.NPM, "fresh"): history(release("1.0.0", 0, name="fresh"), name="fresh")},
    )
    d = out["npm:fresh@1.0.0"]
    assert (d.action, d.from_version) == (Action.HOLD, None)
    assert "deps.new-package" in rules(d)


def test_added_package_under_trust_on_first_use_passes() -> None:
    trust = parse_trust_file('[policy]\nnew-packages = "trust-on-first-use"\n')
    fresh = history(
        release("1.0.0", 0, name="fresh"), release("1.0.1", 9, name="fresh"), name="fresh"
    )
    out = judge([], [locked("1.0.1", "fresh")], {(Ecosystem.NPM, "fresh"): fresh}, trust)
    assert out["npm:fresh@1.0.1"].action is Action.ALLOW


def test_removed_package_is_allowed_with_an_info_finding() -> None:
    out = judge([locked("2.0.0", "gone")], [], {})
    d = out["npm:gone@2.0.0"]
    assert d.action is Action.ALLOW and d.from_version is None
    [finding] = d.findings
    assert (finding.rule, finding.severity.value) == ("deps.removed", "info")


def test_unchanged_releases_are_not_judged() -> None:
    out = judge([locked("1.0.0")], [locked("1.0.0")], {(Ecosystem.NPM, "pkg"): HANDOVER})
    assert out == {}


def test_packages_without_a_history_are_left_to_missing_decisions() -> None:
    assert judge([locked("1.0.0")], [locked("1.0.1")], {}) == {}
