"""Publish events, for the "publish burst" signal (one publisher releasing many packages within
minutes, as a worm does)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from custody.ledger.db import Database
from custody.ledger.schema import as_utc, publishes
from custody.model import Ecosystem


class PublishEvent(NamedTuple):
    """One release as published by one custodian. A plain 5-tuple in this order works too."""

    ecosystem: Ecosystem
    package: str
    version: str
    publisher_id: str  # custodian id, e.g. "npm:user/alice"
    published_at: datetime


_t = publishes
_BY_PUBLISHER = (
    select(_t.c.ecosystem, _t.c.package, _t.c.version, _t.c.publisher, _t.c.published_at)
    .where(
        _t.c.publisher == bindparam("publisher"),
        _t.c.published_at >= bindparam("since"),
        _t.c.published_at <= bindparam("until"),
    )
    .order_by(_t.c.published_at, _t.c.ecosystem, _t.c.package, _t.c.version)
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
    with db.write() as conn:
        conn.execute(db.insert_ignore(_t), list(rows.values()))


def publishes_by(
    db: Database, publisher_id: str, since: datetime, until: datetime
) -> list[PublishEvent]:
    """Events of ``publisher_id`` with ``since <= published_at <= until``, oldest first."""
    params = {
        "publisher": publisher_id,
        "since": as_utc(since, "since"),
        "until": as_utc(until, "until"),
    }
    with db.read() as conn:
        return [
            PublishEvent(Ecosystem(r.ecosystem), r.package, r.version, r.publisher, r.published_at)
            for r in conn.execute(_BY_PUBLISHER, params)
        ]
