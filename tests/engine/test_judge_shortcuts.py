"""The shortcuts the judging loops take for speed give the same answers as the plain way:
one scan for the candidate and its predecessors, predecessors computed once per context,
``with_tree`` keeping the predecessors, pre-split trust patterns, one pass for first listings."""

from __future__ import annotations

import dataclasses
import fnmatch
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from custody.judge import _locate, find_release, judge_all, merge_locked
from custody.model import Custodian, Ecosystem, SourceLocation
from custody.policy import DEFAULT_POLICY, Policy, Tier, tier_for
from custody.signals.base import SignalContext, TreeView, TrustedSet
from custody.signals.custody import _first_listed, _first_listings
from custody.trust import TrustedEntry, TrustFile, parse_trust_file
from custody.trust._ids import check_custodian, normalize_workflow, split_workflow
from custody.trust.model import first_trusting

from .builders import T0, history, locked, release


def _history_with_gaps():
    gone = msgspec.structs.replace(release("1.0.1", 10), unpublished=True)
    return history(
        release("1.0.0", 0), gone, release("1.0.2", 20), release("2.0.0", 30), release("2.0.1", 40)
    )


@pytest.mark.parametrize("version", ["1.0.0", "1.0.1", "1.0.2", "2.0.1", "9.9.9"])
def test_locate_is_find_release_and_predecessors(version: str) -> None:
    h = _history_with_gaps()
    candidate, preds = _locate(h, version)
    assert candidate == find_release(h, version)
    assert preds == (h.predecessors(candidate.version) if candidate else [])


def test_locate_finds_a_pypi_version_spelled_differently() -> None:
    h = history(
        release("1.0", 0, ecosystem=Ecosystem.PYPI),
        release("1.1", 10, ecosystem=Ecosystem.PYPI),
        ecosystem=Ecosystem.PYPI,
    )
    candidate, preds = _locate(h, "1.1.0")
    assert candidate is not None and candidate.version == "1.1"
    assert [r.version for r in preds] == ["1.0"]


def _context(**extra: object) -> SignalContext:
    h = _history_with_gaps()
    candidate = h.release("2.0.1")
    return SignalContext(
        dependency=locked("2.0.1"),
        history=h,
        candidate=candidate,
        baseline=h.release("2.0.0"),
        trusted=TrustedSet(lambda c, at, wf: None),
        observations=(),
        now=T0,
        **extra,
    )


def test_predecessors_are_computed_once_and_match_the_history() -> None:
    ctx = _context()
    first = ctx.predecessors
    assert list(first) == ctx.history.predecessors("2.0.1")
    assert ctx.predecessors is first


def test_given_predecessors_are_used_and_replace_computes_them_again() -> None:
    h = _history_with_gaps()
    ctx = _context(preceding=h.predecessors("2.0.1"))
    assert list(ctx.predecessors) == h.predecessors("2.0.1")
    other = dataclasses.replace(ctx, candidate=h.release("1.0.2"))
    assert [r.version for r in other.predecessors] == ["1.0.0"]


def test_with_tree_is_replace_keeping_the_predecessors() -> None:
    ctx = _context(
        known_package=False,
        policy=Policy(cooldown=timedelta(0)),
        known_bad=(),
        publishes=(),
        fingerprints=(),
    )
    found = ctx.predecessors
    tree = TreeView()
    assert ctx.with_tree(tree) == dataclasses.replace(ctx, tree=tree)
    assert ctx.with_tree(tree).tree is tree
    assert ctx.with_tree(tree).predecessors is found


def test_merge_locked_keeps_a_single_entry_and_merges_several() -> None:
    a = dataclasses.replace(
        locked("1.0.0"), paths=(("x", "pkg"), ("x", "pkg")), location=SourceLocation("a", 1)
    )
    b = dataclasses.replace(
        locked("1.0.0"), direct=False, paths=(("y", "pkg"),), location=SourceLocation("b", 2)
    )
    single = locked("2.0.0")
    merged = merge_locked([a, b, single])
    dep, locations = merged["npm:pkg@1.0.0"]
    assert dep.direct and dep.paths == (("x", "pkg"), ("y", "pkg"))
    assert locations == (SourceLocation("a", 1), SourceLocation("b", 2))
    assert merged["npm:pkg@2.0.0"] == (single, ())
    [(alone, where)] = merge_locked([a]).values()
    assert alone.paths == (("x", "pkg"),) and where == (SourceLocation("a", 1),)


def _plain_match(entry: TrustedEntry, custodian: Custodian, workflow: str | None) -> bool:
    """``TrustedEntry.matches`` as it was first written: split and lower-case at every call."""
    identity, id_workflow = split_workflow(custodian.id)
    if not Custodian(identity).matches(entry.identity):
        return False
    bound = entry.workflow
    if bound is not None:
        actual = workflow if workflow is not None else id_workflow
        if actual is None or not fnmatch.fnmatchcase(
            normalize_workflow(actual), normalize_workflow(bound)
        ):
            return False
    return not (
        entry.numeric_id is not None
        and custodian.numeric_id is not None
        and entry.numeric_id != custodian.numeric_id
    )


