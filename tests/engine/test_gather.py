"""What the engine reads from and records in the ledger for the signals: publish events (only
new ones), publishes per publisher around the candidates, known-bad records in one query."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from sqlalchemy import event

from custody import gather
from custody.ledger import Ledger
from custody.model import Ecosystem, Provenance
from custody.osv import parse_record
from tests.signals.osv_records import mal

from .builders import T0, history, locked, release

NOW = T0 + timedelta(days=100)


def _statements(ledger: Ledger) -> list[str]:
    seen: list[str] = []
    event.listen(ledger.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_only_new_publishes_are_written(ledger: Ledger) -> None:
    a = history(release("1.0.0", 10), release("1.0.1", 20), name="a")
    b = history(release("2.0.0", 30, "bob", name="b"), name="b")
    ci = msgspec.structs.replace(
        release("1.0.0", 40, "GitHub Actions", name="c"),
        provenance=Provenance("npm-trusted-publisher", issuer="github"),
    )
    c = history(ci, name="c")
    old = history(release("0.1.0", -400, name="old"), name="old")  # beyond the horizon
    assert gather.record_publishes(ledger, [a, b, c, old], NOW) == 3
    assert gather.record_publishes(ledger, [a, b, c, old], NOW) == 0  # nothing new: no write
    a2 = history(release("1.0.0", 10), release("1.0.1", 20), release("1.0.2", 90), name="a")
    seen = _statements(ledger)
    assert gather.record_publishes(ledger, [a2, b], NOW) == 3  # a's events again, not b's
    assert sum("INSERT" in s for s in seen) == 1
    events = ledger.publishes_by("npm:user/alice", T0, NOW)
    assert [(e.package, e.version) for e in events] == [
        ("a", "1.0.0"),
        ("a", "1.0.1"),
        ("a", "1.0.2"),
    ]
    assert ledger.publishes_by("npm:user/GitHub Actions", T0, NOW) == []


def test_publishes_of_every_publisher_are_read_in_one_query(ledger: Ledger) -> None:
    releases = [
        release("1.0.0", 50, name="a"),
        release("1.0.0", 60, name="b"),
        release("3.0.0", 55, "bob", name="c"),
    ]
    ledger.record_publishes(
        [
            (Ecosystem.NPM, r.name, r.version, r.publisher.id, r.published_at)
            for r in releases
            if r.publisher
        ]
    )
    seen = _statements(ledger)
    got = gather.publishes_around(ledger, releases, NOW)
    assert sum("FROM publishes" in s for s in seen) == 1
    assert {k: [e.package for e in v] for k, v in got.items()} == {
        "npm:user/alice": ["a", "b"],
        "npm:user/bob": ["c"],
    }


def test_known_bad_records_in_one_query(ledger: Ledger) -> None:
    ledger.store_known_bad(parse_record(mal("MAL-1", "npm", "a", versions=["1.0.0"])), NOW)
    deps = [locked("1.0.0", name=n) for n in ("a", "b", "c")] + [locked("1.0", "x", Ecosystem.PYPI)]
    seen = _statements(ledger)
    found = gather.known_bad_for(ledger, deps)
    assert sum("FROM known_bad" in s for s in seen) == 1
    assert list(found) == [(Ecosystem.NPM, "a")]
