"""A readable custody timeline of one package: who published what and when, maintainers added
and removed, provenance on and off, and what Custody itself observed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from custody.model import Observation, PackageHistory, Release


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime | None
    kind: str  # publish | maintainer-added | maintainer-removed | provenance-on | ...
    version: str | None
    text: str
    data: dict[str, Any] = field(default_factory=dict)


REMOVED_DETAILS = "details removed from the registry when it was unpublished"


def timeline(
    history: PackageHistory,
    observations: Sequence[Observation] = (),
    *,
    as_of: datetime | None = None,
) -> list[Event]:
    """The events of ``history`` (and ``observations``), oldest first.

    ``as_of``: the timeline as it looked then. Releases published later are left out, and a
    release unpublished later is shown as published then, without details: the registry
    removed its publisher, maintainers and provenance when it was unpublished. Pass the full
    history with ``as_of`` rather than ``history.as_of(when)``, which turns such a release into
    a plain one; a release of an already cut history with no custody details and no files is
    recognised as one anyway.

    Maintainer, provenance and repository changes compare each release with the last earlier
    release whose custody is known: never with an unpublished one, which has none."""
    events: list[Event] = []
    previous: Release | None = None  # the last earlier release whose custody is known
    for r in history.releases:
        if as_of is not None and r.published_at is not None and r.published_at > as_of:
            continue  # published later (``PackageHistory.as_of`` drops them the same way)
        if r.unpublished and as_of is None:
            events.append(
                Event(r.published_at, "unpublished", r.version, f"{r.version} (since unpublished)")
            )
            continue
        if r.unpublished or r.details_removed:
            events.append(
                Event(
                    r.published_at,
                    "publish",
                    r.version,
                    f"{r.version} published ({REMOVED_DETAILS})",
                    {"publisher": None, "provenance": None, "details_removed": True},
                )
            )
            continue
        who = r.publisher.id if r.publisher else "unknown publisher"
        prov = f", provenance {r.provenance.kind}" if r.provenance else ""
        src = f" from {r.provenance.source.id}" if r.provenance and r.provenance.source else ""
        events.append(
            Event(
                r.published_at,
                "publish",
                r.version,
                f"{r.version} published by {who}{prov}{src}",
                {
                    "publisher": r.publisher.id if r.publisher else None,
                    "provenance": r.provenance.kind if r.provenance else None,
                },
            )
        )
        if previous is not None:
            if previous.maintainers is not None and r.maintainers is not None:
                for c in sorted(r.maintainers - previous.maintainers, key=str):
                    events.append(
                        Event(
                            r.published_at,
                            "maintainer-added",
                            r.version,
                            f"maintainer added: {c.id}",
                            {"maintainer": c.id},
                        )
                    )
                for c in sorted(previous.maintainers - r.maintainers, key=str):
                    events.append(
                        Event(
                            r.published_at,
                            "maintainer-removed",
                            r.version,
                            f"maintainer removed: {c.id}",
                            {"maintainer": c.id},
                        )
                    )
            if (previous.provenance is None) != (r.provenance is None):
                kind = "provenance-on" if r.provenance else "provenance-off"
                events.append(Event(r.published_at, kind, r.version, kind.replace("-", " ")))
            if previous.repository and r.repository and previous.repository != r.repository:
                events.append(
                    Event(
                        r.published_at,
                        "repository-changed",
                        r.version,
                        f"repository {previous.repository} -> {r.repository}",
                        {"from": previous.repository, "to": r.repository},
                    )
                )
        if r.deprecated:
            events.append(
                Event(r.published_at, "deprecated", r.version, f"deprecated: {r.deprecated}")
            )
        previous = r
    for o in observations:
        events.append(
            Event(
                o.first_seen,
                f"{o.fact}-seen",
                None,
                f"Custody first saw {o.fact} {o.subject}" + (f" ({o.role})" if o.role else ""),
                {"subject": o.subject, "role": o.role},
            )
        )
        if o.gone_since:
            events.append(
                Event(
                    o.gone_since,
                    f"{o.fact}-gone",
                    None,
                    f"Custody saw {o.fact} {o.subject} gone",
                    {"subject": o.subject},
                )
            )
    events.sort(key=lambda e: e.at or _EPOCH)  # stable: releases keep their order
    return events


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
