"""Observations are recorded at the time the registry answered (``PackageHistory.fetched_at``),
not at the time of the run: a warm run that reuses fresh cache entries writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from custody import watch
from custody.engine import Fetched, record_observations
from custody.ledger import Ledger
from custody.model import Custodian, Ecosystem, LockedDependency, OwnerRole, PackageHistory
from custody.registries.config import RegistrySettings

NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI
FETCHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # when the registry answered
NOW = FETCHED + timedelta(days=3)  # when the run happens, answered from the cache


def _history(name: str, fetched_at: datetime, *owners: str, eco: Ecosystem = NPM) -> PackageHistory:
    return PackageHistory(
        eco,
        name,
        "http://127.0.0.1:1/",
        fetched_at,
        current_owners=tuple(OwnerRole(Custodian(f"{eco.value}:user/{o}")) for o in owners),
    )


@contextmanager
def _statements(ledger: Ledger) -> Iterator[list[str]]:
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(ledger.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(ledger.engine, "before_cursor_execute", record)


def _times(ledger: Ledger, eco: Ecosystem, name: str) -> list[tuple[str, datetime, datetime]]:
    return [(o.subject, o.first_seen, o.last_seen) for o in ledger.observations(eco, [name])[name]]


def test_recorded_at_each_historys_fetched_at_not_now(ledger: Ledger) -> None:
    other = FETCHED + timedelta(hours=5)
    got = record_observations(
        ledger,
        [_history("a", FETCHED, "alice"), _history("b", other, "bob", eco=PYPI)],
        NOW,
    )
    assert _times(ledger, NPM, "a") == [("npm:user/alice", FETCHED, FETCHED)]
    assert _times(ledger, PYPI, "b") == [("pypi:user/bob", other, other)]
    assert got[(NPM, "a")] == ledger.observations(NPM, ["a"])["a"]


def test_a_warm_run_writes_nothing_and_a_refresh_extends(ledger: Ledger) -> None:
    histories = [_history(f"p{i}", FETCHED, "alice", "bob") for i in range(3)]
    first = record_observations(ledger, histories, NOW)
    with _statements(ledger) as sent:
        again = record_observations(ledger, histories, NOW + timedelta(hours=1))
    assert again == first
    assert not {"INSERT", "UPDATE", "DELETE"} & set(sent), sent
    assert _times(ledger, NPM, "p0") == [
        ("npm:user/alice", FETCHED, FETCHED),
        ("npm:user/bob", FETCHED, FETCHED),
    ]

    refreshed = FETCHED + timedelta(days=2)  # a 304 confirmed p1's document then
    record_observations(
        ledger, [_history("p1", refreshed, "alice", "bob"), *histories[::2]], NOW + timedelta(1)
    )
    assert _times(ledger, NPM, "p1") == [
        ("npm:user/alice", FETCHED, refreshed),
        ("npm:user/bob", FETCHED, refreshed),
    ]
    assert _times(ledger, NPM, "p2")[0] == ("npm:user/alice", FETCHED, FETCHED)


def test_now_stands_in_for_a_missing_naive_or_future_fetched_at(ledger: Ledger) -> None:
    naive = _history("naive", FETCHED.replace(tzinfo=None), "alice")
    future = _history("future", NOW + timedelta(hours=2), "alice")
    record_observations(ledger, [naive, future], NOW)
    assert _times(ledger, NPM, "naive") == [("npm:user/alice", NOW, NOW)]
    assert _times(ledger, NPM, "future") == [("npm:user/alice", NOW, NOW)]


def test_watch_reports_an_owner_change_once(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``custody watch`` reports the owners a poll's look added or closed; a poll that reuses
    the same registry answer (same ``fetched_at``) reports nothing again."""
    ledger.record_inventory(
        "proj", "package-lock.json", [LockedDependency(NPM, "p", "1", True)], NOW
    )
    served: list[PackageHistory] = []
    monkeypatch.setattr(watch, "fetch", lambda *_a, **_k: Fetched({(NPM, "p"): served[-1]}))

    def poll(history: PackageHistory, at: datetime) -> list[tuple[str, str | None]]:
        served.append(history)
        return [(e.kind, e.subject) for e in watch.poll(ledger, RegistrySettings(), now=at)]

    later = FETCHED + timedelta(days=1)
    assert poll(_history("p", FETCHED, "alice"), NOW) == []  # the first look
    assert poll(_history("p", FETCHED, "alice"), NOW + timedelta(hours=1)) == []
    changed = _history("p", later, "mallory")
    assert poll(changed, NOW + timedelta(hours=2)) == [
        ("owner-removed", "npm:user/alice"),
        ("owner-added", "npm:user/mallory"),
    ]
    assert poll(changed, NOW + timedelta(hours=3)) == []  # the same answer, reused
