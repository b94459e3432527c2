"""Observations: facts appear, persist, disappear and reappear as intervals."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, event

from custody.ledger import Ledger
from custody.ledger.observations import Fact, Look
from custody.model import Ecosystem, Observation

NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI
T1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
T3 = T2 + timedelta(days=1)
ALICE = ("owner", "pypi:user/alice", "Owner")
BOB = ("owner", "pypi:user/bob", "Maintainer")
CAROL = ("owner", "pypi:user/carol", "Owner")
ORG = ("organization", "acme", None)
Key = tuple[Ecosystem, str]


def _obs(
    package: str,
    fact: tuple[str, str, str | None],
    first: datetime,
    last: datetime,
    gone: datetime | None = None,
    eco: Ecosystem = PYPI,
) -> Observation:
    return Observation(eco, package, fact[0], fact[1], fact[2], first, last, gone)


def _at(when: datetime, facts: Mapping[Key, Iterable[Fact]]) -> dict[Key, Look]:
    """Every package's look at the same time."""
    return {key: (when, current) for key, current in facts.items()}


def test_appear_persist_disappear_reappear(ledger: Ledger) -> None:
    ledger.observe(_at(T1, {(PYPI, "a"): [ALICE, BOB, ORG], (PYPI, "b"): [CAROL]}))
    ledger.observe(_at(T2, {(PYPI, "a"): [ALICE, ORG]}))  # bob gone; b not looked at
    # bob is back; the organisation and carol are gone
    ledger.observe(_at(T3, {(PYPI, "a"): [ALICE, BOB], (PYPI, "b"): []}))

    got = ledger.observations(PYPI, ["a", "b", "never-seen"])
    assert sorted(got["a"], key=lambda o: (o.first_seen, o.subject)) == [
        _obs("a", ORG, T1, T2, gone=T3),
        _obs("a", ALICE, T1, T3),
        _obs("a", BOB, T1, T1, gone=T2),
        _obs("a", BOB, T3, T3),  # a return counts as a new appearance
    ]
    assert got["b"] == [_obs("b", CAROL, T1, T1, gone=T3)]
    assert got["never-seen"] == []


def test_results_are_tz_aware_utc(ledger: Ledger) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    ledger.observe(_at(T1.astimezone(kolkata), {(PYPI, "a"): [ALICE]}))
    ledger.observe(_at(T2.astimezone(kolkata), {(PYPI, "a"): []}))
    (obs,) = ledger.observations(PYPI, ["a"])["a"]
    for when in (obs.first_seen, obs.last_seen, obs.gone_since):
        assert when is not None
        assert when.utcoffset() == timedelta(0)
    assert (obs.first_seen, obs.last_seen, obs.gone_since) == (T1, T1, T2)


def test_role_change_is_a_new_fact(ledger: Ledger) -> None:
    ledger.observe(_at(T1, {(PYPI, "a"): [("owner", "pypi:user/bob", "Maintainer")]}))
    ledger.observe(_at(T2, {(PYPI, "a"): [("owner", "pypi:user/bob", "Owner")]}))
    got = ledger.observations(PYPI, ["a"])["a"]
    assert [(o.role, o.first_seen, o.gone_since) for o in got] == [
        ("Maintainer", T1, T2),
        ("Owner", T2, None),
    ]


def test_repeated_look_at_same_time_is_idempotent(ledger: Ledger) -> None:
    for _ in range(2):
        ledger.observe(_at(T1, {(PYPI, "a"): [ALICE, ALICE, BOB]}))
    assert len(ledger.observations(PYPI, ["a"])["a"]) == 2


def test_stale_look_is_ignored(ledger: Ledger) -> None:
    ledger.observe(_at(T2, {(PYPI, "a"): [ALICE]}))
    ledger.observe(_at(T1, {(PYPI, "a"): [BOB]}))  # older than what we know: dropped
    assert ledger.observations(PYPI, ["a"])["a"] == [_obs("a", ALICE, T2, T2)]


def test_ecosystems_are_separate(ledger: Ledger) -> None:
    npm_fact = ("owner", "npm:user/alice", "maintainer")
    ledger.observe(_at(T1, {(NPM, "a"): [npm_fact], (PYPI, "a"): [ALICE]}))
    ledger.observe(_at(T2, {(NPM, "a"): []}))
    assert ledger.observations(NPM, ["a"])["a"] == [_obs("a", npm_fact, T1, T1, T2, eco=NPM)]
    assert ledger.observations(PYPI, ["a"])["a"] == [_obs("a", ALICE, T1, T1)]


def test_many_packages_in_one_call(ledger: Ledger) -> None:
    names = [f"pkg-{i}" for i in range(1100)]
    ledger.observe(_at(T1, {(NPM, n): [("owner", f"npm:user/{n}", None)] for n in names}))
    ledger.observe(_at(T2, {(NPM, n): [] for n in names[:600]}))
    got = ledger.observations(NPM, names)
    assert len(got) == 1100
    assert got["pkg-0"][0].gone_since == T2
    assert got["pkg-1099"][0].gone_since is None
    assert got["pkg-1099"][0].subject == "npm:user/pkg-1099"


def test_naive_time_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.observe(_at(datetime(2024, 1, 1), {(PYPI, "a"): [ALICE]}))