@pytest.mark.parametrize(
    "pattern",
    [
        "npm:user/Alice",
        "github:my-org/*",
        "github:my-org/tool",
        "github:my-org/tool:.github/workflows/release.yml",
        "github:my-org/tool:.github/workflows/*.yml",
        "github:My-Org/[t]ool",
        "github:my-org/t?ol",
    ],
)
@pytest.mark.parametrize(
    ("custodian", "workflow"),
    [
        (Custodian("npm:user/alice"), None),
        (Custodian("npm:user/ALICE"), None),
        (Custodian("npm:user/alicex"), None),
        (Custodian("github:My-Org/Tool"), None),
        (Custodian("github:my-org/tool"), ".github/workflows/release.yml"),
        (Custodian("github:my-org/tool"), "./.github/workflows/other.yml@refs/tags/v1"),
        (Custodian("github:my-org/tool:.github/workflows/release.yml"), None),
        (Custodian("github:my-org/tools"), None),
        (Custodian("github:my-org-evil/tool"), None),
        (Custodian("github:my-org/t[o]ol"), None),
    ],
)
def test_entry_matching_agrees_with_fnmatch(
    pattern: str, custodian: Custodian, workflow: str | None
) -> None:
    entry = TrustedEntry(pattern)
    assert entry.matches(custodian, workflow=workflow) is _plain_match(entry, custodian, workflow)


def test_numeric_ids_still_decide() -> None:
    entry = TrustedEntry("github:o/r", numeric_id="1")
    assert entry.matches(Custodian("github:o/r", "1"))
    assert not entry.matches(Custodian("github:o/r", "2"))
    assert entry.matches(Custodian("github:o/r"))


@pytest.mark.parametrize(
    "at",
    [
        datetime(2020, 1, 1, 10, tzinfo=UTC),
        datetime(2020, 1, 1, 9, 59, 59, tzinfo=UTC),
        datetime(2020, 1, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),  # 10:30 UTC
        datetime(2020, 1, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))),  # 09:30 UTC
        datetime(2020, 1, 1, 10, 30),  # naive: UTC
        None,
    ],
)
def test_first_trusting_is_trusting(at: datetime | None) -> None:
    trust = parse_trust_file(
        '[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nsince = 2020-01-01T10:00:00Z\n'
        '[[trusted-everywhere]]\ncustodian = "npm:user/b"\nuntil = 2020-01-01\n'
    )
    for who in ("npm:user/a", "npm:user/b", "npm:user/c"):
        custodian = Custodian(who)
        expected = trust.trusting("npm:a", custodian, at)
        assert first_trusting(trust.entries_for("npm:a"), custodian, at) == expected
        assert expected == next(
            (e for e in trust.trusted_for("npm:a", at) if e.matches(custodian)), None
        )


def _sorted_tier(policy: Policy, fan_in: int) -> Tier:
    """``tier_for`` as it was written first: sort by threshold, take the first reached."""
    for tier in sorted(policy.tiers, key=lambda t: t.min_fan_in, reverse=True):
        if fan_in >= tier.min_fan_in:
            return tier
    return Tier("default")


@pytest.mark.parametrize(
    "tiers",
    [
        DEFAULT_POLICY.tiers,
        (Tier("low", 0), Tier("mid", 5), Tier("top", 20)),
        (Tier("a", 5), Tier("b", 5), Tier("c", 1)),  # a tie: the first listed wins
        (Tier("only", 3),),
        (),
    ],
)
def test_tier_for_is_the_highest_threshold_reached(tiers: tuple[Tier, ...]) -> None:
    policy = Policy(tiers=tiers)
    for fan_in in (0, 1, 2, 3, 4, 5, 6, 19, 20, 21, 100):
        assert tier_for(policy, fan_in) == _sorted_tier(policy, fan_in)


def test_first_listings_is_first_listed_for_each() -> None:
    releases = [
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.0.1", 1, maintainers=None),
        release("1.0.2", 2, maintainers=["alice", "bob"]),
        release("1.0.3", 3, maintainers=[]),
        release("1.0.4", 4, maintainers=["bob", "carol"]),
    ]
    who = [Custodian.npm_user(n) for n in ("alice", "bob", "carol", "dave")]
    found = _first_listings(releases, who)
    for c in who:
        assert found.get(c) is _first_listed(releases, c)


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\x1c", "\x85"])
def test_custodians_with_any_white_space_are_refused(space: str) -> None:
    with pytest.raises(ValueError, match="white space"):
        check_custodian(f"npm:user/a{space}b")


@pytest.mark.parametrize("wildcard", ["?", "[", "]"])
def test_custodians_with_other_wildcards_are_refused(wildcard: str) -> None:
    with pytest.raises(ValueError, match="the only wildcard allowed"):
        check_custodian(f"github:o/r{wildcard}")


def test_judge_all_passes_the_same_located_release_as_judge_release() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.0.1", 10, "mallory", ["alice", "mallory"]),
        release("1.0.2", 20, "mallory", ["mallory"]),
    )
    trust = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')
    empty = TrustFile(None)
    for t in (trust, empty):
        [j] = judge_all(
            [locked("1.0.1")],
            {(Ecosystem.NPM, "pkg"): h},
            t,
            observations={},
            now=T0 + timedelta(days=100),
            fan_ins={},
        )
        assert list(j.context.predecessors) == h.predecessors("1.0.1")
        assert j.context.tree is not None
        assert j.decision.from_version == "1.0.0"
