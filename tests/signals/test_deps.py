"""deps.added-in-patch and deps.new-package, alone and in the two-pass judging of a tree."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from custody import versions
from custody.judge import judge_all, judge_release
from custody.model import (
    Action,
    Custodian,
    DeclaredDependency,
    Ecosystem,
    LockedDependency,
    PackageHistory,
    Release,
    Severity,
)
from custody.trust import parse_trust_file
from custody.versions import bump
from tests.engine.builders import T0, history, locked, release

NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI


def _finding(decision, rule):
    return next((f for f in decision.findings if f.rule == rule), None)


# -- bump classification ------------------------------------------------------------------------


def test_bumps_are_classified_per_ecosystem() -> None:
    assert bump(NPM, "3.3.5", "3.3.6").kind == "patch"
    assert bump(NPM, "3.3.5", "3.4.0").kind == "minor"
    assert bump(NPM, "3.3.5", "4.0.0").kind == "major"
    pre = bump(NPM, "1.0.0-beta.1", "1.0.0-beta.2")
    assert pre is not None and pre.kind == "patch" and pre.prerelease
    assert bump(NPM, "1.2.0", "1.1.0").downgrade
    assert bump(PYPI, "1.0", "1.0.1").kind == "patch"
    assert bump(PYPI, "1.0.post1", "1.0.post2").kind == "patch"
    assert bump(PYPI, "2.31.0", "2.32.0rc1").kind == "minor"
    assert bump(PYPI, "1.0", "2.0").kind == "major"
    assert bump(NPM, "not-a-version", "1.0.0") is None


# -- deps.added-in-patch alone --------------------------------------------------------------------

TRUST = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')
LATER = T0 + timedelta(days=3000)


def _alone(version: str, *releases: Release):
    return judge_release(locked(version), history(*releases), TRUST, now=LATER).decision


def test_a_patch_that_adds_a_dependency_is_low_alone_and_names_it() -> None:
    d = _alone(
        "1.0.1",
        release("1.0.0", 0, deps={"a": "^1"}),
        release("1.0.1", 10, deps={"a": "^1", "b": "^2.0.0"}),
    )
    finding = _finding(d, "deps.added-in-patch")
    assert finding is not None and finding.severity is Severity.LOW
    assert finding.evidence["bump"] == "patch" and finding.evidence["from_version"] == "1.0.0"
    assert [a["name"] for a in finding.evidence["added"]] == ["b"]
    assert d.action is Action.ALLOW


def test_minor_and_major_releases_are_weaker() -> None:
    minor = _alone("1.1.0", release("1.0.0", 0), release("1.1.0", 10, deps={"b": "1"}))
    finding = _finding(minor, "deps.added-in-patch")
    assert finding is not None and finding.evidence["bump"] == "minor"
    assert finding.severity is Severity.INFO
    major = _alone("2.0.0", release("1.0.0", 0), release("2.0.0", 10, deps={"b": "1"}))
    assert _finding(major, "deps.added-in-patch").evidence["bump"] == "major"


def test_no_finding_without_added_dependencies_or_known_dependencies() -> None:
    same = _alone(
        "1.0.1", release("1.0.0", 0, deps={"a": "1"}), release("1.0.1", 10, deps={"a": "2"})
    )
    assert _finding(same, "deps.added-in-patch") is None
    unknown = msgspec.structs.replace(release("1.0.0", 0), dependencies=None)
    assert (
        _finding(
            _alone("1.0.1", unknown, release("1.0.1", 10, deps={"b": "1"})), "deps.added-in-patch"
        )
        is None
    )


def test_the_trusted_baseline_is_compared_not_the_release_just_before() -> None:
    """mallory's 1.0.6 added the dependency, 1.0.7 keeps it: compared with alice's 1.0.5."""
    d = _alone(
        "1.0.7",
        release("1.0.5", 0, "alice", ["alice"]),
        release("1.0.6", 10, "mallory", ["alice", "mallory"], deps={"evil": "1"}),
        release("1.0.7", 12, "mallory", ["alice", "mallory"], deps={"evil": "1"}),
    )
    assert _finding(d, "deps.added-in-patch").evidence["from_version"] == "1.0.5"


def test_pypi_extras_only_dependencies_are_weaker() -> None:
    def py(version: str, day: float, *deps: DeclaredDependency) -> Release:
        return msgspec.structs.replace(
            release(version, day, ecosystem=PYPI, name="pkg"), dependencies=tuple(deps)
        )

    extra = DeclaredDependency("rich", ">=13", "requires-dist", 'extra == "cli"')
    plain = DeclaredDependency("rich", ">=13", "requires-dist")
    trust = parse_trust_file('[[trusted."pypi:pkg"]]\ncustodian = "pypi:user/alice"\n')
    h1 = history(py("1.0.0", 0), py("1.0.1", 10, extra), ecosystem=PYPI)
    h2 = history(py("1.0.0", 0), py("1.0.1", 10, plain), ecosystem=PYPI)
    dep = locked("1.0.1", ecosystem=PYPI)
    with_extra = judge_release(dep, h1, trust, now=LATER).decision
    without = judge_release(dep, h2, trust, now=LATER).decision
    assert _finding(with_extra, "deps.added-in-patch").severity is Severity.INFO
    assert _finding(without, "deps.added-in-patch").severity is Severity.LOW
    assert (
        _finding(with_extra, "deps.added-in-patch").evidence["added"][0]["marker"]
        == 'extra == "cli"'
    )


# -- deps.new-package alone -----------------------------------------------------------------------

EMPTY = parse_trust_file("")
TOFU = parse_trust_file('[policy]\nnew-packages = "trust-on-first-use"\n')


def test_an_established_package_new_to_the_tree_is_medium() -> None:
    h = history(*(release(f"1.0.{i}", 100 * i) for i in range(6)))
    d = judge_release(locked("1.0.5"), h, EMPTY, now=LATER).decision
    finding = _finding(d, "deps.new-package")
    assert finding.severity is Severity.MEDIUM and d.action is Action.HOLD
    ev = finding.evidence
    assert ev["releases"] == 6 and ev["publisher"] == "npm:user/alice"
    assert ev["publisher_releases"] == 6 and ev["publisher_tenure_days"] > 365
    assert any("established" in w for w in ev["weighed"])
    tofu = judge_release(locked("1.0.5"), h, TOFU, now=LATER).decision
    assert _finding(tofu, "deps.new-package").severity is Severity.LOW
    assert tofu.action is Action.ALLOW


def test_a_brand_new_package_is_high() -> None:
    h = history(release("0.1.0", 0), release("0.1.1", 3))
    d = judge_release(locked("0.1.1"), h, EMPTY, now=T0 + timedelta(days=6)).decision
    finding = _finding(d, "deps.new-package")
    assert finding.severity is Severity.HIGH
    assert finding.evidence["age_days"] == 6.0 and finding.evidence["releases"] == 2
    tofu = judge_release(locked("0.1.1"), h, TOFU, now=T0 + timedelta(days=6)).decision
    assert _finding(tofu, "deps.new-package").severity is Severity.MEDIUM


def test_an_old_package_whose_publisher_just_started_is_high() -> None:
    """A revived, abandoned name: years of alice, then mallory a week ago."""
    h = history(
        *(release(f"1.0.{i}", 100 * i) for i in range(5)), release("1.1.0", 2000, "mallory")
    )
    d = judge_release(locked("1.1.0"), h, EMPTY, now=T0 + timedelta(days=2007)).decision
    finding = _finding(d, "deps.new-package")
    assert finding.severity is Severity.HIGH
    assert finding.evidence["publisher_releases"] == 1


# -- the two passes: event-stream and flatmap-stream ----------------------------------------------


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _npm(name, version, when, publisher, maintainers, deps=None) -> Release:
    return Release(
        NPM,
        name,
        version,
        published_at=_at(when),
        publisher=Custodian.npm_user(publisher),
        maintainers=frozenset(Custodian.npm_user(m) for m in maintainers),
        dependencies=tuple(DeclaredDependency(n, s) for n, s in (deps or {}).items()),
    )


BASE = {"through": "~2.3.1", "split": "0.3"}
EVENT_STREAM = PackageHistory(
    NPM,
    "event-stream",
    "http://127.0.0.1:1/",
    _at("2018-12-01"),
    (
        _npm("event-stream", "3.3.4", "2016-07-06", "dominictarr", ["dominictarr"], BASE),
        _npm(
            "event-stream",
            "3.3.5",
            "2018-09-05",
            "dominictarr",
            ["dominictarr", "right9ctrl"],
            BASE,
        ),
        _npm(
            "event-stream",
            "3.3.6",
            "2018-09-09T11:43",
            "right9ctrl",
            ["dominictarr", "right9ctrl"],
            {**BASE, "flatmap-stream": "^0.1.0"},
        ),
    ),
)
FLATMAP = PackageHistory(
    NPM,
    "flatmap-stream",
    "http://127.0.0.1:1/",
    _at("2018-12-01"),
    (
        _npm("flatmap-stream", "0.1.0", "2018-09-09T10:59", "right9ctrl", ["right9ctrl"]),
        _npm("flatmap-stream", "0.1.1", "2018-10-05", "right9ctrl", ["right9ctrl"]),
    ),
)
THROUGH = history(
    *(
        # published 2015-2017, before the 2018 event-stream judgement
        msgspec.structs.replace(release(f"2.3.{i}", 100 * i - 3000, "dominictarr"), name="through")
        for i in range(9)
    ),
    name="through",
)
TRUST_ES = parse_trust_file(
    '[[trusted."npm:event-stream"]]\ncustodian = "npm:user/dominictarr"\n'
    '[[trusted."npm:through"]]\ncustodian = "npm:user/dominictarr"\n'
)
TREE = [
    LockedDependency(NPM, "event-stream", "3.3.6", direct=True, paths=(("event-stream",),)),
    LockedDependency(
        NPM, "flatmap-stream", "0.1.1", direct=False, paths=(("event-stream", "flatmap-stream"),)
    ),
    LockedDependency(NPM, "through", "2.3.8", direct=False, paths=(("event-stream", "through"),)),
]
HISTORIES = {
    (NPM, "event-stream"): EVENT_STREAM,
    (NPM, "flatmap-stream"): FLATMAP,
    (NPM, "through"): THROUGH,
}


def _judge_tree(trust=TRUST_ES, tree=TREE, now="2018-11-20"):
    judged = judge_all(tree, HISTORIES, trust, observations={}, now=_at(now), fan_ins={})
    return {j.decision.package: j for j in judged}


def test_the_event_stream_pair_is_critical() -> None:
    judged = _judge_tree()
    es = judged["event-stream"].decision
    assert es.action is Action.HOLD
    rules = {f.rule: f for f in es.findings}
    assert {"custody.new-publisher", "deps.added-in-patch"} <= set(rules)
    patch = rules["deps.added-in-patch"]
    assert patch.evidence["bump"] == "patch"
    assert patch.severity.rank >= Severity.HIGH.rank
    [added] = patch.evidence["added"]
    assert added["name"] == "flatmap-stream" and added["new_to_tree"] and added["releases"] == 2

    fm = judged["flatmap-stream"].decision
    new = _finding(fm, "deps.new-package")
    assert new is not None and new.severity is Severity.CRITICAL
    assert fm.action is Action.HOLD
    [takeover] = new.evidence["parent_takeover"]
    assert takeover == {
        "parent": "npm:event-stream",
        "version": "3.3.6",
        "publisher": "npm:user/right9ctrl",
        "parent_finding_severity": rules["custody.new-publisher"].severity.value,
        "declares_it": True,
    }
    # the trusted, established dependency is not touched
    assert judged["through"].decision.findings == ()
    # the second pass sees the tree; the first-pass custody findings are kept
    assert judged["flatmap-stream"].context.tree is not None


def test_one_locked_release_of_a_dependency_needs_no_range_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tree locks flatmap-stream once: that entry is weighed whether or not it fits the
    declared range, so the range is not parsed (node-semver's import alone is 25-50 ms)."""
    expected = {k: j.decision for k, j in _judge_tree().items()}

    def no_range_check(*_args: object) -> bool:
        raise AssertionError("a range was checked")

    monkeypatch.setattr(versions, "satisfies", no_range_check)
    assert {k: j.decision for k, j in _judge_tree().items()} == expected