def test_empty_inputs(ledger: Ledger) -> None:
    ledger.observe(_at(T1, {}))
    assert ledger.observations(PYPI, []) == {}


def test_observe_returns_what_a_later_read_would(ledger: Ledger) -> None:
    """``observe`` hands back the observations of the packages it was given (a check needs
    them next), exactly as reading them back would, through every kind of change."""
    looks = [
        (T1, {(PYPI, "a"): [ALICE, BOB, ORG], (PYPI, "b"): [CAROL]}),
        (T2, {(PYPI, "a"): [ALICE, ORG]}),
        (T1, {(PYPI, "a"): [CAROL]}),  # older than what the ledger holds: ignored
        (T3, {(PYPI, "a"): [ALICE, BOB, ("owner", "pypi:user/alice", "Maintainer")]}),
        (T3, {(PYPI, "b"): []}),
    ]
    for when, facts in looks:
        returned = ledger.observe(_at(when, facts))
        assert set(returned) == set(facts)
        for (eco, package), got in returned.items():
            assert got == ledger.observations(eco, [package])[package], (when, package)


@contextmanager
def _writes(ledger: Ledger) -> Iterator[list[str]]:
    """The INSERT/UPDATE/DELETE statements sent to the database inside the block, and one
    "write transaction" entry per write transaction opened."""
    sent: list[str] = []
    db = ledger._db
    engine = ledger.engine
    write = db.write

    @contextmanager
    def counted_write(operation: str = "writing") -> Iterator[Connection]:
        sent.append("write transaction")
        with write(operation) as conn:
            yield conn

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    db.write = counted_write  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del db.write
        event.remove(engine, "before_cursor_execute", record)


def test_a_look_that_changes_nothing_writes_nothing(ledger: Ledger) -> None:
    """A warm run sees the same document (same facts, same answer time) again: no UPDATE, no
    INSERT, not even a write transaction; and it still returns the observations."""
    looks = {(PYPI, "a"): (T1, [ALICE, BOB]), (NPM, "b"): (T2, [("owner", "npm:user/b", None)])}
    first = ledger.observe(looks)
    with _writes(ledger) as sent:
        again = ledger.observe(looks)
        stale = ledger.observe({(PYPI, "a"): (T1 - timedelta(hours=1), [CAROL])})  # ignored
    assert sent == []
    assert again == first
    assert stale[(PYPI, "a")] == first[(PYPI, "a")]
    assert ledger.observations(PYPI, ["a"])["a"] == [
        _obs("a", ALICE, T1, T1),
        _obs("a", BOB, T1, T1),
    ]


def test_a_later_look_extends_last_seen(ledger: Ledger) -> None:
    ledger.observe({(PYPI, "a"): (T1, [ALICE, BOB]), (PYPI, "b"): (T1, [CAROL])})
    with _writes(ledger) as sent:
        returned = ledger.observe({(PYPI, "a"): (T2, [ALICE, BOB]), (PYPI, "b"): (T1, [CAROL])})
    assert sent[0] == "write transaction" and len(sent) == 2  # one UPDATE: a's rows, not b's
    got = ledger.observations(PYPI, ["a", "b"])
    assert got["a"] == [_obs("a", ALICE, T1, T2), _obs("a", BOB, T1, T2)]
    assert got["b"] == [_obs("b", CAROL, T1, T1)]
    assert returned == {(PYPI, key): obs for key, obs in got.items()}


def test_each_package_at_its_own_time(ledger: Ledger) -> None:
    ledger.observe({(PYPI, "a"): (T1, [ALICE]), (PYPI, "b"): (T2, [CAROL])})
    ledger.observe({(PYPI, "a"): (T3, []), (PYPI, "b"): (T3, [CAROL, BOB])})
    ledger.observe({(PYPI, "a"): (T2, [BOB]), (PYPI, "b"): (T1, [])})  # older than known: ignored
    got = ledger.observations(PYPI, ["a", "b"])
    assert got["a"] == [_obs("a", ALICE, T1, T1, gone=T3)]
    assert got["b"] == [_obs("b", CAROL, T2, T3), _obs("b", BOB, T3, T3)]


def test_writes_only_what_changed_when_another_writer_got_there_first(ledger: Ledger) -> None:
    """The rows are read again under the lock: a change another writer already made between
    the read and the write transaction is not made twice."""
    ledger.observe(_at(T1, {(PYPI, "a"): [ALICE]}))
    db = ledger._db
    write = db.write

    @contextmanager
    def raced_write(operation: str = "writing") -> Iterator[Connection]:
        del db.write  # the other writer goes through the real method
        ledger.observe(_at(T2, {(PYPI, "a"): [ALICE, BOB]}))
        with write(operation) as conn:
            yield conn

    db.write = raced_write  # type: ignore[method-assign]
    try:
        returned = ledger.observe(_at(T2, {(PYPI, "a"): [ALICE, BOB]}))
    finally:
        vars(db).pop("write", None)
    got = ledger.observations(PYPI, ["a"])["a"]
    assert got == [_obs("a", ALICE, T1, T2), _obs("a", BOB, T2, T2)]  # one bob, not two
    assert returned[(PYPI, "a")] == got
