"""Dependency signals: what a release pulls into the tree. They look across packages (the new
dependency's own age and custody, the parent that pulls a new package in), so ``judge_all`` runs
them in a second pass with a ``TreeView`` of the first pass's results. Without a tree (one
release judged alone) they weigh only what the release's own history shows.

The event-stream pattern is the pair: a patch release of a package that just changed hands adds
a dependency on a brand-new package published by the same new custodian."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from custody import versions
from custody.lockfiles.npm import source_kind
from custody.model import DeclaredDependency, Ecosystem, Finding, Release, Severity
from custody.signals.base import SignalContext, TreeEntry

YOUNG = timedelta(days=30)  # a package first published this recently is brand-new
FEW_RELEASES = 2  # ... and one with this many releases or fewer has no track record
ESTABLISHED = timedelta(days=365)  # a package this old with a steady publisher is established
STEADY_PUBLISHER = timedelta(days=90)  # has published the package at least this long

_LEVELS = list(Severity)
_BUMP_BASE = {"patch": Severity.LOW, "minor": Severity.INFO, "major": Severity.INFO}


def _bump(severity: Severity, steps: int) -> Severity:
    index = min(max(severity.rank + steps, Severity.INFO.rank), Severity.CRITICAL.rank)
    return _LEVELS[index]


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


def _published(history_releases: Sequence[Release]) -> list[Release]:
    return [r for r in history_releases if not r.unpublished]


def _extra_only(dep: DeclaredDependency) -> bool:
    """A PyPI requirement that applies only when an extra is requested: its marker mentions
    ``extra`` and is false without one."""
    if not dep.marker or "extra" not in dep.marker:
        return False
    from packaging.markers import InvalidMarker, Marker, UndefinedEnvironmentName

    try:
        return not Marker(dep.marker).evaluate({"extra": ""})
    except (InvalidMarker, UndefinedEnvironmentName):
        return True


# -- deps.added-in-patch ----------------------------------------------------------------------


def _declared(release: Release | None) -> dict[str, DeclaredDependency] | None:
    if release is None or release.dependencies is None:
        return None
    return {d.name: d for d in release.dependencies if d.kind != "dev"}


def _compared(ctx: SignalContext) -> Release | None:
    """What the candidate's dependencies are compared with: the trusted baseline when its
    dependencies are known, else the release just before the candidate."""
    base = ctx.baseline
    if base is not None and base.dependencies is not None:
        return base
    preds = ctx.predecessors
    return preds[-1] if preds and preds[-1].dependencies is not None else None


def _entries_for(ctx: SignalContext, dep: DeclaredDependency) -> tuple[TreeEntry, ...]:
    if ctx.tree is None:
        return ()
    entries = ctx.tree.lookup(ctx.dependency.ecosystem, dep.name)
    if len(entries) < 2:
        return entries  # one entry is the answer whether it fits or not: no range to parse
    fitting = tuple(
        e
        for e in entries
        if versions.satisfies(e.dependency.ecosystem, e.dependency.version, dep.spec)
    )
    return fitting or entries


def _same_trusted_custodian(ctx: SignalContext, entries: Sequence[TreeEntry]) -> bool:
    """The new dependency's locked release was published by the candidate's own publisher, who
    is trusted for the candidate (a package split out of a project by its own maintainers)."""
    cand = ctx.candidate
    if cand is None or cand.publisher is None:
        return False
    if not ctx.trusted.trusts(cand.publisher, cand.published_at):
        return False
    return any(e.candidate is not None and e.candidate.publisher == cand.publisher for e in entries)


def _dependency_risk(
    ctx: SignalContext, dep: DeclaredDependency, at: datetime
) -> tuple[int, list[str], dict[str, Any]]:
    """Steps to add for the new dependency's own risk, the reasons, and its evidence."""
    info: dict[str, Any] = {"name": dep.name, "spec": dep.spec, "kind": dep.kind}
    if dep.marker:
        info["marker"] = dep.marker
    steps, reasons = 0, []
    if _extra_only(dep):
        steps -= 1
        reasons.append(f"{dep.name} only for an extra")
    if ctx.tree is None:
        return steps, reasons, info
    entries = _entries_for(ctx, dep)
    if not entries:
        info["in_tree"] = False
        return steps - 1, [*reasons, f"{dep.name} is not installed in this tree"], info
    info["in_tree"] = True
    info["locked"] = sorted({e.dependency.version for e in entries})
    new = any(e.new for e in entries)
    info["new_to_tree"] = new
    history = next((e.history for e in entries if e.history is not None), None)
    young = few = False
    if history is not None:
        released = _published(history.releases)
        first = released[0].published_at if released else None
        info["releases"] = len(released)
        info["first_published"] = _iso(first)
        young = first is not None and at - first < YOUNG
        few = len(released) <= FEW_RELEASES
    held = sorted({f.rule for e in entries if e.held for f in e.findings})
    if held:
        info["own_findings"] = held
    if new:
        # the trust file names nobody for a new package: its custody.* findings only restate
        # that it is new, which is weighed here already
        held = [rule for rule in held if not rule.startswith("custody.")]
        steps += 1
        reasons.append(f"{dep.name} enters the tree with it")
        if young or few:
            steps += 1
            reasons.append(
                f"{dep.name} is brand-new ({info.get('releases')} releases, first "
                f"{info.get('first_published')})"
                if young
                else f"{dep.name} has only {info.get('releases')} releases"
            )
        if _same_trusted_custodian(ctx, entries):
            steps -= 1
            reasons.append(f"{dep.name} is published by the same trusted custodian")
    elif not held:
        steps -= 1
        reasons.append(f"{dep.name} is already in the tree and trusted")
    if held:
        steps += 1
        reasons.append(f"{dep.name} is held itself ({', '.join(held)})")
    return steps, reasons, info


