"""Judging: from fetched histories, observations and the trust file to decisions. Pure: no
network, no ledger, so ``check``, ``diff``, the proxy and history replays share it.

``judge_all`` judges a whole tree in two passes. The first judges every locked release on its
own (``RELEASE_SIGNALS``: custody, release state, age, known-bad). The second (``judge_tree``)
builds a ``TreeView`` of the first pass's results (per package: history, locked release, new or
not, findings) and runs the signals that look across packages (``TREE_SIGNALS``:
``deps.new-package``, ``deps.added-in-patch``, ``custody.publish-burst``) with it; their
findings are merged in and the release is decided again. The second pass only reads the first
pass, so there is no circularity: a new package's weight may depend on its parent's custody
findings, never on its parent's second-pass findings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from packaging.version import InvalidVersion, Version

from custody.content.result import ContentComparison
from custody.fingerprint.result import FingerprintResult
from custody.model import (
    Action,
    Custodian,
    Decision,
    Ecosystem,
    Finding,
    LockedDependency,
    Observation,
    PackageHistory,
    PublishEvent,
    Release,
    SourceLocation,
)
from custody.osv import KnownBadRecord
from custody.policy import BLOCKING_RULES, Tier, holds, tier_for
from custody.provenance.result import ProvenanceCheck
from custody.signals import (
    CHECK_SIGNALS,
    CONTENT_RULE_PREFIXES,
    CONTENT_SIGNALS,
    RELEASE_SIGNALS,
    TREE_SIGNALS,
    Signal,
    SignalContext,
    TreeEntry,
    TreeView,
    TrustedSet,
)
from custody.signals.base import package_id
from custody.signals.lockfile import INTEGRITY_RULE, SOURCE_RULE
from custody.trust import TrustFile
from custody.trust.model import first_trusting

ENTRY_RULES = frozenset({INTEGRITY_RULE, SOURCE_RULE})
"""Findings about the lockfile entry rather than the release: an approval does not cover them."""


@dataclass(frozen=True, slots=True)
class Judged:
    decision: Decision
    context: SignalContext
    tier: Tier | None = None  # the tier the decision was made in (None: not recorded)


def find_release(history: PackageHistory, version: str) -> Release | None:
    found = history.release(version)
    if found is not None or history.ecosystem is not Ecosystem.PYPI:
        return found
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    for r in history.releases:
        try:
            if Version(r.version) == wanted:
                return r
        except InvalidVersion:
            continue
    return None


def _locate(history: PackageHistory, version: str) -> tuple[Release | None, list[Release]]:
    """``find_release(history, version)`` and the releases before it
    (``history.predecessors``) in one pass: judging needs both, and each is a scan of the
    history."""
    before: list[Release] = []
    for r in history.releases:
        if r.version == version:
            return r, before
        if not r.unpublished and not r.details_removed:
            before.append(r)
    found = find_release(history, version)  # PyPI: another spelling (1.0 is 1.0.0)
    return found, history.predecessors(found.version) if found is not None else []


def choose_baseline(
    history: PackageHistory,
    candidate: Release | None,
    trusted: TrustedSet,
    predecessors: Sequence[Release] | None = None,
) -> Release | None:
    """The release the candidate is judged against: the newest earlier release the trust file
    accepts (its custody is trusted, or a person approved it), else the newest earlier release.
    ``predecessors`` are the candidate's, when the caller has them already."""
    if candidate is None:
        return None
    preds = history.predecessors(candidate.version) if predecessors is None else predecessors
    for r in reversed(preds):
        if trusted.accepts(r):
            return r
    return preds[-1] if preds else None


def trusted_set(
    trust: TrustFile, package_key: str, implicit: Iterable[Custodian] = ()
) -> TrustedSet:
    entries = trust.entries_for(package_key)  # once, not at every question

    def matcher(custodian: Custodian, at: datetime | None, workflow: str | None) -> str | None:
        entry = first_trusting(entries, custodian, at, workflow=workflow)
        return entry.custodian if entry is not None else None

    def approved(version: str) -> bool:
        return trust.approval(package_key, version) is not None

    return TrustedSet(matcher, frozenset([c.id for c in implicit]), approved)


def _finding_order(f: Finding) -> tuple[int, str]:
    """Most severe first, then by rule."""
    return (-f.severity.rank, f.rule)


