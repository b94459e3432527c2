"""Publish events, for the "publish burst" signal (one publisher releasing many packages within
minutes, as a worm does)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from custody.ledger.db import Database, chunked
from custody.ledger.schema import as_utc, publishes
from custody.model import Ecosystem, PublishEvent

__all__ = [
    "PublishEvent",
    "publish_counts",
    "publishes_by",
    "publishes_within",
    "record_publishes",
]

NAMES_PER_QUERY = 5000  # bound parameters per IN list (SQLite allows 32766)
_t = publishes
_BY_PUBLISHERS = (
    select(_t.c.ecosystem, _t.c.package, _t.c.version, _t.c.publisher, _t.c.published_at)
    .where(
        _t.c.publisher.in_(bindparam("publishers", expanding=True)),
        _t.c.published_at >= bindparam("since"),
        _t.c.published_at <= bindparam("until"),
    )
    .order_by(_t.c.publisher, _t.c.published_at, _t.c.ecosystem, _t.c.package, _t.c.version)
)


def record_publishes(
    db: Database, events: Iterable[tuple[Ecosystem, str, str, str, datetime]]
) -> None:
    """Remember these events; one already known (same release and publisher) is kept as is."""
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for eco, package, version, publisher, at in events:
        ecosystem = Ecosystem(eco).value
        rows.setdefault(
            (ecosystem, package, version, publisher),
            {
                "ecosystem": ecosystem,
                "package": package,
                "version": version,
                "publisher": publisher,
                "published_at": as_utc(at, "published_at"),
            },
        )
    if not rows:
        return
    with db.write("recording publish events") as conn:
        conn.execute(db.insert_ignore(_t), list(rows.values()))


def publishes_by(
    db: Database, publisher_id: str, since: datetime, until: datetime
) -> list[PublishEvent]:
    """Events of ``publisher_id`` with ``since <= published_at <= until``, oldest first."""
    return publishes_within(db, {publisher_id: (since, until)})[publisher_id]


def publishes_within(
    db: Database, spans: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, list[PublishEvent]]:
    """For each publisher, its events with ``since <= published_at <= until`` (its span),
    oldest first; every publisher asked for is a key. One read and one query per
    ``NAMES_PER_QUERY`` publishers over the union of the spans, each row then kept only inside
    its own publisher's span (a check asks about a hundred publishers at once)."""
    bounds = {
        who: (as_utc(low, "since"), as_utc(high, "until")) for who, (low, high) in spans.items()
    }
    found: dict[str, list[PublishEvent]] = {who: [] for who in bounds}
    if not bounds:
        return found
    since = min(low for low, _ in bounds.values())
    until = max(high for _, high in bounds.values())
    with db.read("reading publish events") as conn:
        for chunk in chunked(sorted(bounds), NAMES_PER_QUERY):
            params = {"publishers": list(chunk), "since": since, "until": until}
            for r in conn.execute(_BY_PUBLISHERS, params):
                low, high = bounds[r.publisher]
                if low <= r.published_at <= high:
                    found[r.publisher].append(
                        PublishEvent(
                            Ecosystem(r.ecosystem),
                            r.package,
                            r.version,
                            r.publisher,
                            r.published_at,
                        )
                    )
    return found


_COUNTS = (
    select(_t.c.ecosystem, _t.c.package, func.count().label("n"))
    .where(
        _t.c.package.in_(bindparam("packages", expanding=True)),
        _t.c.published_at >= bindparam("since"),
    )
    .group_by(_t.c.ecosystem, _t.c.package)
)


def publish_counts(
    db: Database, packages: Iterable[tuple[Ecosystem, str]], since: datetime
) -> dict[tuple[Ecosystem, str], int]:
    """How many events the ledger holds per package published at or after ``since`` (packages
    with none are absent): lets a caller skip histories it has already recorded."""
    wanted = {(Ecosystem(e), n) for e, n in packages}
    names = sorted({n for _, n in wanted})
    out: dict[tuple[Ecosystem, str], int] = {}
    with db.read("counting publish events") as conn:
        for chunk in chunked(names, NAMES_PER_QUERY):
            params = {"packages": list(chunk), "since": as_utc(since, "since")}
            for row in conn.execute(_COUNTS, params):
                key = (Ecosystem(row.ecosystem), row.package)
                if key in wanted:
                    out[key] = int(row.n)
    return out
