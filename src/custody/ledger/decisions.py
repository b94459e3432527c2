"""The audit log of decisions made by ``custody check`` and the proxy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select

from custody.ledger.db import Database
from custody.ledger.schema import as_utc, decisions
from custody.model import Action, Decision, Ecosystem


class DecisionRecord(NamedTuple):
    at: datetime
    ecosystem: Ecosystem
    package: str
    version: str
    action: Action
    rules: tuple[str, ...]  # rule ids of the findings behind the action
    source: str  # "check", "proxy"

    @classmethod
    def from_decision(cls, decision: Decision, *, at: datetime, source: str) -> DecisionRecord:
        rules = tuple(dict.fromkeys(f.rule for f in decision.findings))
        return cls(
            at,
            decision.ecosystem,
            decision.package,
            decision.version,
            decision.action,
            rules,
            source,
        )


_t = decisions


def record_decisions(db: Database, records: Iterable[DecisionRecord]) -> None:
    rows = [
        {
            "at": as_utc(r.at, "at"),
            "ecosystem": Ecosystem(r.ecosystem).value,
            "package": r.package,
            "version": r.version,
            "action": Action(r.action).value,
            "rules": list(r.rules),
            "source": r.source,
        }
        for r in records
    ]
    if not rows:
        return
    with db.write("recording decisions") as conn:
        conn.execute(_t.insert(), rows)


def recent_decisions(
    db: Database,
    *,
    ecosystem: Ecosystem | None = None,
    package: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[DecisionRecord]:
    """The latest decisions first, optionally for one package or since a time."""
    stmt = select(_t)
    if ecosystem is not None:
        stmt = stmt.where(_t.c.ecosystem == Ecosystem(ecosystem).value)
    if package is not None:
        stmt = stmt.where(_t.c.package == package)
    if since is not None:
        stmt = stmt.where(_t.c.at >= as_utc(since, "since"))
    stmt = stmt.order_by(_t.c.at.desc(), _t.c.id.desc()).limit(limit)
    with db.read("reading the decision log") as conn:
        return [
            DecisionRecord(
                r.at,
                Ecosystem(r.ecosystem),
                r.package,
                r.version,
                Action(r.action),
                tuple(r.rules),
                r.source,
            )
            for r in conn.execute(stmt)
        ]
