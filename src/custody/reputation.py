"""The record of a custodian who just took over: how long they have been around, what else they
publish, whether they use provenance. Pure: the caller passes what the ledger and the fetched
histories know; a signal puts the result into a finding's evidence so a reviewer sees the
reputation of whoever published the release."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from custody.ledger.publishes import PublishEvent
from custody.model import Custodian, PackageHistory

MAX_LISTED = 20


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def custodian_record(
    custodian: Custodian,
    *,
    publishes: Sequence[PublishEvent] = (),
    histories: Iterable[PackageHistory] = (),
    account_created: datetime | None = None,
    now: datetime,
) -> dict[str, Any]:
    """A JSON-serialisable record of ``custodian`` as far as Custody knows it.

    ``publishes``: the ledger's publish events of this custodian
    (``ledger.publishes_by(custodian.id, since, now)``). ``histories``: package histories at
    hand (the run's fetched ones), searched for releases this custodian published and whether
    they carried provenance. ``account_created``: where a registry tells it (none of the npm or
    PyPI APIs Custody reads does today), else the record says ``None`` and gives the first
    publish Custody knows of instead. Nothing here is a verdict: "first seen 3 days ago, 40
    packages in an hour" is evidence for a human."""
    events = [e for e in publishes if e.publisher_id == custodian.id and e.published_at <= now]
    releases = []
    for history in histories:
        for r in history.releases:
            if r.publisher == custodian and r.published_at is not None and r.published_at <= now:
                releases.append(r)
    packages = sorted(
        {f"{e.ecosystem.value}:{e.package}" for e in events}
        | {f"{r.ecosystem.value}:{r.name}" for r in releases}
    )
    times = [e.published_at for e in events] + [
        r.published_at for r in releases if r.published_at is not None
    ]
    first = min(times) if times else None
    with_provenance = sum(1 for r in releases if r.provenance is not None)
    record: dict[str, Any] = {
        "custodian": custodian.id,
        "account_created": _iso(account_created),
        "first_publish_seen": _iso(first),
        "days_since_first_publish": round((now - first).total_seconds() / 86400, 1)
        if first
        else None,
        "packages_published": packages[:MAX_LISTED],
        "package_count": len(packages),
        "releases_seen": len(
            {(e.ecosystem, e.package, e.version) for e in events}
            | {(r.ecosystem, r.name, r.version) for r in releases}
        ),
        "releases_with_provenance": with_provenance,
        "provenance_share": round(with_provenance / len(releases), 2) if releases else None,
    }
    return record
