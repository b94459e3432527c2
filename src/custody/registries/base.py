"""The registry reader interface and the response cache it uses.

Readers fetch everything a signal could need, concurrently and through the cache, before any
signal runs. Signals never touch the network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from custody.model import Ecosystem, PackageHistory


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A registry response kept with its validators so a warm run only revalidates.

    ``derived`` holds the parsed form (a msgspec-encoded ``PackageHistory``) produced by parser
    version ``derived_version``; on a 304 the reader reuses it instead of parsing again.

    ``body_omitted``: loaded with ``bodies=False`` beside a derived blob, so ``body`` is ``b""``
    and the real body is still in the cache (``ResponseCache.load`` it when it is needed)."""

    url: str
    status: int
    body: bytes  # raw response body (as received, decoded from transfer encoding)
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    derived: bytes | None = None
    derived_version: str | None = None
    body_omitted: bool = False
    fresh_for: float | None = None  # seconds after fetched_at the registry called it fresh
    gzip_body: bytes | None = None  # the body as the registry sent it, gzip-compressed; then
    # ``body`` may be ``b""`` until someone inflates it, and the cache stores these bytes as is
    final_url: str | None = None  # where the body came from after redirects, if not ``url``:
    # relative links in it resolve against this, on warm runs as on the run that fetched it


class ResponseCache(Protocol):
    """Implemented by the ledger (SQLite / PostgreSQL) and by an in-memory dict for tests."""

    def load(self, urls: Sequence[str], *, bodies: bool = True) -> dict[str, CachedResponse]:
        """The entries cached for ``urls`` (missing ones are absent). With ``bodies=False`` an
        entry that has a derived blob may come without its body (``body_omitted``): a warm run
        mostly needs only the derived blob, and bodies are most of the bytes."""
        ...

    def store(self, entries: Sequence[CachedResponse]) -> None:
        """Insert or replace ``entries`` (an entry with ``body_omitted`` keeps the stored body)."""
        ...

    def touch(
        self, fetched: Mapping[str, datetime], fresh_for: Mapping[str, float | None] | None = None
    ) -> None:
        """The registry confirmed these entries unchanged (a 304) at these times: update their
        ``fetched_at``, and their ``fresh_for`` where the 304 said it (``fresh_for``), nothing
        else. Unknown URLs are ignored."""
        ...


class RegistryReader(Protocol):
    ecosystem: Ecosystem
    registry: str  # base URL, for messages ("registry http://127.0.0.1:4873/ unavailable")

    def cache_urls(self, name: str) -> list[str]:
        """The URLs ``history(name)`` reads (to preload or revalidate their cache entries)."""
        ...

    async def history(self, name: str) -> PackageHistory:
        """The package's custody history. Raises ``PackageNotFound`` for an unknown package and
        ``RegistryUnavailable`` after retries for timeouts, 5xx and garbage."""
        ...

    async def enrich(self, history: PackageHistory, versions: Sequence[str]) -> PackageHistory:
        """Fill in per-release details that cost one request each (PyPI dependencies from PEP 658
        ``.metadata``) for just these versions. npm packuments already carry them."""
        ...
