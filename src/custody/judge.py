"""Judging: from fetched histories, observations and the trust file to decisions. Pure: no
network, no ledger, so ``check``, ``diff``, the proxy and history replays share it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from packaging.version import InvalidVersion, Version

from custody.model import (
    Action,
    Custodian,
    Decision,
    Ecosystem,
    Finding,
    LockedDependency,
    Observation,
    PackageHistory,
    Release,
    SourceLocation,
)
from custody.policy import BLOCKING_RULES, Tier, holds, tier_for
from custody.signals import CHECK_SIGNALS, Signal, SignalContext, TrustedSet
from custody.trust import TrustFile


@dataclass(frozen=True, slots=True)
class Judged:
    decision: Decision
    context: SignalContext


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


def choose_baseline(
    history: PackageHistory, candidate: Release | None, trusted: TrustedSet
) -> Release | None:
    """The release the candidate is judged against: the newest earlier release whose custody is
    trusted, else the newest earlier release."""
    if candidate is None:
        return None
    preds = history.predecessors(candidate.version)
    for r in reversed(preds):
        if trusted.trusts_release(r):
            return r
    return preds[-1] if preds else None


def trusted_set(
    trust: TrustFile, package_key: str, implicit: Iterable[Custodian] = ()
) -> TrustedSet:
    def matcher(custodian: Custodian, at: datetime | None, workflow: str | None) -> str | None:
        entry = trust.trusting(package_key, custodian, at, workflow=workflow)
        return entry.custodian if entry is not None else None

    return TrustedSet(matcher, frozenset(c.id for c in implicit))


def decide(
    dep: LockedDependency,
    findings: Sequence[Finding],
    tier: Tier,
    trust: TrustFile,
    from_version: str | None,
    locations: tuple[SourceLocation, ...] = (),
) -> Decision:
    action = Action.ALLOW
    if any(f.rule in BLOCKING_RULES for f in findings):
        action = Action.BLOCK
    elif any(holds(tier, f.rule, f.severity) for f in findings):
        action = Action.HOLD
    approval = trust.approval(dep.package_key, dep.version)
    approved_by = None
    if approval is not None and action is not Action.BLOCK:
        action, approved_by = Action.ALLOW, approval.by
    return Decision(
        ecosystem=dep.ecosystem,
        package=dep.name,
        version=dep.version,
        from_version=from_version,
        action=action,
        findings=tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.rule))),
        tier=tier.name,
        locations=locations,
        approved_by=approved_by,
    )


def merge_locked(
    deps: Iterable[LockedDependency],
) -> dict[str, tuple[LockedDependency, tuple[SourceLocation, ...]]]:
    """One entry per ``eco:name@version`` across lockfiles: direct if direct anywhere, all
    paths and locations kept."""
    groups: dict[str, list[LockedDependency]] = defaultdict(list)
    for d in deps:
        groups[d.key].append(d)
    out = {}
    for key, group in groups.items():
        first = group[0]
        paths = tuple(dict.fromkeys(p for d in group for p in d.paths))
        merged = replace(first, direct=any(d.direct for d in group), paths=paths)
        locations = tuple(dict.fromkeys(d.location for d in group if d.location))
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
) -> Judged:
    """Judge one locked release. ``implicit`` custodians are trusted besides the trust file
    (the release a diff replaces, or earlier publishers under trust-on-first-use)."""
    key = dep.package_key
    known = trust.knows(key)
    candidate = find_release(history, dep.version)
    implicit_ids = list(implicit)
    explicit_baseline = bool(implicit_ids)
    if not known and candidate:
        # A package the trust file does not know is judged against its own earlier releases;
        # whether it may enter at all is deps.new-package's question.
        implicit_ids += [c for r in history.predecessors(candidate.version) for c in r.identities]
    trusted = trusted_set(trust, key, implicit_ids)
    baseline = choose_baseline(history, candidate, trusted)
    ctx = SignalContext(
        dependency=dep,
        history=history,
        candidate=candidate,
        baseline=baseline,
        trusted=trusted,
        observations=tuple(observations),
        now=now,
        known_package=known
        or trust.policy.new_packages == "trust-on-first-use"
        or explicit_baseline,
    )
    findings = [f for signal in signals for f in signal(ctx)]
    tier = tier_for(trust.policy, fan_in)
    decision = decide(dep, findings, tier, trust, baseline.version if baseline else None, locations)
    return Judged(decision, ctx)


def judge_all(
    deps: Iterable[LockedDependency],
    histories: Mapping[tuple[Ecosystem, str], PackageHistory],
    trust: TrustFile,
    *,
    observations: Mapping[tuple[Ecosystem, str], Sequence[Observation]],
    now: datetime,
    fan_ins: Mapping[str, int],
    as_of: datetime | None = None,
) -> list[Judged]:
    out = []
    for dep, locations in merge_locked(deps).values():
        history = histories[(dep.ecosystem, dep.name)].as_of(as_of)
        out.append(
            judge_release(
                dep,
                history,
                trust,
                observations=observations.get((dep.ecosystem, dep.name), ()),
                now=now,
                fan_in=fan_ins.get(dep.package_key, 1),
                locations=locations,
            )
        )
    return out
