"""Project inventory: which lockfile of which project locks which release (``custody where``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from custody.ledger.db import Database
from custody.ledger.schema import as_utc, inventory
from custody.model import Ecosystem, LockedDependency


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One locked release in one lockfile of one project, as of the last scan."""

    project: str
    lockfile: str
    ecosystem: Ecosystem
    name: str
    version: str
    direct: bool
    dev: bool
    optional: bool
    paths: tuple[tuple[str, ...], ...]  # chains of package names from the root
    scanned_at: datetime


_t = inventory


def record_inventory(
    db: Database,
    project: str,
    lockfile: str,
    deps: Iterable[LockedDependency],
    scanned_at: datetime,
) -> None:
    """Replace everything known about ``lockfile`` of ``project`` with ``deps``."""
    when = as_utc(scanned_at, "scanned_at")
    rows = [
        {
            "project": project,
            "lockfile": lockfile,
            "ecosystem": Ecosystem(d.ecosystem).value,
            "name": d.name,
            "version": d.version,
            "direct": d.direct,
            "dev": d.dev,
            "optional": d.optional,
            "paths": [list(p) for p in d.paths],
            "scanned_at": when,
        }
        for d in deps
    ]
    with db.write("recording the project inventory") as conn:
        db.lock(conn, "inventory")  # two concurrent replacements must not both insert
        conn.execute(_t.delete().where(_t.c.project == project, _t.c.lockfile == lockfile))
        if rows:
            conn.execute(_t.insert(), rows)


def where(
    db: Database, ecosystem: Ecosystem, name: str, version: str | None = None
) -> list[InventoryEntry]:
    """Where ``name`` (at ``version``, if given) is locked, ordered by project and lockfile."""
    eco = Ecosystem(ecosystem)
    stmt = select(_t).where(_t.c.ecosystem == eco.value, _t.c.name == name)
    if version is not None:
        stmt = stmt.where(_t.c.version == version)
    stmt = stmt.order_by(_t.c.project, _t.c.lockfile, _t.c.version, _t.c.id)
    with db.read("reading the project inventory") as conn:
        return [_entry(r) for r in conn.execute(stmt)]


def all_entries(db: Database) -> list[InventoryEntry]:
    """Every entry of every project, ordered by ecosystem, package, project and lockfile."""
    stmt = select(_t).order_by(_t.c.ecosystem, _t.c.name, _t.c.project, _t.c.lockfile, _t.c.id)
    with db.read("reading the project inventory") as conn:
        return [_entry(r) for r in conn.execute(stmt)]


def _entry(r: Any) -> InventoryEntry:
    return InventoryEntry(
        project=r.project,
        lockfile=r.lockfile,
        ecosystem=Ecosystem(r.ecosystem),
        name=r.name,
        version=r.version,
        direct=r.direct,
        dev=r.dev,
        optional=r.optional,
        paths=tuple(tuple(p) for p in r.paths),
        scanned_at=r.scanned_at,
    )