def added_in_patch(ctx: SignalContext) -> list[Finding]:
    """``deps.added-in-patch``: the release declares dependencies (npm dependencies, optional
    and peer; PyPI Requires-Dist) that the release it is compared with did not. From ``low``
    for a patch (``info`` for a minor or major), stronger with each new dependency's own risk
    (new to the tree, and then brand-new or with few releases; held itself), weaker when it is
    already in the tree and trusted, published by the same trusted custodian, not installed
    here, or only for an extra. One finding per release; the strongest
    new dependency decides."""
    cand = ctx.candidate
    if cand is None or not cand.dependencies:
        return []  # declares nothing (or unknown): adds nothing
    now_deps = _declared(cand)
    compared = _compared(ctx)
    before = _declared(compared)
    if now_deps is None or compared is None or before is None:
        return []
    eco = ctx.dependency.ecosystem
    repointed = [
        d
        for name, d in sorted(now_deps.items())
        if name in before and off_registry(eco, d.spec) and not off_registry(eco, before[name].spec)
    ]
    if repointed:
        return [_repointed(cand, compared, repointed, before)]
    if now_deps.keys() <= before.keys():
        return []
    added = [d for name, d in sorted(now_deps.items()) if name not in before]
    if not added:
        return []
    step = versions.bump(eco, compared.version, cand.version)
    kind = step.kind if step is not None else "unknown"
    base = _BUMP_BASE.get(kind, Severity.LOW)
    at = cand.published_at or ctx.now
    best_steps, best_reasons, details = None, [], []
    for dep in added:
        steps, reasons, info = _dependency_risk(ctx, dep, at)
        details.append(info)
        if best_steps is None or steps > best_steps:
            best_steps, best_reasons = steps, reasons
    severity = _bump(base, best_steps or 0)
    names = ", ".join(d.name for d in added)
    label = {"patch": "a patch", "minor": "a minor", "major": "a major"}.get(kind, "a")
    return [
        Finding(
            "deps.added-in-patch",
            severity,
            f"{cand.version} ({label} release after {compared.version}) adds "
            f"{'a dependency' if len(added) == 1 else 'dependencies'}: {names}"
            + (": " + "; ".join(best_reasons) if best_reasons else ""),
            {
                "bump": kind,
                "from_version": compared.version,
                "prerelease": bool(step and step.prerelease),
                "downgrade": bool(step and step.downgrade),
                "added": details,
                "weighed": best_reasons,
            },
        )
    ]


def off_registry(ecosystem: Ecosystem, spec: str) -> bool:
    """Does a declared dependency take its code from elsewhere than the registry: an npm spec
    the lockfile reader would not resolve from the registry (git, URL, file, ``user/repo``), or
    a PEP 508 direct reference (``name @ URL``, kept as ``[extras]@ URL``)?"""
    if ecosystem is Ecosystem.NPM:
        return source_kind(spec, resolved=False) != "registry"
    return "@ " in spec


def _repointed(
    cand: Release,
    compared: Release,
    repointed: Sequence[DeclaredDependency],
    before: dict[str, DeclaredDependency],
) -> Finding:
    """A dependency the compared release took from the registry now comes from git, a URL or a
    file: code with no registry custody, which no lockfile of the consumer pins by digest."""
    shown = "; ".join(f"{d.name} from {d.spec} (was {before[d.name].spec})" for d in repointed)
    return Finding(
        "deps.added-in-patch",
        Severity.MEDIUM,
        f"{cand.version} takes dependencies from outside the registry that {compared.version} "
        f"took from it: {shown}",
        {
            "from_version": compared.version,
            "repointed": [
                {"name": d.name, "spec": d.spec, "was": before[d.name].spec} for d in repointed
            ],
        },
    )


# -- deps.new-package -------------------------------------------------------------------------


