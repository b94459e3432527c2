"""Known-bad records and publish counts in the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custody.ledger import Ledger
from custody.model import Ecosystem
from custody.osv import parse_record
from tests.signals.osv_records import ALL, FLATMAP, TYPOSQUAT, mal

NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI
NOW = datetime(2025, 9, 1, tzinfo=UTC)


def test_records_round_trip_and_are_read_in_one_call(ledger: Ledger) -> None:
    records = [
        *parse_record(FLATMAP),
        *parse_record(TYPOSQUAT),
        *parse_record(
            mal(
                "MAL-2024-3",
                "npm",
                "@scope/pkg",
                ranges=[
                    {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.0.5"}]}
                ],
            )
        ),
        *parse_record(mal("MAL-2024-4", "npm", "event-stream", versions=["3.3.6"])),
    ]
    result = ledger.store_known_bad(records, NOW)
    assert (result.stored, result.kept, result.withdrawn) == (4, 0, 0)
    assert ledger.count_known_bad() == 4
    found = ledger.known_bad_for(
        [
            (NPM, "flatmap-stream"),
            (PYPI, "beautiulsoup4"),
            (NPM, "@scope/pkg"),
            (NPM, "event-stream"),
            (NPM, "nothing"),
        ]
    )
    assert set(found) == {
        (NPM, "flatmap-stream"),
        (PYPI, "beautiulsoup4"),
        (NPM, "@scope/pkg"),
        (NPM, "event-stream"),
    }
    assert found[(NPM, "flatmap-stream")] == [r for r in records if r.package == "flatmap-stream"]
    assert found[(NPM, "@scope/pkg")][0].matches_exactly("1.0.4") == "range"
    assert found[(NPM, "event-stream")][0].versions == ("3.3.6",)
    # the ecosystem matters: a PyPI package of the same name is another package
    assert ledger.known_bad_for([(PYPI, "flatmap-stream")]) == {}


def test_an_older_copy_never_replaces_a_newer_one(ledger: Ledger) -> None:
    newer = parse_record(
        mal("MAL-1", "npm", "x", versions=["1.0.0", "1.0.1"], modified="2025-02-01T00:00:00Z")
    )
    older = parse_record(
        mal("MAL-1", "npm", "x", versions=["1.0.0"], modified="2025-01-01T00:00:00Z")
    )
    ledger.store_known_bad(newer, NOW)
    result = ledger.store_known_bad(older, NOW)
    assert (result.stored, result.kept) == (0, 1)
    [kept] = ledger.known_bad_for([(NPM, "x")])[(NPM, "x")]
    assert kept.versions == ("1.0.0", "1.0.1")
    # a newer modification replaces it, packages it no longer names included
    renamed = parse_record(mal("MAL-1", "npm", "y", ranges=ALL, modified="2025-03-01T00:00:00Z"))
    assert ledger.store_known_bad(renamed, NOW).stored == 1
    assert ledger.known_bad_for([(NPM, "x"), (NPM, "y")]).keys() == {(NPM, "y")}


def test_withdrawn_records_are_deleted(ledger: Ledger) -> None:
    ledger.store_known_bad(parse_record(mal("MAL-2", "npm", "z", versions=["1.0.0"])), NOW)
    result = ledger.store_known_bad([], NOW, withdrawn_ids=["MAL-2", "MAL-404"])
    assert result.withdrawn == 2
    assert ledger.known_bad_for([(NPM, "z")]) == {}
    assert ledger.count_known_bad() == 0


def test_publish_counts_tell_what_is_already_recorded(ledger: Ledger) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    ledger.record_publishes(
        [(NPM, "a", f"1.0.{i}", "npm:user/alice", t0 + timedelta(days=i)) for i in range(5)]
        + [(PYPI, "a", "1.0", "pypi:user/bob", t0)]
    )
    counts = ledger.publish_counts([(NPM, "a"), (NPM, "b")], t0 + timedelta(days=2))
    assert counts == {(NPM, "a"): 3}
    assert ledger.publish_counts([(PYPI, "a")], t0) == {(PYPI, "a"): 1}
