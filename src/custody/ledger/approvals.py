"""Reviews made at the registry firewall (``custody proxy``) and the releases it holds.

Both live in the ledger so that every replica of the proxy sees them:

- ``proxy_reviews``: an append-only log of approvals and denials of exact releases (who, why,
  when). The latest review of a release wins. Replicas poll ``review_marker`` (the highest id,
  one indexed look-up) and read only the rows after the id they have (``reviews_since``).
- ``proxy_packages``: when any replica first judged each package: trust on first use accepts
  the package's history up to then and holds custody changes after it.
- ``proxy_holds``: the releases the proxy currently holds or blocks, with their rules and the
  strongest finding's message, so ``GET /-/custody/holds`` on any replica lists what every
  replica has held. A replica rewrites a package's rows when it judges the package again.

Package names are stored the way the judge compares them: npm exact, PyPI PEP 503 normalised."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, delete, func, select, update

from custody.ledger.db import Database
from custody.ledger.schema import as_utc, known_bad, proxy_holds, proxy_packages, proxy_reviews
from custody.model import Action, Ecosystem

VERDICTS = ("approve", "deny")


class Review(NamedTuple):
    """One approval or denial of one release, made through the proxy's admin API."""

    id: int
    at: datetime
    ecosystem: Ecosystem
    package: str
    version: str
    verdict: str  # "approve" or "deny"
    by: str
    reason: str


class HeldRelease(NamedTuple):
    """A release the proxy holds (``hold``) or blocks (``block``)."""

    ecosystem: Ecosystem
    package: str
    version: str
    action: Action
    rules: tuple[str, ...]
    summary: str
    first_seen: datetime
    last_seen: datetime


class StateMarker(NamedTuple):
    """What a replica polls to notice changes made elsewhere: the newest review id and the
    known-bad records' count and newest import time."""

    reviews: int
    known_bad: int
    known_bad_imported: datetime | None


_r = proxy_reviews
_h = proxy_holds


def add_review(
    db: Database,
    *,
    at: datetime,
    ecosystem: Ecosystem,
    package: str,
    version: str,
    verdict: str,
    by: str,
    reason: str,
) -> Review:
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    values = {
        "at": as_utc(at, "at"),
        "ecosystem": Ecosystem(ecosystem).value,
        "package": package,
        "version": version,
        "verdict": verdict,
        "by": by,
        "reason": reason,
    }
    with db.write("recording a proxy review") as conn:
        new_id = conn.execute(_r.insert().values(**values).returning(_r.c.id)).scalar_one()
    return Review(
        int(new_id), as_utc(at), Ecosystem(ecosystem), package, version, verdict, by, reason
    )


def reviews_since(db: Database, after_id: int = 0, *, limit: int = 10_000) -> list[Review]:
    """Reviews with an id above ``after_id``, oldest first."""
    stmt = select(_r).where(_r.c.id > after_id).order_by(_r.c.id).limit(limit)
    with db.read("reading proxy reviews") as conn:
        return [
            Review(
                int(row.id),
                row.at,
                Ecosystem(row.ecosystem),
                row.package,
                row.version,
                row.verdict,
                row.by,
                row.reason,
            )
            for row in conn.execute(stmt)
        ]


def state_marker(db: Database) -> StateMarker:
    """One round trip: the newest review id and the known-bad table's size and newest import."""
    reviews = select(func.coalesce(func.max(_r.c.id), 0)).scalar_subquery()
    stmt = select(reviews, func.count(), func.max(known_bad.c.imported_at)).select_from(known_bad)
    with db.read("reading the proxy state") as conn:
        row = conn.execute(stmt).one()
    imported = row[2]
    if isinstance(imported, str):  # SQLite: max() over the text column bypasses the type
        imported = datetime.fromisoformat(imported)
    return StateMarker(int(row[0] or 0), int(row[1] or 0), imported)


def replace_holds(
    db: Database,
    ecosystem: Ecosystem,
    package: str,
    held: Sequence[tuple[str, Action, tuple[str, ...], str]],
    seen_at: datetime,
) -> None:
    """Make ``held`` (``(version, action, rules, summary)``) the package's holds: rows for other
    versions go, new ones are added with ``first_seen`` = ``seen_at``, existing ones keep their
    ``first_seen``."""
    eco = Ecosystem(ecosystem).value
    when = as_utc(seen_at, "seen_at")
    versions = [h[0] for h in held]
    mine = and_(_h.c.ecosystem == eco, _h.c.package == package)
    with db.write("recording held releases") as conn:
        db.lock(conn, f"proxy_holds:{eco}:{package}")
        gone = delete(_h).where(mine)
        if versions:
            gone = gone.where(_h.c.version.not_in(versions))
        conn.execute(gone)
        if not held:
            return
        existing = {
            row.version
            for row in conn.execute(select(_h.c.version).where(mine, _h.c.version.in_(versions)))
        }
        fresh = [
            {
                "ecosystem": eco,
                "package": package,
                "version": version,
                "action": Action(action).value,
                "rules": list(rules),
                "summary": summary,
                "first_seen": when,
                "last_seen": when,
            }
            for version, action, rules, summary in held
            if version not in existing
        ]
        if fresh:
            conn.execute(db.insert_ignore(_h), fresh)
        for version, action, rules, summary in held:
            if version in existing:
                conn.execute(
                    update(_h)
                    .where(mine, _h.c.version == version)
                    .values(
                        action=Action(action).value,
                        rules=list(rules),
                        summary=summary,
                        last_seen=when,
                    )
                )


def held_releases(
    db: Database,
    *,
    ecosystem: Ecosystem | None = None,
    package: str | None = None,
    limit: int = 1000,
) -> list[HeldRelease]:
    """Held and blocked releases, the most recently seen first."""
    stmt = select(_h)
    if ecosystem is not None:
        stmt = stmt.where(_h.c.ecosystem == Ecosystem(ecosystem).value)
    if package is not None:
        stmt = stmt.where(_h.c.package == package)
    stmt = stmt.order_by(_h.c.last_seen.desc(), _h.c.package, _h.c.version).limit(limit)
    with db.read("reading held releases") as conn:
        return [
            HeldRelease(
                Ecosystem(row.ecosystem),
                row.package,
                row.version,
                Action(row.action),
                tuple(row.rules),
                row.summary,
                row.first_seen,
                row.last_seen,
            )
            for row in conn.execute(stmt)
        ]


def first_seen(db: Database, ecosystem: Ecosystem, package: str, now: datetime) -> datetime:
    """When any replica first saw the package; records ``now`` if none did."""
    eco = Ecosystem(ecosystem).value
    _p = proxy_packages
    query = select(_p.c.first_seen).where(_p.c.ecosystem == eco, _p.c.package == package)
    with db.read("reading when a package was first seen") as conn:
        found = conn.execute(query).scalar_one_or_none()
    if found is not None:
        return as_utc(found)
    with db.write("recording when a package was first seen") as conn:
        conn.execute(
            db.insert_ignore(_p),
            [{"ecosystem": eco, "package": package, "first_seen": as_utc(now, "now")}],
        )
        return as_utc(conn.execute(query).scalar_one())
