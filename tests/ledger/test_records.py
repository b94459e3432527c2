"""Publish events, project inventory and the decision log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from custody.ledger import DecisionRecord, InventoryEntry, Ledger, PublishEvent
from custody.model import (
    Action,
    Decision,
    Ecosystem,
    Finding,
    LockedDependency,
    Severity,
)

NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI
T0 = datetime(2025, 9, 15, 22, 0, tzinfo=UTC)
WORM = "npm:user/victim"


def _minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# -- publish events ---------------------------------------------------------------------------


def test_publishes_are_idempotent_and_windowed(ledger: Ledger) -> None:
    burst = [(NPM, f"pkg-{i}", "1.0.1", WORM, _minutes(i)) for i in range(5)]
    ledger.record_publishes(burst)
    ledger.record_publishes([*burst, burst[0]])  # again: nothing new
    ledger.record_publishes([(NPM, "other", "2.0.0", "npm:user/someone", _minutes(2))])
    ledger.record_publishes([])

    got = ledger.publishes_by(WORM, _minutes(0), _minutes(60))
    assert got == [PublishEvent(*e) for e in burst]
    assert all(isinstance(e.ecosystem, Ecosystem) for e in got)
    # inclusive on both ends
    assert [e.package for e in ledger.publishes_by(WORM, _minutes(1), _minutes(3))] == [
        "pkg-1",
        "pkg-2",
        "pkg-3",
    ]
    assert ledger.publishes_by(WORM, _minutes(10), _minutes(20)) == []


def test_publishes_of_many_publishers_keep_each_to_its_own_span(ledger: Ledger) -> None:
    """One query over the union of the spans: a row inside the union but outside its own
    publisher's span is dropped, and a publisher with nothing in its span is still a key."""
    ledger.record_publishes(
        [(NPM, f"w-{i}", "1.0.1", WORM, _minutes(i * 10)) for i in range(6)]  # 0 .. 50
        + [(NPM, f"a-{i}", "2.0.0", "npm:user/alice", _minutes(i * 10)) for i in range(6)]
        + [(PYPI, "late", "1.0", "pypi:user/late", _minutes(100))]
    )
    spans = {
        WORM: (_minutes(0), _minutes(20)),
        "npm:user/alice": (_minutes(30), _minutes(50)),
        "pypi:user/late": (_minutes(0), _minutes(50)),
        "npm:user/nobody": (_minutes(0), _minutes(100)),
    }
    got = ledger.publishes_within(spans)
    assert {who: [e.package for e in events] for who, events in got.items()} == {
        WORM: ["w-0", "w-1", "w-2"],
        "npm:user/alice": ["a-3", "a-4", "a-5"],
        "pypi:user/late": [],
        "npm:user/nobody": [],
    }
    for who, (low, high) in spans.items():
        assert got[who] == ledger.publishes_by(who, low, high)
    assert ledger.publishes_within({}) == {}


def test_publish_times_are_utc(ledger: Ledger) -> None:
    pacific = timezone(timedelta(hours=-7))
    ledger.record_publishes(
        [PublishEvent(PYPI, "ultralytics", "8.3.41", "pypi:user/x", T0.astimezone(pacific))]
    )
    (event,) = ledger.publishes_by("pypi:user/x", T0.astimezone(pacific), T0.astimezone(UTC))
    assert event.published_at == T0
    assert event.published_at.utcoffset() == timedelta(0)


def test_publish_naive_time_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.record_publishes([(NPM, "a", "1", WORM, datetime(2025, 1, 1))])


# -- inventory --------------------------------------------------------------------------------


def _dep(name: str, version: str, *paths: tuple[str, ...], dev: bool = False) -> LockedDependency:
    return LockedDependency(NPM, name, version, direct=len(paths) == 0, paths=paths, dev=dev)


def test_inventory_where_and_replace(ledger: Ledger) -> None:
    ledger.record_inventory(
        "web",
        "package-lock.json",
        [
            _dep("event-stream", "3.3.6"),
            _dep("flatmap-stream", "0.1.1", ("event-stream", "flatmap-stream"), dev=True),
        ],
        T0,
    )
    ledger.record_inventory("web", "tools/package-lock.json", [_dep("flatmap-stream", "0.1.0")], T0)
    ledger.record_inventory("api", "package-lock.json", [_dep("flatmap-stream", "0.1.1")], T0)

    where = ledger.where(NPM, "flatmap-stream")
    assert [(e.project, e.lockfile, e.version) for e in where] == [
        ("api", "package-lock.json", "0.1.1"),
        ("web", "package-lock.json", "0.1.1"),
        ("web", "tools/package-lock.json", "0.1.0"),
    ]
    assert where[1] == InventoryEntry(
        project="web",
        lockfile="package-lock.json",
        ecosystem=NPM,
        name="flatmap-stream",
        version="0.1.1",
        direct=False,
        dev=True,
        optional=False,
        paths=(("event-stream", "flatmap-stream"),),
        scanned_at=T0,
    )
    assert [e.project for e in ledger.where(NPM, "flatmap-stream", "0.1.1")] == ["api", "web"]
    assert ledger.where(PYPI, "flatmap-stream") == []

    # a rescan replaces that lockfile's rows only
    later = T0 + timedelta(days=1)
    ledger.record_inventory("web", "package-lock.json", [_dep("event-stream", "4.0.1")], later)
    assert [(e.project, e.lockfile) for e in ledger.where(NPM, "flatmap-stream")] == [
        ("api", "package-lock.json"),
        ("web", "tools/package-lock.json"),
    ]
    (es,) = ledger.where(NPM, "event-stream")
    assert (es.version, es.scanned_at) == ("4.0.1", later)
    assert es.scanned_at.utcoffset() == timedelta(0)

    ledger.record_inventory("web", "tools/package-lock.json", [], later)
    assert [e.project for e in ledger.where(NPM, "flatmap-stream")] == ["api"]


# -- decisions --------------------------------------------------------------------------------


def test_decisions_log(ledger: Ledger) -> None:
    decision = Decision(
        NPM,
        "event-stream",
        "3.3.6",
        "3.3.5",
        Action.HOLD,
        findings=(
            Finding("custody.new-publisher", Severity.HIGH, "new publisher"),
            Finding("deps.added-in-patch", Severity.MEDIUM, "flatmap-stream added"),
        ),
    )
    first = DecisionRecord.from_decision(decision, at=T0, source="check")
    second = DecisionRecord(_minutes(5), PYPI, "requests", "2.32.3", Action.ALLOW, (), "proxy")
    ledger.record_decisions([first, second])
    ledger.record_decisions([])

    assert first.rules == ("custody.new-publisher", "deps.added-in-patch")
    assert ledger.decisions() == [second, first]  # newest first
    assert ledger.decisions(ecosystem=NPM, package="event-stream") == [first]
    assert ledger.decisions(since=_minutes(1)) == [second]
    assert ledger.decisions(limit=1) == [second]
    assert isinstance(ledger.decisions()[0].action, Action)
