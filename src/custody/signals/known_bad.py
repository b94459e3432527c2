"""Known-bad signal: the locked release is named by an OSV malicious-package record (``MAL-``)
that ``custody db update`` imported into the ledger. ``known.malicious`` blocks.

A record that lists versions condemns exactly those; one with bounded ranges the versions inside
them. A record that covers *every* version of a package (``introduced: "0"`` and no end, no
version list) is read with the package's history, because packages change hands: the old
releases of a once-good package that was later taken over are not condemned. Such a record
condemns a release when

- the release was published less than ``ALL_VERSIONS_MARGIN`` before the record appeared, or
  after it (or its publish time is unknown), or
- the release was published by a custodian who published the releases around the record (the
  ones it is about: those in the margin, and the newest before it), or
- nothing tells otherwise (the record or the release has no date).

An older release by another custodian is not condemned: it gets ``known.malicious-package``
(``high``, holds), saying the package is malicious now and this release predates it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from custody.model import Finding, Release, Severity
from custody.osv import KnownBadRecord, ranges_to_json
from custody.signals.base import SignalContext, package_id

ALL_VERSIONS_MARGIN = timedelta(days=30)
"""How long before an all-versions record appeared a release may have been published and still
be taken as one the record is about (malicious releases are usually reported within days)."""


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def _suspects(ctx: SignalContext, record: KnownBadRecord, cutoff: datetime) -> set[str]:
    """Publishers of the releases an all-versions record is about: those published in the
    margin before it, and the newest release published before it."""
    reported = record.reported_at
    assert reported is not None
    before = [
        r for r in ctx.history.releases if r.published_at is not None and r.published_at <= reported
    ]
    chosen = [r for r in before if r.published_at is not None and r.published_at >= cutoff]
    if before:
        chosen.append(max(before, key=lambda r: r.published_at or cutoff))
    return {r.publisher.id for r in chosen if r.publisher is not None}


def _all_versions(
    ctx: SignalContext, record: KnownBadRecord, cand: Release | None
) -> tuple[bool, str, dict[str, Any]]:
    """Does an all-versions record condemn the candidate? (verdict, reason, evidence)"""
    reported = record.reported_at
    published = cand.published_at if cand else None
    if reported is None or published is None:
        return True, "the record covers every version and nothing dates this release", {}
    cutoff = reported - ALL_VERSIONS_MARGIN
    evidence: dict[str, Any] = {"cutoff": _iso(cutoff)}
    if published >= cutoff:
        return (
            True,
            f"the record covers every version and this release was published "
            f"{'after it' if published > reported else 'shortly before it'}",
            evidence,
        )
    suspects = _suspects(ctx, record, cutoff)
    evidence["suspect_publishers"] = sorted(suspects)
    publisher = cand.publisher.id if cand and cand.publisher else None
    evidence["release_publisher"] = publisher
    if publisher is not None and publisher in suspects:
        return (
            True,
            f"the record covers every version and {publisher} published the releases it is about",
            evidence,
        )
    who = f"by {publisher}, " if publisher else ""
    return (
        False,
        f"the record covers every version, but this release was published {who}"
        f"more than {ALL_VERSIONS_MARGIN.days} days before it"
        + (f" and not by those it is about ({', '.join(sorted(suspects))})" if suspects else "")
        + ": the package was good then",
        evidence,
    )


def malicious(ctx: SignalContext) -> list[Finding]:
    """``known.malicious`` (blocks) and ``known.malicious-package`` (holds)."""
    if not ctx.known_bad:
        return []
    dep = ctx.dependency
    cand = ctx.candidate
    version = cand.version if cand else dep.version
    key = package_id(dep.ecosystem, dep.name)
    findings = []
    for record in ctx.known_bad:
        if package_id(record.ecosystem, record.package) != key:
            continue
        if record.reported_at is not None and record.reported_at > ctx.now:
            continue  # --as-of: not known then
        evidence: dict[str, Any] = {
            "id": record.id,
            "summary": record.summary,
            "versions": list(record.versions),
            "ranges": ranges_to_json(record.ranges),
            "all_versions": record.all_versions,
            "record_published": _iso(record.published),
            "record_modified": _iso(record.modified),
            "release_published_at": _iso(cand.published_at if cand else None),
        }
        how = record.matches_exactly(version)
        if how is not None:
            evidence["matched"] = how
            reason = "lists this version" if how == "version" else "covers it with a version range"
            findings.append(_condemn(record, version, reason, evidence))
            continue
        if not record.all_versions:
            continue
        condemned, reason, extra = _all_versions(ctx, record, cand)
        evidence.update(extra)
        evidence["matched"] = "all-versions" if condemned else None
        if condemned:
            findings.append(_condemn(record, version, reason, evidence))
        else:
            findings.append(
                Finding(
                    "known.malicious-package",
                    Severity.HIGH,
                    f"{record.id}: {dep.name} is a known malicious package now; {version} is "
                    f"not condemned: {reason}. Do not update it; consider replacing it",
                    evidence,
                )
            )
    return findings


def _condemn(
    record: KnownBadRecord, version: str, reason: str, evidence: dict[str, Any]
) -> Finding:
    summary = f" ({record.summary})" if record.summary else ""
    return Finding(
        "known.malicious",
        Severity.CRITICAL,
        f"{record.id}{summary}: {record.package} {version} is known malicious: the record {reason}",
        evidence,
    )