def test_the_parent_is_found_without_lockfile_paths() -> None:
    """Lockfiles without paths (some Python formats): the tree's declared dependencies say it."""
    bare = [dataclasses.replace(d, paths=()) for d in TREE]
    new = _finding(_judge_tree(tree=bare)["flatmap-stream"].decision, "deps.new-package")
    assert new.severity is Severity.CRITICAL


def test_without_a_takeover_the_new_package_is_weighed_on_its_own() -> None:
    trusting = parse_trust_file(
        '[[trusted."npm:event-stream"]]\ncustodian = "npm:user/dominictarr"\n'
        '[[trusted."npm:event-stream"]]\ncustodian = "npm:user/right9ctrl"\n'
        '[[trusted."npm:through"]]\ncustodian = "npm:user/dominictarr"\n'
    )
    judged = _judge_tree(trusting)
    new = _finding(judged["flatmap-stream"].decision, "deps.new-package")
    assert "parent_takeover" not in new.evidence
    assert new.severity is Severity.MEDIUM  # 2 releases, but not brand-new on 2018-11-20
    assert _finding(judged["event-stream"].decision, "custody.new-publisher") is None


def test_an_approved_new_package_is_allowed_and_its_parent_weighs_less() -> None:
    approved = parse_trust_file(
        '[[trusted."npm:event-stream"]]\ncustodian = "npm:user/dominictarr"\n'
        '[[trusted."npm:through"]]\ncustodian = "npm:user/dominictarr"\n'
        '[[approved."npm:flatmap-stream"]]\nversion = "0.1.1"\nby = "r@example.com"\n'
        'reason = "read it"\n'
    )
    judged = _judge_tree(approved)
    assert judged["flatmap-stream"].decision.action is Action.ALLOW
    patch = _finding(judged["event-stream"].decision, "deps.added-in-patch")
    assert patch.evidence["added"][0]["new_to_tree"] is False