def _parents(ctx: SignalContext) -> list[TreeEntry]:
    """The tree entries that pull this package in: named in its lockfile paths, or declaring
    it as a dependency."""
    if ctx.tree is None:
        return []
    eco = ctx.dependency.ecosystem
    names = {p[-2] for p in ctx.dependency.paths if len(p) >= 2}
    found: dict[str, TreeEntry] = {}
    for name in sorted(names):
        for e in ctx.tree.lookup(eco, name):
            found[e.dependency.key] = e
    for e in ctx.tree.dependents(eco, ctx.dependency.name):
        found.setdefault(e.dependency.key, e)
    return [found[k] for k in sorted(found)]


def _takeovers(ctx: SignalContext, publishers: set[str]) -> list[dict[str, Any]]:
    """Parents whose locked release was published by a new custodian (a first-pass
    ``custody.new-publisher`` finding) who also publishes this package."""
    out = []
    for parent in _parents(ctx):
        pub = parent.candidate.publisher if parent.candidate else None
        if pub is None or pub.id not in publishers:
            continue
        finding = next((f for f in parent.findings if f.rule == "custody.new-publisher"), None)
        if finding is None:
            continue
        declared = _declared(parent.candidate) or {}
        out.append(
            {
                "parent": parent.dependency.package_key,
                "version": parent.dependency.version,
                "publisher": pub.id,
                "parent_finding_severity": finding.severity.value,
                "declares_it": ctx.dependency.name in declared,
            }
        )
    return out


def new_package(ctx: SignalContext) -> list[Finding]:
    """``deps.new-package``: the package has no entry in the trust file (it entered the tree
    after ``custody init``). From ``medium`` under ``new-packages = "review"``; ``high`` when it
    is brand-new (first published within ``YOUNG``) or an old package whose publisher only just
    started publishing it; ``critical`` when the custodian who just took over a package that
    pulls it in also publishes it (event-stream and flatmap-stream). One step lower under
    ``trust-on-first-use``."""
    if ctx.known_package:
        return []
    dep = ctx.dependency
    cand = ctx.candidate
    released = _published(ctx.history.releases)
    publishers = sorted({r.publisher.id for r in released if r.publisher})
    first = released[0].published_at if released else None
    at = ctx.now
    evidence: dict[str, Any] = {
        "direct": dep.direct,
        "paths": [list(p) for p in dep.paths],
        "publisher": cand.publisher.id if cand and cand.publisher else None,
        "publishers": publishers[-10:],
        "releases": len(released),
        "first_published": _iso(first),
        "policy": ctx.policy.new_packages,
    }
    severity = Severity.MEDIUM
    reasons: list[str] = []
    age = at - first if first is not None else None
    if age is not None:
        evidence["age_days"] = _days(age)
    young = age is not None and age < YOUNG
    if young:
        severity = Severity.HIGH
        reasons.append(f"brand-new: first published {_days(age or timedelta(0)):g} days ago")
    if len(released) <= FEW_RELEASES:
        reasons.append(f"{len(released)} release{'s' if len(released) != 1 else ''} so far")

    publisher = cand.publisher if cand else None
    if publisher is not None:
        own = [r for r in released if r.publisher == publisher]
        since = own[0].published_at if own else None
        evidence["publisher_releases"] = len(own)
        evidence["publisher_first_published"] = _iso(since)
        if since is not None:
            tenure = at - since
            evidence["publisher_tenure_days"] = _days(tenure)
            if not young and tenure < STEADY_PUBLISHER and len(own) < len(released):
                severity = Severity.HIGH
                reasons.append(
                    f"{publisher.id} only started publishing it {_days(tenure):g} days ago, "
                    f"after {len(released) - len(own)} releases by others"
                )
            elif (
                age is not None
                and age >= ESTABLISHED
                and tenure >= STEADY_PUBLISHER
                and len(released) > FEW_RELEASES
            ):
                reasons.append(
                    f"established: {len(released)} releases since {_iso(first)}, "
                    f"{publisher.id} publishing it for {_days(tenure):g} days"
                )

    takeovers = _takeovers(ctx, set(publishers))
    if takeovers:
        severity = Severity.CRITICAL
        evidence["parent_takeover"] = takeovers
        parents = ", ".join(f"{t['parent']}@{t['version']}" for t in takeovers)
        reasons.append(
            f"pulled in by {parents}, just taken over by {takeovers[0]['publisher']}, who also "
            f"publishes {dep.name}"
        )

    if ctx.policy.new_packages == "trust-on-first-use":
        severity = _bump(severity, -1)
        reasons.append("new-packages = trust-on-first-use: one step lower")
    evidence["weighed"] = reasons
    how = (
        f"`custody trust {dep.package_key} --custodian ID` or `custody approve {dep.key}`"
        if ctx.policy.new_packages == "review"
        else f"`custody approve {dep.key}`"
    )
    return [
        Finding(
            "deps.new-package",
            severity,
            f"{dep.package_key} is not in the trust file"
            + (": " + "; ".join(reasons) if reasons else "")
            + f". Review it, then {how}",
            evidence,
        )
    ]
