"""The HTTP response cache (``custody.registries.base.ResponseCache``).

One table holds the response and its parsed form. Bodies and derived blobs are compressed with
zlib level 1: registry JSON shrinks 5-10x at a cost far below the time to read it back (zstd is
not in the 3.11 standard library)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, overload

from sqlalchemy import bindparam, select

from custody.ledger.db import Database, chunked
from custody.ledger.schema import as_utc, http_cache
from custody.registries.base import CachedResponse

_LEVEL = 1

_LOAD = select(
    http_cache.c.url,
    http_cache.c.status,
    http_cache.c.fetched_at,
    http_cache.c.etag,
    http_cache.c.last_modified,
    http_cache.c.content_type,
    http_cache.c.body,
    http_cache.c.body_size,
    http_cache.c.derived,
    http_cache.c.derived_size,
    http_cache.c.derived_version,
).where(http_cache.c.url.in_(bindparam("urls", expanding=True)))


def load(db: Database, urls: Sequence[str]) -> dict[str, CachedResponse]:
    """The cached responses for ``urls`` (missing ones are absent): one query per 500 URLs."""
    wanted = list(dict.fromkeys(urls))
    found: dict[str, CachedResponse] = {}
    if not wanted:
        return found
    with db.read() as conn:
        for chunk in chunked(wanted):
            for row in conn.execute(_LOAD, {"urls": list(chunk)}):
                found[row.url] = CachedResponse(
                    url=row.url,
                    status=row.status,
                    body=_inflate(row.body, row.body_size),
                    fetched_at=row.fetched_at,
                    etag=row.etag,
                    last_modified=row.last_modified,
                    content_type=row.content_type,
                    derived=_inflate(row.derived, row.derived_size),
                    derived_version=row.derived_version,
                )
    return found


@overload
def _inflate(blob: bytes, size: int) -> bytes: ...
@overload
def _inflate(blob: bytes | None, size: int | None) -> bytes | None: ...
def _inflate(blob: bytes | None, size: int | None) -> bytes | None:
    """Decompression is most of a warm load's time; sizing the output buffer exactly (instead
    of zlib's grow-by-doubling from 16 KiB) makes it about a third faster."""
    if blob is None:
        return None
    return zlib.decompress(blob, bufsize=max(size or 0, 1))


def store(db: Database, entries: Sequence[CachedResponse]) -> None:
    """Insert or replace ``entries`` in one transaction (the last entry for a URL wins)."""
    rows: dict[str, dict[str, Any]] = {}
    for e in entries:
        rows[e.url] = {
            "url": e.url,
            "status": e.status,
            "fetched_at": as_utc(e.fetched_at, "fetched_at"),
            "etag": e.etag,
            "last_modified": e.last_modified,
            "content_type": e.content_type,
            "body": zlib.compress(e.body, _LEVEL),
            "body_size": len(e.body),
            "derived": None if e.derived is None else zlib.compress(e.derived, _LEVEL),
            "derived_size": None if e.derived is None else len(e.derived),
            "derived_version": e.derived_version,
        }
    if not rows:
        return
    # PostgreSQL refuses one INSERT ... ON CONFLICT touching a row twice: hence the dict above.
    with db.write() as conn:
        conn.execute(db.upsert(http_cache), list(rows.values()))