def test_a_dependency_held_itself_raises_the_parent() -> None:
    """Judged an hour after flatmap-stream 0.1.1 appeared: it is too new (held in the first
    pass), which makes event-stream's new dependency riskier."""
    young = msgspec.structs.replace(
        FLATMAP,
        releases=(
            FLATMAP.releases[0],
            msgspec.structs.replace(FLATMAP.releases[1], published_at=_at("2018-10-05")),
        ),
    )
    histories = {**HISTORIES, (NPM, "flatmap-stream"): young}
    judged = judge_all(
        TREE, histories, TRUST_ES, observations={}, now=_at("2018-10-05T01:00"), fan_ins={}
    )
    es = next(j for j in judged if j.decision.package == "event-stream").decision
    patch = _finding(es, "deps.added-in-patch")
    assert "release.too-new" in patch.evidence["added"][0]["own_findings"]
    assert patch.severity is Severity.CRITICAL


def test_a_trusted_tree_after_init_is_quiet() -> None:
    """After `custody init` every locked package is trusted: a locked patch that once added a
    then-young dependency is not held (the first check after init exits 0)."""
    trusted = parse_trust_file(
        '[[trusted."npm:event-stream"]]\ncustodian = "npm:user/dominictarr"\n'
        '[[trusted."npm:event-stream"]]\ncustodian = "npm:user/right9ctrl"\n'
        '[[trusted."npm:flatmap-stream"]]\ncustodian = "npm:user/right9ctrl"\n'
        '[[trusted."npm:through"]]\ncustodian = "npm:user/dominictarr"\n'
    )
    judged = _judge_tree(trusted)
    assert all(j.decision.action is Action.ALLOW for j in judged.values())
    patch = _finding(judged["event-stream"].decision, "deps.added-in-patch")
    assert patch.severity is Severity.INFO
    assert patch.evidence["weighed"] == ["flatmap-stream is already in the tree and trusted"]


