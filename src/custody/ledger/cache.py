"""The HTTP response cache (``custody.registries.base.ResponseCache``).

One table holds the response and its parsed form. Bodies are kept gzip-compressed as the
registry sent them, else compressed with zlib level 1: registry JSON shrinks 5-10x at a cost
far below the time to read it back (zstd is not in the 3.11 standard library). Derived blobs
(msgpack) are stored as they are: a warm run reads all of them, and inflating them cost five
times as long as reading them uncompressed.

A warm run needs the derived blobs, not the bodies: ``load(..., bodies=False)`` leaves out the
body of every row that has a derived blob (half the bytes read and most of the inflating), and
a 304 only ``touch``es ``fetched_at`` instead of compressing and rewriting the whole row."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, select, update

from custody.ledger.db import Database, chunked
from custody.ledger.schema import as_utc, http_cache
from custody.registries.base import CachedResponse
from custody.registries.gzipped import gunzip, inflated_size, is_gzip

log = logging.getLogger(__name__)
_LEVEL = 1
CHECKPOINT_AFTER = 8 * 2**20
"""Bytes stored in one batch (a cold run's documents) after which the write-ahead log is
copied into the database file at once, in the background (``Database.checkpoint_soon``)."""
_STORED_LIMIT = 2**31  # stored gzip bodies were checked against the size limit when fetched

_COLUMNS = (
    http_cache.c.url,
    http_cache.c.status,
    http_cache.c.fetched_at,
    http_cache.c.etag,
    http_cache.c.last_modified,
    http_cache.c.content_type,
    http_cache.c.body_size,
    http_cache.c.derived,
    http_cache.c.derived_version,
    http_cache.c.fresh_for,
    http_cache.c.final_url,
)
_WANTED = http_cache.c.url.in_(bindparam("urls", expanding=True))
_LOAD = select(*_COLUMNS, http_cache.c.body).where(_WANTED)
# NULL (body left out) exactly when a derived blob is there to use instead.
_LOAD_LEAN = select(
    *_COLUMNS,
    case((http_cache.c.derived.is_(None), http_cache.c.body), else_=None).label("body"),
).where(_WANTED)
_KEEP_BODY = update(http_cache).where(http_cache.c.url == bindparam("key"))
_TOUCH = (
    update(http_cache)
    .where(http_cache.c.url == bindparam("key"))
    .values(fetched_at=bindparam("when", type_=http_cache.c.fetched_at.type))
)
_TOUCH_FRESH = _TOUCH.values(fresh_for=bindparam("fresh_for"))


def load(db: Database, urls: Sequence[str], *, bodies: bool = True) -> dict[str, CachedResponse]:
    """The cached responses for ``urls`` (missing ones are absent): one query per 500 URLs.
    ``bodies=False``: rows with a derived blob come without their body (``body_omitted``)."""
    wanted = list(dict.fromkeys(urls))
    found: dict[str, CachedResponse] = {}
    if not wanted:
        return found
    query = _LOAD if bodies else _LOAD_LEAN
    with db.read("reading cached registry responses") as conn:
        for chunk in chunked(wanted):
            params = {"urls": list(chunk)}
            if db.is_postgres:  # bytea in binary, not hex: see Database.binary_rows
                rows: Iterable[Any] = db.binary_rows(conn, query, params)
            else:
                rows = conn.execute(query, params)
            for row in rows:
                omitted = row.body is None
                body = b"" if omitted else _inflated_or_none(row.url, row.body, row.body_size)
                if body is None:
                    continue  # damaged: a miss, fetched again (and replaced) like one
                found[row.url] = CachedResponse(
                    url=row.url,
                    status=row.status,
                    body=body,
                    fetched_at=as_utc(row.fetched_at),
                    etag=row.etag,
                    last_modified=row.last_modified,
                    content_type=row.content_type,
                    derived=row.derived,
                    derived_version=row.derived_version,
                    body_omitted=omitted,
                    fresh_for=row.fresh_for,
                    final_url=row.final_url,
                )
    return found


def _inflated_or_none(url: str, blob: bytes, size: int | None) -> bytes | None:
    """The stored body, or None when it cannot be inflated: a damaged row is a cache miss, as
    a damaged parsed copy is (``custody.registries.derived``), never the end of every run."""
    try:
        return _inflate(blob, size or 0)
    except (zlib.error, ValueError, OSError, EOFError) as exc:
        log.warning(
            "ignoring the cached response for %s: its stored body is damaged (%s)", url, exc
        )
        return None


def _inflate(blob: bytes, size: int) -> bytes:
    """A stored body: gzip as the registry sent it, or zlib. Sizing the output buffer exactly
    (instead of zlib's grow-by-doubling from 16 KiB) makes inflating about a third faster."""
    if is_gzip(blob):
        return gunzip(blob, max(size, _STORED_LIMIT))
    return zlib.decompress(blob, bufsize=max(size, 1))


def store(db: Database, entries: Sequence[CachedResponse]) -> None:
    """Insert or replace ``entries`` in one transaction (the last entry for a URL wins). An
    entry loaded without its body (``body_omitted``) updates its row but keeps the stored body."""
    full: list[dict[str, Any]] = []
    lean: list[dict[str, Any]] = []
    # PostgreSQL refuses one INSERT ... ON CONFLICT touching a row twice: hence the dict.
    for e in {e.url: e for e in entries}.values():
        row: dict[str, Any] = {
            "url": e.url,
            "status": e.status,
            "fetched_at": as_utc(e.fetched_at, "fetched_at"),
            "etag": e.etag,
            "last_modified": e.last_modified,
            "content_type": e.content_type,
            "derived": e.derived,
            "derived_size": None if e.derived is None else len(e.derived),
            "derived_version": e.derived_version,
            "fresh_for": e.fresh_for,
            "final_url": e.final_url,
        }
        if e.body_omitted:
            row["key"] = row.pop("url")
            lean.append(row)
        elif e.gzip_body is not None:
            row["body"] = e.gzip_body
            row["body_size"] = inflated_size(e.gzip_body)
            full.append(row)
        else:
            row["body"] = zlib.compress(e.body, _LEVEL)
            row["body_size"] = len(e.body)
            full.append(row)
    if not full and not lean:
        return
    with db.write("storing registry responses") as conn:
        if full:
            conn.execute(db.upsert(http_cache), full)
        if lean:
            conn.execute(_KEEP_BODY, lean)
    if sum(len(r["body"]) + (r["derived_size"] or 0) for r in full) >= CHECKPOINT_AFTER:
        db.checkpoint_soon()


def touch(
    db: Database,
    fetched: Mapping[str, datetime],
    fresh_for: Mapping[str, float | None] | None = None,
) -> None:
    """Set ``fetched_at`` of cached URLs (a 304 confirmed them) in one transaction, and their
    ``fresh_for`` where ``fresh_for`` has them (the 304 said how long it stays fresh)."""
    fresh = fresh_for or {}
    plain: list[dict[str, Any]] = []
    renewed: list[dict[str, Any]] = []
    for url, when in fetched.items():
        row: dict[str, Any] = {"key": url, "when": as_utc(when, "fetched_at")}
        if url in fresh:
            row["fresh_for"] = fresh[url]
            renewed.append(row)
        else:
            plain.append(row)
    if not plain and not renewed:
        return
    with db.write("updating cached registry responses") as conn:
        if plain:
            conn.execute(_TOUCH, plain)
        if renewed:
            conn.execute(_TOUCH_FRESH, renewed)
