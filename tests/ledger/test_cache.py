"""The HTTP response cache."""

from __future__ import annotations

import dataclasses
import gzip
import time
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text

from custody.ledger import Ledger
from custody.ledger.schema import http_cache, schema_version
from custody.registries.base import CachedResponse, ResponseCache
from tests.ledger.fixtures import LedgerTarget

T0 = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
BASE = "http://127.0.0.1:4873/"


def _entry(name: str, **changes: object) -> CachedResponse:
    fields: dict[str, object] = {
        "url": BASE + name,
        "status": 200,
        "body": b'{"name": "%s", "versions": {}}' % name.encode() * 20,
        "fetched_at": T0,
        "etag": f'W/"{name}"',
        "last_modified": "Wed, 01 May 2024 12:30:15 GMT",
        "content_type": "application/json",
        "derived": b"\x93\x01\x02" + name.encode(),
        "derived_version": "npm-3",
    }
    fields.update(changes)
    return CachedResponse(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(ledger: Ledger) -> None:
    entry = _entry("event-stream", body=bytes(range(256)) * 4000)
    ledger.store([entry])
    assert ledger.load([entry.url]) == {entry.url: entry}


def test_optional_fields_and_other_status(ledger: Ledger) -> None:
    entry = CachedResponse(url=BASE + "gone", status=404, body=b"", fetched_at=T0)
    ledger.store([entry])
    assert ledger.load([entry.url])[entry.url] == entry


def test_fetched_at_is_utc_whatever_zone_was_given(ledger: Ledger) -> None:
    local = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    ledger.store([_entry("a", fetched_at=local)])
    got = ledger.load([BASE + "a"])[BASE + "a"].fetched_at
    assert got == T0
    assert got.utcoffset() == timedelta(0)


def test_naive_fetched_at_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.store([_entry("a", fetched_at=datetime(2024, 1, 1))])


def test_upsert_replaces(ledger: Ledger) -> None:
    ledger.store([_entry("a"), _entry("b")])
    newer = _entry(
        "a",
        body=b"new",
        etag=None,
        fetched_at=T0 + timedelta(hours=1),
        derived=None,
        derived_version=None,
    )
    ledger.store([newer])
    loaded = ledger.load([BASE + "a", BASE + "b"])
    assert loaded[BASE + "a"] == newer
    assert loaded[BASE + "b"] == _entry("b")


def test_last_entry_for_a_url_in_one_batch_wins(ledger: Ledger) -> None:
    ledger.store([_entry("a", status=200), _entry("a", status=304, body=b"")])
    assert ledger.load([BASE + "a"])[BASE + "a"].status == 304


def test_missing_duplicate_and_empty(ledger: Ledger) -> None:
    ledger.store([])
    assert ledger.load([]) == {}
    ledger.store([_entry("a")])
    assert set(ledger.load([BASE + "a", BASE + "a", BASE + "missing"])) == {BASE + "a"}


def test_many_urls_are_chunked(ledger: Ledger) -> None:
    entries = [_entry(f"pkg-{i}") for i in range(1200)]
    ledger.store(entries)
    urls = [e.url for e in entries] + [BASE + f"missing-{i}" for i in range(10)]
    loaded = ledger.load(urls)
    assert len(loaded) == 1200
    assert loaded[BASE + "pkg-1199"] == entries[-1]


def test_bodies_are_stored_compressed(ledger: Ledger) -> None:
    entry = _entry("big", body=b'{"versions": {"1.0.0": {}}}' * 10_000)
    ledger.store([entry])
    with ledger.engine.connect() as conn:
        stored = conn.scalar(select(http_cache.c.body).where(http_cache.c.url == entry.url))
    assert stored is not None
    assert len(stored) < len(entry.body) / 10


def test_warm_load_of_a_thousand_entries_is_fast(ledger: Ledger) -> None:
    body = b'{"name": "x", "versions": {"1.0.0": {"dependencies": {}}}}' * 400  # ~24 KB
    entries = [_entry(f"warm-{i}", body=body, derived=body[:4000]) for i in range(1000)]
    ledger.store(entries)
    urls = [e.url for e in entries]
    ledger.load(urls[:10])  # connect, compile
    start = time.perf_counter()
    loaded = ledger.load(urls)
    elapsed = time.perf_counter() - start
    assert len(loaded) == 1000
    assert elapsed < 0.5, f"warm load of 1000 entries took {elapsed:.3f}s"


def test_ledger_is_a_response_cache(ledger: Ledger) -> None:
    cache: ResponseCache = ledger
    cache.store([_entry("p")])
    assert cache.load([BASE + "p"])[BASE + "p"].etag == 'W/"p"'


def test_lean_load_leaves_out_bodies_beside_a_derived_blob(ledger: Ledger) -> None:
    with_derived = _entry("parsed")
    plain = _entry("plain", derived=None, derived_version=None)
    ledger.store([with_derived, plain])
    lean = ledger.load([with_derived.url, plain.url], bodies=False)
    assert lean[with_derived.url] == dataclasses.replace(with_derived, body=b"", body_omitted=True)
    assert lean[plain.url] == plain  # nothing else to use: the body comes along


def test_storing_an_entry_without_its_body_keeps_the_stored_body(ledger: Ledger) -> None:
    entry = _entry("kept")
    ledger.store([entry])
    lean = ledger.load([entry.url], bodies=False)[entry.url]
    changed = dataclasses.replace(lean, derived=b"new", derived_version="npm-4", etag='"x"')
    ledger.store([changed, _entry("other")])
    assert ledger.load([entry.url])[entry.url] == dataclasses.replace(
        entry, derived=b"new", derived_version="npm-4", etag='"x"'
    )


def test_touch_refreshes_fetched_at_only(ledger: Ledger) -> None:
    ledger.store([_entry("a"), _entry("b")])
    later = T0 + timedelta(days=3)
    ledger.touch({BASE + "a": later, BASE + "missing": later})
    ledger.touch({})
    loaded = ledger.load([BASE + "a", BASE + "b"])
    assert loaded[BASE + "a"] == _entry("a", fetched_at=later)
    assert loaded[BASE + "b"] == _entry("b")


def test_a_mixed_batch_round_trips(ledger: Ledger) -> None:
    kept = _entry("kept", body=b"old body" * 1000)
    ledger.store([kept])
    lean = ledger.load([kept.url], bodies=False)[kept.url]
    batch = [
        _entry(f"n{i}", body=bytes([i]) * (1000 + i), derived=None if i % 3 else b"d%d" % i)
        for i in range(40)
    ]
    batch.insert(7, dataclasses.replace(lean, derived=b"re-derived"))
    ledger.store(batch)
    loaded = ledger.load([e.url for e in batch])
    for entry in batch:
        expected = (
            entry if entry.url != kept.url else dataclasses.replace(kept, derived=b"re-derived")
        )
        assert loaded[entry.url] == expected


def test_gzip_bodies_are_stored_as_sent_and_read_back_inflated(ledger: Ledger) -> None:
    body = b'{"name": "left-pad", "versions": {}}' * 50
    sent = gzip.compress(body)
    entry = _entry("left-pad", body=b"", gzip_body=sent, fresh_for=300.0)
    ledger.store([entry])
    with ledger.engine.connect() as conn:
        row = conn.execute(select(http_cache).where(http_cache.c.url == entry.url)).one()
    assert row.body == sent  # not inflated and compressed again
    assert row.body_size == len(body)
    assert row.derived == entry.derived  # parsed histories are stored uncompressed
    loaded = ledger.load([entry.url])[entry.url]
    assert loaded == dataclasses.replace(entry, body=body, gzip_body=None)


def test_touch_renews_the_freshness_it_is_given(ledger: Ledger) -> None:
    kept, renewed = _entry("a", fresh_for=60.0), _entry("b", fresh_for=60.0)
    ledger.store([kept, renewed])
    later = T0 + timedelta(minutes=5)
    ledger.touch({kept.url: later, renewed.url: later}, {renewed.url: 300.0})
    loaded = ledger.load([kept.url, renewed.url])
    assert (loaded[kept.url].fetched_at, loaded[kept.url].fresh_for) == (later, 60.0)
    assert (loaded[renewed.url].fetched_at, loaded[renewed.url].fresh_for) == (later, 300.0)


def test_migration_4_drops_compressed_parsed_histories(ledger_target: LedgerTarget) -> None:
    """A ledger written before migration 4 kept zlib-compressed derived blobs: they are dropped
    (derived again on the next fetch), the bodies stay, and ``fresh_for`` appears."""
    ledger = ledger_target.open()
    entry = _entry("old")
    ledger.store([entry])
    with ledger.engine.begin() as conn:  # back to version 3, as an older Custody left it
        conn.execute(text("ALTER TABLE http_cache DROP COLUMN final_url"))
        conn.execute(text("ALTER TABLE http_cache DROP COLUMN fresh_for"))
        conn.execute(delete(schema_version).where(schema_version.c.version >= 4))
        conn.execute(http_cache.update().values(derived=zlib.compress(entry.derived or b"")))
    ledger.close()
    again = ledger_target.open()
    loaded = again.load([entry.url])[entry.url]
    assert loaded.derived is None and loaded.derived_version is not None
    assert loaded.body == entry.body
    assert loaded.fresh_for is None


def test_postgres_stores_parsed_histories_without_compressing_them(
    ledger_target: LedgerTarget,
) -> None:
    if ledger_target.backend != "postgresql":
        pytest.skip("PostgreSQL TOAST storage only")
    ledger = ledger_target.open()
    with ledger.engine.connect() as conn:
        storage = conn.scalar(
            text(
                "SELECT attstorage FROM pg_attribute "
                "WHERE attrelid = CAST(:table AS regclass) AND attname = 'derived'"
            ),
            {"table": f'"{ledger_target.schema}".http_cache'},
        )
    assert storage == "e"  # EXTERNAL: out of line, never pglz-compressed


def test_postgres_reads_the_cache_in_binary_in_any_session_time_zone(
    ledger_target: LedgerTarget,
) -> None:
    """On PostgreSQL the cache is read in the binary result format (``Database.binary_rows``):
    every field comes back as stored, times in UTC even when the session's zone is not."""
    if ledger_target.backend != "postgresql":
        pytest.skip("PostgreSQL's result formats only")
    zoned = f"{ledger_target.url}?options=-c%20timezone%3DAsia/Kolkata"
    ledger = LedgerTarget("postgresql", zoned, ledger_target.schema).open()
    try:
        with ledger.engine.connect() as conn:
            assert conn.scalar(text("SHOW timezone")) == "Asia/Kolkata"
        full = _entry("full", body=bytes(range(256)) * 400, fresh_for=300.0)
        lean = _entry("lean", derived=None, derived_version=None)
        ledger.store([full, lean])
        calls: list[int] = []
        real = ledger._db.binary_rows
        ledger._db.binary_rows = lambda *a: calls.append(1) or real(*a)  # type: ignore[method-assign]
        got = ledger.load([full.url, lean.url])
        assert got == {full.url: full, lean.url: lean} and calls
        assert got[full.url].fetched_at.utcoffset() == timedelta(0)
        omitted = ledger.load([full.url], bodies=False)[full.url]
        assert omitted.body_omitted and omitted.derived == full.derived
        assert ledger.load([lean.url], bodies=False)[lean.url].body == lean.body
    finally:
        ledger.close()


def test_the_url_after_redirects_round_trips(ledger: Ledger) -> None:
    moved = _entry("moved", final_url=BASE + "elsewhere/moved")
    ledger.store([moved])
    assert ledger.load([moved.url])[moved.url] == moved
    lean = ledger.load([moved.url], bodies=False)[moved.url]
    assert lean.final_url == moved.final_url
    ledger.store([dataclasses.replace(lean, derived=b"again")])  # a body-less update keeps it
    assert ledger.load([moved.url])[moved.url].final_url == moved.final_url


def test_migration_5_adds_the_url_after_redirects(ledger_target: LedgerTarget) -> None:
    """A ledger written before migration 5 gets ``final_url``; its entries keep NULL (their body
    came from their own URL as far as anyone knows) and the next fetch fills it in."""
    ledger = ledger_target.open()
    entry = _entry("old")
    ledger.store([entry])
    with ledger.engine.begin() as conn:  # back to version 4, as an older Custody left it
        conn.execute(text("ALTER TABLE http_cache DROP COLUMN final_url"))
        conn.execute(delete(schema_version).where(schema_version.c.version == 5))
    ledger.close()
    again = ledger_target.open()
    assert again.schema_version == 5
    assert again.load([entry.url])[entry.url] == entry
    moved = _entry("old", final_url=BASE + "elsewhere/old")
    again.store([moved])
    assert again.load([entry.url])[entry.url] == moved