def decide(
    dep: LockedDependency,
    findings: Sequence[Finding],
    tier: Tier,
    trust: TrustFile,
    from_version: str | None,
    locations: tuple[SourceLocation, ...] = (),
) -> Decision:
    action = Action.ALLOW
    if findings:
        if any(f.rule in BLOCKING_RULES for f in findings):
            action = Action.BLOCK
        elif any(holds(tier, f.rule, f.severity) for f in findings):
            action = Action.HOLD
    approval = trust.approval(dep.package_key, dep.version) if trust.approved else None
    approved_by = None
    if approval is not None and action is not Action.BLOCK:
        approved_by = approval.by
        # An approval is of the release; a lockfile entry that would install other bytes is
        # not that release, and stays held until the lockfile is regenerated.
        if not any(holds(tier, f.rule, f.severity) for f in findings if f.rule in ENTRY_RULES):
            action = Action.ALLOW
    return Decision(
        ecosystem=dep.ecosystem,
        package=dep.name,
        version=dep.version,
        from_version=from_version,
        action=action,
        findings=tuple(sorted(findings, key=_finding_order)),
        tier=tier.name,
        locations=locations,
        approved_by=approved_by,
    )


def merge_locked(
    deps: Iterable[LockedDependency],
) -> dict[str, tuple[LockedDependency, tuple[SourceLocation, ...]]]:
    """One entry per ``eco:name@version`` across lockfiles: direct if direct anywhere, all
    paths, locations and disagreeing sources (``other_sources``) kept."""
    groups: dict[str, list[LockedDependency]] = defaultdict(list)
    for d in deps:
        groups[d.key].append(d)
    out = {}
    for key, group in groups.items():
        first = group[0]
        if len(group) == 1:  # the usual case: one lockfile entry, nothing to merge
            paths, direct = tuple(dict.fromkeys(first.paths)), first.direct
            locations: tuple[SourceLocation, ...] = (first.location,) if first.location else ()
        else:
            paths = tuple(dict.fromkeys(p for d in group for p in d.paths))
            direct = any(d.direct for d in group)
            locations = tuple(dict.fromkeys(d.location for d in group if d.location))
        merged = (
            first
            if direct == first.direct and paths == first.paths
            else replace(first, direct=direct, paths=paths)
        )
        for other in group[1:]:
            merged = replace(merged, **merged.merged_sources(other))
        out[key] = (merged, locations)
    return out


def judge_release(
    dep: LockedDependency,
    history: PackageHistory,
    trust: TrustFile,
    *,
    observations: Sequence[Observation] = (),
    now: datetime,
    fan_in: int = 1,
    implicit: Iterable[Custodian] = (),
    locations: tuple[SourceLocation, ...] = (),
    signals: Sequence[Signal] = CHECK_SIGNALS,
    known_bad: Sequence[KnownBadRecord] = (),
    publishes: Sequence[PublishEvent] = (),
    tree: TreeView | None = None,
    known: bool | None = None,
    provenance_check: ProvenanceCheck | None = None,
    located: tuple[Release | None, Sequence[Release]] | None = None,
) -> Judged:
    """Judge one locked release. ``implicit`` custodians are trusted besides the trust file
    (the release a diff replaces, or earlier publishers under trust-on-first-use). ``known``
    overrides whether the package counts as already in the tree (a diff's upgrade is, even
    when the registry hides who published the release it replaces).
    ``known_bad`` are the OSV records naming the package, ``publishes`` the candidate
    publisher's publishes around its publish time (from the ledger), ``tree`` the scanned tree
    for the ``deps.*`` signals (None: the release is judged alone). ``located`` is the locked
    release in ``history`` and the releases before it, when the caller found them already
    (``judge_all`` does)."""
    key = dep.package_key
    in_trust_file = trust.knows(key)
    candidate, preds = located if located is not None else _locate(history, dep.version)
    implicit_ids = list(implicit)
    known_package = in_trust_file or bool(implicit_ids)
    if not in_trust_file and candidate:
        # A package the trust file does not know is judged against its own earlier releases;
        # whether it may enter at all is deps.new-package's question.
        implicit_ids += [c for r in preds for c in r.identities]
    trusted = trusted_set(trust, key, implicit_ids)
    baseline = choose_baseline(history, candidate, trusted, preds)
    ctx = SignalContext(
        dependency=dep,
        history=history,
        candidate=candidate,
        baseline=baseline,
        trusted=trusted,
        observations=tuple(observations),
        now=now,
        known_package=known_package if known is None else known,
        policy=trust.policy,
        tree=tree,
        known_bad=tuple(known_bad),
        publishes=tuple(publishes),
        provenance_check=provenance_check,
        preceding=preds,
    )
    findings = [f for signal in signals for f in signal(ctx)]
    tier = tier_for(trust.policy, fan_in)
    decision = decide(dep, findings, tier, trust, baseline.version if baseline else None, locations)
    return Judged(decision, ctx, tier)


