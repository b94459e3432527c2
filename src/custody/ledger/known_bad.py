"""Known-bad records: OSV malicious-package records imported by ``custody db update``.

One row per record and package. A re-import replaces a record only with one modified at the same
time or later, so an old download never undoes a newer one; a withdrawn record is deleted."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select

from custody.ledger.db import Database, chunked
from custody.ledger.schema import as_utc, known_bad
from custody.model import Ecosystem
from custody.osv import KnownBadRecord, ranges_from_json, ranges_to_json

NAMES_PER_QUERY = 5000  # bound parameters per IN list (SQLite allows 32766)
_t = known_bad
_BY_PACKAGES = select(
    _t.c.id,
    _t.c.ecosystem,
    _t.c.package,
    _t.c.versions,
    _t.c.all_versions,
    _t.c.ranges,
    _t.c.published,
    _t.c.modified,
    _t.c.summary,
).where(_t.c.package.in_(bindparam("packages", expanding=True)))
_MODIFIED = select(_t.c.id, func.max(_t.c.modified).label("modified")).where(
    _t.c.id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: int  # records (ids) written
    kept: int  # records skipped because the ledger holds a newer version of them
    withdrawn: int  # records deleted because they were withdrawn


def store_records(
    db: Database,
    records: Iterable[KnownBadRecord],
    imported_at: datetime,
    withdrawn_ids: Iterable[str] = (),
) -> StoreResult:
    """Store ``records`` (several per id when a record names several packages), replacing the
    stored rows of each id unless the ledger's copy was modified later; delete withdrawn ids."""
    when = as_utc(imported_at, "imported_at")
    by_id: dict[str, list[KnownBadRecord]] = defaultdict(list)
    for record in records:
        group = by_id[record.id]
        if group and _newer(group[0].modified, record.modified):
            continue  # an older copy of a record already seen in this import
        if group and _newer(record.modified, group[0].modified):
            group.clear()
        if all(r.ecosystem != record.ecosystem or r.package != record.package for r in group):
            group.append(record)
    gone = sorted(set(withdrawn_ids) - set(by_id))
    with db.write("storing known-bad records") as conn:
        db.lock(conn, "known_bad")
        stored_modified: dict[str, datetime | None] = {}
        for ids in chunked(sorted(by_id)):
            for row in conn.execute(_MODIFIED.group_by(_t.c.id), {"ids": list(ids)}):
                stored_modified[row.id] = row.modified
        replace = [
            i
            for i, group in by_id.items()
            if i not in stored_modified or not _newer(stored_modified[i], group[0].modified)
        ]
        for ids in chunked([*replace, *gone]):
            conn.execute(delete(_t).where(_t.c.id.in_(ids)))
        rows = [_row(r, when) for i in replace for r in by_id[i]]
        for chunk in chunked(rows, 1000):
            conn.execute(_t.insert(), list(chunk))
    return StoreResult(len(replace), len(by_id) - len(replace), len(gone))


def records_for(
    db: Database, packages: Iterable[tuple[Ecosystem, str]]
) -> dict[tuple[Ecosystem, str], list[KnownBadRecord]]:
    """The records naming any of ``packages`` (names as the ledger keeps them: npm exact, PyPI
    normalised). One query for up to 500 names; only packages with records are keys."""
    wanted = {(Ecosystem(e), n) for e, n in packages}
    names = sorted({n for _, n in wanted})
    out: dict[tuple[Ecosystem, str], list[KnownBadRecord]] = defaultdict(list)
    if not names:
        return {}
    with db.read("reading known-bad records") as conn:
        for chunk in chunked(names, NAMES_PER_QUERY):
            for row in conn.execute(_BY_PACKAGES, {"packages": list(chunk)}):
                key = (Ecosystem(row.ecosystem), row.package)
                if key in wanted:
                    out[key].append(_record(row))
    for group in out.values():
        group.sort(key=lambda r: r.id)
    return dict(out)


def count_records(db: Database) -> int:
    """How many distinct records the ledger holds."""
    with db.read("counting known-bad records") as conn:
        return int(conn.scalar(select(func.count(func.distinct(_t.c.id)))) or 0)


def _newer(a: datetime | None, b: datetime | None) -> bool:
    """Is ``a`` strictly later than ``b`` (unknown is oldest)?"""
    if a is None:
        return False
    return b is None or as_utc(a) > as_utc(b)


def _row(record: KnownBadRecord, when: datetime) -> dict[str, Any]:
    return {
        "id": record.id,
        "ecosystem": record.ecosystem.value,
        "package": record.package,
        "versions": list(record.versions),
        "all_versions": record.all_versions,
        "ranges": ranges_to_json(record.ranges),
        "published": record.published,
        "modified": record.modified,
        "summary": record.summary,
        "imported_at": when,
    }


def _record(row: Any) -> KnownBadRecord:
    return KnownBadRecord(
        id=row.id,
        ecosystem=Ecosystem(row.ecosystem),
        package=row.package,
        versions=tuple(row.versions or ()),
        ranges=ranges_from_json(row.ranges),
        all_versions=bool(row.all_versions),
        modified=row.modified,
        published=row.published,
        summary=row.summary,
    )


__all__: Sequence[str] = ["StoreResult", "count_records", "records_for", "store_records"]
