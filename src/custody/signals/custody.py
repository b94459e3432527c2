"""Custody signals: who published a release, who could, and what identity built it.

Each finding's severity weighs the evidence, because most publisher changes are benign: a
co-maintainer listed for years publishing for the first time is a weak signal; an account
added days before a patch release that also replaced every earlier maintainer is a strong one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from custody.model import Custodian, Finding, Observation, Release, Severity
from custody.signals.base import SignalContext
from custody.trust._ids import split_workflow

LONG_STANDING = timedelta(days=90)  # listed this long before publishing: a co-maintainer
RECENT = timedelta(days=30)  # listed this short a time before publishing: a hand-over pattern
TEAM = 3  # earlier maintainers who stay listed: an established team, not a hand-over

_LEVELS = list(Severity)


def _bump(severity: Severity, steps: int) -> Severity:
    index = min(max(severity.rank + steps, Severity.INFO.rank), Severity.CRITICAL.rank)
    return _LEVELS[index]


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


def _first_listed(releases: Sequence[Release], custodian: Custodian) -> Release | None:
    """The earliest release whose maintainer list names ``custodian``."""
    for r in releases:
        if r.maintainers and custodian in r.maintainers:
            return r
    return None


def _first_listings(
    releases: Sequence[Release], custodians: Iterable[Custodian]
) -> dict[Custodian, Release]:
    """``_first_listed`` for several custodians in one pass: the earliest release naming each
    of them (those never named are left out). Intersecting the sets uses the hashes they
    store, where a membership test per custodian and release would hash it every time."""
    wanted = set(custodians)
    found: dict[Custodian, Release] = {}
    for r in releases:
        if not wanted:
            break
        if r.maintainers:
            named = wanted & r.maintainers
            for c in named:
                found[c] = r
            wanted -= named
    return found


def _same_source(a: Release | None, b: Release | None) -> bool:
    if not a or not b or not a.provenance or not b.provenance:
        return False
    sa, sb = a.provenance.source, b.provenance.source
    if sa is None or sb is None:
        return False
    if sa.numeric_id and sb.numeric_id:
        return sa.numeric_id == sb.numeric_id
    return sa.id.lower() == sb.id.lower()


def _continuing_team(base: Release | None, cand: Release) -> frozenset[Custodian]:
    """Maintainers of the trusted release still listed with the candidate."""
    if base is None or base.maintainers is None or cand.maintainers is None:
        return frozenset()
    return base.maintainers & cand.maintainers


def _repository_moved(base: Release | None, cand: Release) -> bool:
    return bool(
        base
        and base.repository
        and cand.repository
        and base.repository.lower() != cand.repository.lower()
    )


def _dependency_names(release: Release | None) -> set[str] | None:
    if release is None or release.dependencies is None:
        return None
    return {d.name for d in release.dependencies if d.kind != "dev"}


def _built_by_trusted_source(ctx: SignalContext, cand: Release) -> bool:
    """The release's signed provenance names a source repository (and workflow) the trust file
    trusts, and its verification did not fail: the account that uploaded it (a CI identity
    under npm trusted publishing, a bot token) is then not what custody rests on."""
    prov = cand.provenance
    return (
        prov is not None
        and prov.verified is not False
        and ctx.trusted.trusts(prov.source, cand.published_at, prov.workflow)
    )


def new_publisher(ctx: SignalContext) -> list[Finding]:
    """``custody.new-publisher``: the release was published by an identity outside the trusted
    set. Severity from tenure as a listed maintainer, provenance continuity, what else the
    release changes, and whether the earlier custodians were removed."""
    cand = ctx.candidate
    if cand is None or cand.publisher is None:
        return []
    at = cand.published_at
    if ctx.trusted.trusts(cand.publisher, at) or _built_by_trusted_source(ctx, cand):
        return []
    publisher = cand.publisher
    preds = ctx.predecessors
    trusted_before = {
        r.publisher
        for r in preds
        if r.publisher is not None and ctx.trusted.trusts(r.publisher, r.published_at)
    }
    evidence: dict[str, object] = {
        "publisher": publisher.id,
        "published_at": _iso(at),
        "trusted_publishers": sorted(c.id for c in trusted_before),
    }
    reasons: list[str] = []

    earlier = [r for r in preds if r.publisher == publisher]
    listed = _first_listed([*preds, cand], publisher)
    tenure: timedelta | None = None
    if listed is not None and listed.published_at and at:
        tenure = at - listed.published_at
        evidence["listed_maintainer_since"] = _iso(listed.published_at)
        evidence["listed_since_version"] = listed.version
        evidence["tenure_days"] = _days(tenure)
    if earlier:
        evidence["earlier_releases_by_publisher"] = [r.version for r in earlier[-5:]]

    if earlier and earlier[0].published_at and at and at - earlier[0].published_at >= LONG_STANDING:
        severity = Severity.LOW
        reasons.append(f"has published this package since {earlier[0].version}")
    elif cand.by_shared_ci:
        # npm trusted publishing: a CI system the package's maintainers configured published
        # it; it is never a listed maintainer, so tenure says nothing. The provenance does.
        severity = Severity.MEDIUM
        reasons.append("published through npm trusted publishing, a CI identity")
    elif tenure is not None and tenure >= LONG_STANDING:
        severity = Severity.LOW
        reasons.append(f"listed as a maintainer for {_days(tenure):g} days")
    elif tenure is not None and tenure <= RECENT:
        severity = Severity.HIGH
        reasons.append(
            "first listed as a maintainer with this release"
            if listed is cand
            else f"listed as a maintainer only {_days(tenure):g} days before"
        )
    elif listed is None and cand.maintainers is not None:
        severity = Severity.HIGH
        reasons.append("not a listed maintainer")
    else:
        severity = Severity.MEDIUM
        if tenure is None:
            reasons.append("maintainer tenure unknown")

    if _same_source(ctx.baseline, cand):
        severity = _bump(severity, -2)
        reasons.append("provenance from the same source repository as the trusted release")
        evidence["provenance_source"] = (
            cand.provenance.source.id if cand.provenance and cand.provenance.source else None
        )

    if trusted_before and cand.maintainers is not None and not trusted_before & cand.maintainers:
        severity = _bump(severity, 1)
        reasons.append("no earlier trusted publisher is still a maintainer (a hand-over)")
        evidence["removed_custodians"] = sorted(c.id for c in trusted_before)

    base = ctx.baseline
    added = (_dependency_names(cand) or set()) - (_dependency_names(base) or set())
    if base is None or _dependency_names(base) is None:
        added = set()
    scripts = set(cand.install_scripts) - set(base.install_scripts) if base else set()
    if added:
        severity = _bump(severity, 1)
        reasons.append("the release also adds dependencies: " + ", ".join(sorted(added)))
        evidence["added_dependencies"] = sorted(added)
    if scripts:
        severity = _bump(severity, 1)
        reasons.append("the release also adds install scripts")
        evidence["added_install_scripts"] = sorted(scripts)

    team = _continuing_team(base, cand)
    if len(team) >= TEAM and not added and not scripts and not _repository_moved(base, cand):
        # A new member of an established team, publishing a release that changes nothing
        # else about the package's custody: how monorepo teams grow, not how hand-overs look.
        severity = _bump(severity, -2)
        reasons.append(
            f"joins {len(team)} maintainers who all stay; no new dependencies, install "
            "scripts or repository"
        )
        evidence["continuing_maintainers"] = sorted(c.id for c in team)

    evidence["weighed"] = reasons
    since = f" (trusted release {ctx.baseline.version})" if ctx.baseline else ""
    message = (
        f"{cand.version} was published by {publisher.id}, who is not a trusted custodian{since}"
        + (": " + "; ".join(reasons) if reasons else "")
    )
    return [Finding("custody.new-publisher", severity, message, evidence)]


def new_maintainer(ctx: SignalContext) -> list[Finding]:
    """``custody.new-maintainer``: maintainers listed with the release (npm) or owners observed
    by Custody (PyPI, devpi) that were not there at the trusted release."""
    cand = ctx.candidate
    if cand is None:
        return []
    findings: list[Finding] = []
    base = ctx.baseline
    if cand.maintainers is not None and base is not None and base.maintainers is not None:
        newly_listed = cand.maintainers - base.maintainers
        added = (
            sorted(
                (c for c in newly_listed if not ctx.trusted.trusts(c, cand.published_at)),
                key=lambda c: c.id,
            )
            if newly_listed  # usually nobody: skip the sorting
            else []
        )
        removed = sorted(c.id for c in base.maintainers - cand.maintainers) if added else []
        first_listed = _first_listings([*ctx.predecessors, cand], added) if added else {}
        for c in added:
            listed = first_listed.get(c)
            severity = Severity.LOW
            why = []
            gap = (
                cand.published_at - listed.published_at
                if listed and listed.published_at and cand.published_at
                else None
            )
            if c == cand.publisher:
                why.append("and published this release (weighed in custody.new-publisher)")
            if gap is not None and gap <= RECENT and not (base.maintainers & cand.maintainers):
                severity = _bump(severity, 1)
                why.append("while every earlier maintainer was removed")
            findings.append(
                Finding(
                    "custody.new-maintainer",
                    severity,
                    f"{c.id} became a maintainer of {cand.name} after trusted release "
                    f"{base.version}" + (" " + " ".join(why) if why else ""),
                    {
                        "maintainer": c.id,
                        "first_listed_version": listed.version if listed else cand.version,
                        "first_listed_at": _iso(listed.published_at if listed else None),
                        "days_before_release": _days(gap) if gap is not None else None,
                        "removed_maintainers": removed,
                        "trusted_release": base.version,
                    },
                )
            )
    if cand.maintainers is None or base is None or base.maintainers is None:
        # Only where the releases themselves do not list their maintainers (npm does): the
        # owners Custody saw between its looks stand in for them.
        findings.extend(_observed_new_owners(ctx))
    return findings


def _observed_new_owners(ctx: SignalContext) -> list[Finding]:
    """Owners that appeared between two of Custody's looks at the package (registries that show
    only today's owners). An owner present at Custody's first look is not new; a role change
    (Maintainer -> Owner) continues a stint, it does not start one: a newcomer promoted later
    is still the newcomer, an old hand promoted is still not new."""
    cand = ctx.candidate
    now = ctx.now
    owners = [o for o in ctx.observations if o.fact == "owner" and o.first_seen <= now]
    if cand is None or len(owners) < 2:
        return []  # a single owner was there at the first look
    first_look = min(o.first_seen for o in owners)
    published = cand.published_at
    findings = []
    for stint in _stints(owners):
        arrived, last = stint[0].first_seen, stint[-1]
        ends = [x.gone_since for x in stint]
        left = None if None in ends else max(e for e in ends if e is not None)
        if arrived <= first_look:
            continue
        if left and left <= now and (published is None or left <= published):
            continue  # gone before the release was published; one that left after it did
            # still counts (removing itself must not clear the release it published)
        custodian = Custodian(last.subject)
        if ctx.trusted.trusts(custodian, arrived):
            continue
        previous_look = max(
            (x.last_seen for x in owners if x.last_seen < arrived), default=first_look
        )
        after = published is not None and published >= previous_look
        severity = Severity.MEDIUM if after or cand.publisher == custodian else Severity.LOW
        if cand.publisher == custodian:
            severity = Severity.HIGH
        findings.append(
            Finding(
                "custody.new-maintainer",
                severity,
                f"{last.subject} became an owner of {cand.name} ({last.role or 'owner'}) "
                f"between {_iso(previous_look)} and {_iso(arrived)}"
                + (f"; {cand.version} was published after that" if after else ""),
                {
                    "maintainer": last.subject,
                    "role": last.role,
                    "absent_at": _iso(previous_look),
                    "first_seen": _iso(arrived),
                    "release_published_at": _iso(published),
                    "source": "ledger observations",
                },
            )
        )
    return findings


def _stints(owners: Sequence[Observation]) -> list[list[Observation]]:
    """Each subject's rows in unbroken runs: a row that opened when (or before) the subject's
    previous row closed continues the run (a role change); one after a gap starts a new run
    (the subject left and came back)."""
    by_subject: dict[str, list[Observation]] = {}
    for o in sorted(owners, key=lambda o: o.first_seen):
        by_subject.setdefault(o.subject, []).append(o)
    stints: list[list[Observation]] = []
    for rows in by_subject.values():
        current = [rows[0]]
        for row in rows[1:]:
            ended = [x.gone_since for x in current]
            if None in ended or row.first_seen <= max(e for e in ended if e is not None):
                current.append(row)
            else:
                stints.append(current)
                current = [row]
        stints.append(current)
    return stints


def provenance_downgrade(ctx: SignalContext) -> list[Finding]:
    """``custody.provenance-downgrade``: the release before it carried provenance or trusted
    publishing and this one does not (the pattern of a stolen token publishing by hand)."""
    cand = ctx.candidate
    if cand is None or cand.provenance is not None:
        return []
    preds = ctx.predecessors
    last = next((i for i in range(len(preds) - 1, -1, -1) if preds[i].provenance), None)
    if last is None:
        return []
    previous, without = preds[last], preds[last + 1 :]
    if any(ctx.trusted.approved(r.version) for r in without):
        return []  # a person reviewed a release without provenance since: the drop is accepted
    first = without[0].published_at if without else None
    if first and cand.published_at and cand.published_at - first >= LONG_STANDING:
        return []  # the package has been published without provenance for months
    prov = previous.provenance
    assert prov is not None
    with_prov = [r.version for r in preds if r.provenance is not None]
    return [
        Finding(
            "custody.provenance-downgrade",
            Severity.HIGH,
            f"{cand.version} has no provenance, but {previous.version} was published with "
            f"{prov.kind} provenance"
            + (f" from {prov.source.id}" if prov.source else "")
            + (
                f" (and {len(without)} later release(s) without it were never approved)"
                if without
                else ""
            ),
            {
                "previous_version": previous.version,
                "previous_provenance": prov.kind,
                "previous_source": prov.source.id if prov.source else None,
                "releases_with_provenance": len(with_prov),
                "without_provenance_since": [r.version for r in without[-5:]],
                "publisher": cand.publisher.id if cand.publisher else None,
            },
        )
    ]


def provenance_source_changed(ctx: SignalContext) -> list[Finding]:
    """``custody.provenance-source-changed``: provenance from another repository or workflow
    than the trusted release's. A renamed repository (same numeric id) is only noted."""
    cand, base = ctx.candidate, ctx.baseline
    if not cand or not base or not cand.provenance or not base.provenance:
        return []
    a, b = base.provenance, cand.provenance
    if a.source is None or b.source is None:
        return []
    evidence = {
        "trusted_source": a.source.id,
        "trusted_source_id": a.source.numeric_id,
        "source": b.source.id,
        "source_id": b.source.numeric_id,
        "trusted_workflow": a.workflow,
        "workflow": b.workflow,
        "verified": b.verified,
    }
    if _same_source(base, cand):
        if a.source.id.lower() != b.source.id.lower():
            return [
                Finding(
                    "custody.provenance-source-changed",
                    Severity.INFO,
                    f"source repository renamed from {a.source.id} to {b.source.id} "
                    "(same repository id)",
                    evidence,
                )
            ]
        if a.workflow and b.workflow and a.workflow != b.workflow:
            reason = ctx.trusted.reason(b.source, cand.published_at, b.workflow)
            if reason is not None and split_workflow(reason)[1] is not None:
                return []  # an entry bound to this very workflow trusts it
            return [
                Finding(
                    "custody.provenance-source-changed",
                    Severity.MEDIUM,
                    f"{cand.version} was built by workflow {b.workflow}, not {a.workflow}",
                    evidence,
                )
            ]
        return []
    if ctx.trusted.trusts(b.source, cand.published_at, b.workflow):
        return []
    return [
        Finding(
            "custody.provenance-source-changed",
            Severity.HIGH,
            f"{cand.version} was built from {b.source.id}, but trusted release {base.version} "
            f"from {a.source.id}",
            evidence,
        )
    ]


def repository_changed(ctx: SignalContext) -> list[Finding]:
    """``custody.repository-changed``: the declared source repository changed. Weak alone
    (projects move between organisations); stronger with an untrusted publisher."""
    cand, base = ctx.candidate, ctx.baseline
    if not cand or not base or not cand.repository or not base.repository:
        return []
    if cand.repository.lower() == base.repository.lower():
        return []
    untrusted = cand.publisher is not None and not ctx.trusted.trusts(
        cand.publisher, cand.published_at
    )
    same_name = (
        cand.repository.rstrip("/").rsplit("/", 1)[-1].lower()
        == base.repository.rstrip("/").rsplit("/", 1)[-1].lower()
    )
    severity = Severity.MEDIUM if untrusted else (Severity.INFO if same_name else Severity.LOW)
    return [
        Finding(
            "custody.repository-changed",
            severity,
            f"declared repository changed from {base.repository} to {cand.repository}",
            {"from": base.repository, "to": cand.repository, "trusted_release": base.version},
        )
    ]