def build_tree(
    first: Iterable[Judged], is_new: Callable[[SignalContext], bool] | None = None
) -> TreeView:
    """The tree as the first pass judged it. ``is_new`` says whether a package is new to the
    tree (default: the trust file does not know it); a diff can say "absent from the old side".
    An entry is ``held`` when its first-pass decision is not ``allow`` (approvals count: an
    approved release was reviewed)."""
    new = is_new or (lambda ctx: not ctx.known_package)
    entries = []
    for j in first:
        ctx, decision = j.context, j.decision
        entries.append(
            TreeEntry(
                dependency=ctx.dependency,
                history=ctx.history,
                candidate=ctx.candidate,
                new=new(ctx),
                findings=decision.findings,
                held=decision.action is not Action.ALLOW,
            )
        )
    return TreeView.build(entries)


def judge_tree(
    first: Sequence[Judged],
    trust: TrustFile,
    *,
    signals: Sequence[Signal] = TREE_SIGNALS,
    is_new: Callable[[SignalContext], bool] | None = None,
) -> list[Judged]:
    """The second pass: run the tree-aware ``signals`` on every first-pass result with a
    ``TreeView`` of all of them, merge their findings and decide again (same tier, same
    approvals). Results come back in the order given."""
    tree = build_tree(first, is_new)
    out = []
    for j in first:
        ctx = j.context.with_tree(tree)
        extra = [f for signal in signals for f in signal(ctx)]
        if not extra:
            out.append(Judged(j.decision, ctx, j.tier))
            continue
        out.append(redecide(j, ctx, [*j.decision.findings, *extra], trust))
    return out


def redecide(
    j: Judged, ctx: SignalContext, findings: Sequence[Finding], trust: TrustFile
) -> Judged:
    """Decide again with new findings, in the same tier and with the same approvals."""
    tier = j.tier or tier_for(trust.policy, 1)
    d = j.decision
    again = decide(ctx.dependency, findings, tier, trust, d.from_version, d.locations)
    decision = replace(
        d, action=again.action, findings=again.findings, approved_by=again.approved_by
    )
    return Judged(decision, ctx, tier)


def with_content(
    j: Judged,
    comparison: ContentComparison | None,
    error: Finding | None,
    trust: TrustFile,
    fingerprints: tuple[FingerprintResult, ...] = (),
) -> Judged:
    """The third pass for one release whose artifacts were compared (with the trusted
    release's, and with its source when fingerprints are on): the content signals run again
    with the files, replacing their first-pass findings."""
    ctx = replace(j.context, content=comparison, content_error=error, fingerprints=fingerprints)
    kept = [f for f in j.decision.findings if not f.rule.startswith(CONTENT_RULE_PREFIXES)]
    return redecide(j, ctx, kept + [f for signal in CONTENT_SIGNALS for f in signal(ctx)], trust)


def judge_all(
    deps: Iterable[LockedDependency],
    histories: Mapping[tuple[Ecosystem, str], PackageHistory],
    trust: TrustFile,
    *,
    observations: Mapping[tuple[Ecosystem, str], Sequence[Observation]],
    now: datetime,
    fan_ins: Mapping[str, int],
    as_of: datetime | None = None,
    known_bad: Mapping[tuple[Ecosystem, str], Sequence[KnownBadRecord]] | None = None,
    publishes: Mapping[str, Sequence[PublishEvent]] | None = None,
    provenance_checks: Mapping[str, ProvenanceCheck] | None = None,
) -> list[Judged]:
    """Judge every locked release, in two passes (see the module docstring). ``known_bad``
    maps packages (npm exact, PyPI normalised names) to the records naming them; ``publishes``
    maps publisher ids to their publishes the ledger saw around the candidates' times."""
    known_bad = known_bad or {}
    publishes = publishes or {}
    checks = provenance_checks or {}
    first = []
    for dep, locations in merge_locked(deps).values():
        history = histories[(dep.ecosystem, dep.name)].as_of(as_of)
        located = _locate(history, dep.version)
        candidate = located[0]
        publisher = candidate.publisher.id if candidate and candidate.publisher else None
        first.append(
            judge_release(
                dep,
                history,
                trust,
                observations=observations.get((dep.ecosystem, dep.name), ()),
                now=now,
                fan_in=fan_ins.get(dep.package_key, 1),
                locations=locations,
                signals=RELEASE_SIGNALS,
                known_bad=known_bad.get(package_id(dep.ecosystem, dep.name), ()),
                publishes=publishes.get(publisher, ()) if publisher else (),
                provenance_check=checks.get(candidate.key) if candidate and checks else None,
                located=located,
            )
        )
    return judge_tree(first, trust)
