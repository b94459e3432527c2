"""Observations: custody facts the registries keep no history of (current owners, organisation),
recorded as intervals of when Custody saw them: the times the registry answered the looks that
showed them (``PackageHistory.fetched_at``), not when a run happened to reuse that answer.

Each row is one interval ``[first_seen, gone_since)`` of one fact ``(fact, subject, role)``; a
row with ``gone_since`` NULL is open. A fact that disappears and comes back gets a new row, so
its return reads as a new appearance. A role change (Maintainer -> Owner) is the old fact gone and
a new one appearing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from custody.ledger.db import Database, chunked
from custody.ledger.schema import as_utc, observations
from custody.model import Ecosystem, Observation

Fact = tuple[str, str, str | None]  # (fact, subject, role)
Look = tuple[datetime, Iterable[Fact]]
"""What one look at a package's registry document showed: when the registry answered (tz-aware)
and the facts it showed then."""
_Row = Row[*tuple[Any, ...]]

_t = observations
_SELECT = select(
    _t.c.id,
    _t.c.ecosystem,
    _t.c.package,
    _t.c.fact,
    _t.c.subject,
    _t.c.role,
    _t.c.first_seen,
    _t.c.last_seen,
    _t.c.gone_since,
)
_BY_PACKAGES = _SELECT.where(
    _t.c.ecosystem == bindparam("ecosystem"),
    _t.c.package.in_(bindparam("packages", expanding=True)),
)
_BY_ID = _t.c.id == bindparam("row_id")
_WHEN = bindparam("when", type_=_t.c.last_seen.type)
_EXTEND = update(_t).where(_BY_ID).values(last_seen=_WHEN)
_CLOSE = update(_t).where(_BY_ID).values(gone_since=_WHEN)


def observe(
    db: Database, looks: Mapping[tuple[Ecosystem, str], Look]
) -> dict[tuple[Ecosystem, str], list[Observation]]:
    """Record what looks at the registry showed, each package at its own time (when the
    registry answered: ``PackageHistory.fetched_at``); return every observation of the packages
    given, as ``observations_for`` would read them back afterwards.

    For each package given: new facts open an interval, facts still there extend theirs (unless
    their ``last_seen`` is already that late), facts no longer there are closed (``gone_since``
    = the look's time). An empty iterable of facts means the package has no such facts now;
    packages not in ``looks`` are untouched (pass only packages whose owners the registry
    showed). A look older than what the ledger already holds for a package is ignored for it,
    so a slow writer cannot undo a newer one.

    A look that changes nothing (the same document seen again: a warm run answered from fresh
    cache entries) writes nothing: the rows are read first, and only when something must change
    is a write transaction opened, the lock taken and the changing packages read again."""
    wanted: dict[tuple[Ecosystem, str], tuple[datetime, set[Fact]]] = {
        (Ecosystem(eco), package): (as_utc(seen_at, "seen_at"), {(f, s, r) for f, s, r in current})
        for (eco, package), (seen_at, current) in looks.items()
    }
    if not wanted:
        return {}
    with db.read("reading observations") as conn:
        plan = _plan(wanted, _rows(conn, wanted))
    if not plan.changed:
        return plan.result
    result = plan.result
    again = {key: wanted[key] for key in plan.changed}
    with db.write("recording observations") as conn:
        db.lock(conn, "observations")
        # Another writer may have got there first: plan again from what is there now.
        plan = _plan(again, _rows(conn, again))
        # One statement for all rows: every package has its own time, so grouping rows by
        # time made one UPDATE per package (0.2 s for a thousand packages looked at again).
        for statement, by_time in ((_EXTEND, plan.extend), (_CLOSE, plan.close)):
            rows = [{"row_id": i, "when": when} for when, ids in by_time.items() for i in ids]
            if rows:
                conn.execute(statement, rows)
        if plan.inserts:
            conn.execute(_t.insert(), plan.inserts)
    result.update(plan.result)
    return result


@dataclass
class _Plan:
    """What a set of looks does to the rows read: the observations afterwards, and the writes."""

    result: dict[tuple[Ecosystem, str], list[Observation]] = field(default_factory=dict)
    inserts: list[dict[str, Any]] = field(default_factory=list)
    # row ids by their new last_seen / gone_since (each package at its own time)
    extend: defaultdict[datetime, list[int]] = field(default_factory=lambda: defaultdict(list))
    close: defaultdict[datetime, list[int]] = field(default_factory=lambda: defaultdict(list))
    changed: list[tuple[Ecosystem, str]] = field(default_factory=list)  # packages written


def _plan(
    wanted: Mapping[tuple[Ecosystem, str], tuple[datetime, set[Fact]]],
    known: Mapping[tuple[Ecosystem, str], list[_Row]],
) -> _Plan:
    plan = _Plan()
    for key, (when, current) in wanted.items():
        rows = sorted(known.get(key, []), key=lambda r: (r.first_seen, r.id))
        eco, package = key
        latest = max((r.gone_since or r.last_seen for r in rows), default=None)
        if latest is not None and when < latest:
            plan.result[key] = [_observation(eco, r) for r in rows]
            continue
        changes = False
        seen: list[Observation] = []
        still: set[Fact] = set()
        for r in rows:
            last_seen, gone_since = r.last_seen, r.gone_since
            fact = (r.fact, r.subject, r.role)
            if gone_since is None and fact in current:
                still.add(fact)
                if last_seen < when:
                    plan.extend[when].append(r.id)
                    last_seen = when
                    changes = True
            elif gone_since is None:
                plan.close[when].append(r.id)
                gone_since = when
                changes = True
            seen.append(Observation(eco, package, *fact, r.first_seen, last_seen, gone_since))
        new = current - still
        for fact_name, subject, role in sorted(new, key=_sort_key):
            plan.inserts.append(
                {
                    "ecosystem": eco.value,
                    "package": package,
                    "fact": fact_name,
                    "subject": subject,
                    "role": role,
                    "first_seen": when,
                    "last_seen": when,
                    "gone_since": None,
                }
            )
            seen.append(Observation(eco, package, fact_name, subject, role, when, when))
        if changes or new:
            plan.changed.append(key)
        plan.result[key] = seen
    return plan


def observations_for(
    db: Database, ecosystem: Ecosystem, packages: Sequence[str]
) -> dict[str, list[Observation]]:
    """Every observation of ``packages`` (each requested package is a key, possibly with an
    empty list), oldest first."""
    eco = Ecosystem(ecosystem)
    result: dict[str, list[Observation]] = {p: [] for p in packages}
    if not result:
        return result
    with db.read("reading observations") as conn:
        grouped = _rows(conn, ((eco, p) for p in result))
    rows = [r for group in grouped.values() for r in group]
    for r in sorted(rows, key=lambda r: (r.first_seen, r.id)):
        result[r.package].append(_observation(eco, r))
    return result


def _observation(eco: Ecosystem, r: _Row) -> Observation:
    return Observation(
        ecosystem=eco,
        package=r.package,
        fact=r.fact,
        subject=r.subject,
        role=r.role,
        first_seen=r.first_seen,
        last_seen=r.last_seen,
        gone_since=r.gone_since,
    )


def _sort_key(fact: Fact) -> tuple[str, str, str]:
    return (fact[0], fact[1], fact[2] or "")


def _rows(
    conn: Connection, keys: Iterable[tuple[Ecosystem, str]]
) -> dict[tuple[Ecosystem, str], list[_Row]]:
    """All rows of these packages, grouped by package: one query per ecosystem and 500 names."""
    by_eco: dict[Ecosystem, list[str]] = defaultdict(list)
    for eco, package in keys:
        by_eco[eco].append(package)
    found: dict[tuple[Ecosystem, str], list[_Row]] = defaultdict(list)
    for eco, packages in by_eco.items():
        for chunk in chunked(packages):
            params = {"ecosystem": eco.value, "packages": list(chunk)}
            for row in conn.execute(_BY_PACKAGES, params):
                found[(eco, row.package)].append(row)
    return found