def test_a_package_split_out_by_the_same_trusted_custodian_weighs_less() -> None:
    """dominictarr (trusted) adds a brand-new package of his own in a patch."""
    own = PackageHistory(
        NPM,
        "stream-helper",
        "http://127.0.0.1:1/",
        _at("2018-12-01"),
        (_npm("stream-helper", "0.1.0", "2018-09-01", "dominictarr", ["dominictarr"]),),
    )
    es = msgspec.structs.replace(
        EVENT_STREAM,
        releases=(
            *EVENT_STREAM.releases[:2],
            _npm(
                "event-stream",
                "3.3.6",
                "2018-09-09",
                "dominictarr",
                ["dominictarr"],
                {**BASE, "stream-helper": "^0.1.0"},
            ),
        ),
    )
    tree = [
        TREE[0],
        LockedDependency(
            NPM, "stream-helper", "0.1.0", direct=False, paths=(("event-stream", "stream-helper"),)
        ),
        TREE[2],
    ]
    histories = {(NPM, "event-stream"): es, (NPM, "stream-helper"): own, (NPM, "through"): THROUGH}
    judged = judge_all(
        tree, histories, TRUST_ES, observations={}, now=_at("2018-11-20"), fan_ins={}
    )
    by = {j.decision.package: j.decision for j in judged}
    patch = _finding(by["event-stream"], "deps.added-in-patch")
    assert patch.severity is Severity.MEDIUM  # low + new + brand-new - same trusted custodian
    assert "published by the same trusted custodian" in " ".join(patch.evidence["weighed"])
    new = _finding(by["stream-helper"], "deps.new-package")
    assert "parent_takeover" not in new.evidence  # dominictarr did not just take anything over
