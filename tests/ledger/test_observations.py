"""Observations: facts appear, persist, disappear and reappear as intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from custody.ledger import Ledger
from custody.model import Ecosystem, Observation

NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI
T1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
T3 = T2 + timedelta(days=1)
ALICE = ("owner", "pypi:user/alice", "Owner")
BOB = ("owner", "pypi:user/bob", "Maintainer")
CAROL = ("owner", "pypi:user/carol", "Owner")
ORG = ("organization", "acme", None)


def _obs(
    package: str,
    fact: tuple[str, str, str | None],
    first: datetime,
    last: datetime,
    gone: datetime | None = None,
    eco: Ecosystem = PYPI,
) -> Observation:
    return Observation(eco, package, fact[0], fact[1], fact[2], first, last, gone)


def test_appear_persist_disappear_reappear(ledger: Ledger) -> None:
    ledger.observe(T1, {(PYPI, "a"): [ALICE, BOB, ORG], (PYPI, "b"): [CAROL]})
    ledger.observe(T2, {(PYPI, "a"): [ALICE, ORG]})  # bob gone; b not looked at
    # bob is back; the organisation and carol are gone
    ledger.observe(T3, {(PYPI, "a"): [ALICE, BOB], (PYPI, "b"): []})

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
    ledger.observe(T1.astimezone(kolkata), {(PYPI, "a"): [ALICE]})
    ledger.observe(T2.astimezone(kolkata), {(PYPI, "a"): []})
    (obs,) = ledger.observations(PYPI, ["a"])["a"]
    for when in (obs.first_seen, obs.last_seen, obs.gone_since):
        assert when is not None
        assert when.utcoffset() == timedelta(0)
    assert (obs.first_seen, obs.last_seen, obs.gone_since) == (T1, T1, T2)


def test_role_change_is_a_new_fact(ledger: Ledger) -> None:
    ledger.observe(T1, {(PYPI, "a"): [("owner", "pypi:user/bob", "Maintainer")]})
    ledger.observe(T2, {(PYPI, "a"): [("owner", "pypi:user/bob", "Owner")]})
    got = ledger.observations(PYPI, ["a"])["a"]
    assert [(o.role, o.first_seen, o.gone_since) for o in got] == [
        ("Maintainer", T1, T2),
        ("Owner", T2, None),
    ]


def test_repeated_look_at_same_time_is_idempotent(ledger: Ledger) -> None:
    for _ in range(2):
        ledger.observe(T1, {(PYPI, "a"): [ALICE, ALICE, BOB]})
    assert len(ledger.observations(PYPI, ["a"])["a"]) == 2


def test_stale_look_is_ignored(ledger: Ledger) -> None:
    ledger.observe(T2, {(PYPI, "a"): [ALICE]})
    ledger.observe(T1, {(PYPI, "a"): [BOB]})  # older than what we know: dropped
    assert ledger.observations(PYPI, ["a"])["a"] == [_obs("a", ALICE, T2, T2)]


def test_ecosystems_are_separate(ledger: Ledger) -> None:
    npm_fact = ("owner", "npm:user/alice", "maintainer")
    ledger.observe(T1, {(NPM, "a"): [npm_fact], (PYPI, "a"): [ALICE]})
    ledger.observe(T2, {(NPM, "a"): []})
    assert ledger.observations(NPM, ["a"])["a"] == [_obs("a", npm_fact, T1, T1, T2, eco=NPM)]
    assert ledger.observations(PYPI, ["a"])["a"] == [_obs("a", ALICE, T1, T1)]


def test_many_packages_in_one_call(ledger: Ledger) -> None:
    names = [f"pkg-{i}" for i in range(1100)]
    ledger.observe(T1, {(NPM, n): [("owner", f"npm:user/{n}", None)] for n in names})
    ledger.observe(T2, {(NPM, n): [] for n in names[:600]})
    got = ledger.observations(NPM, names)
    assert len(got) == 1100
    assert got["pkg-0"][0].gone_since == T2
    assert got["pkg-1099"][0].gone_since is None
    assert got["pkg-1099"][0].subject == "npm:user/pkg-1099"


def test_naive_time_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.observe(datetime(2024, 1, 1), {(PYPI, "a"): [ALICE]})


def test_empty_inputs(ledger: Ledger) -> None:
    ledger.observe(T1, {})
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
        returned = ledger.observe(when, facts)
        assert set(returned) == set(facts)
        for (eco, package), got in returned.items():
            assert got == ledger.observations(eco, [package])[package], (when, package)
