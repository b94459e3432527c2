"""Helpers for the registry reader tests: an in-memory ResponseCache and fast HTTP options.

Registry servers come from tests/support/servers.py (``devpi``) and pytest-httpserver
(``httpserver``, for documents we shape ourselves and for misbehaving servers)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pytest

from custody.registries.base import CachedResponse
from custody.registries.http import HttpOptions

T = TypeVar("T")

FAST = HttpOptions(
    backoff=0.01,
    backoff_cap=0.05,
    retry_after_cap=0.3,
    connect_timeout=2.0,
    read_timeout=2.0,
)


class MemoryCache:
    """A ResponseCache in a dict, counting calls (the ledger implements the real one). Like the
    ledger, ``bodies=False`` leaves out the body of entries that have a derived blob."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedResponse] = {}
        self.load_calls: list[list[str]] = []
        self.store_calls: list[list[CachedResponse]] = []
        self.touch_calls: list[dict[str, datetime]] = []

    def load(self, urls: Sequence[str], *, bodies: bool = True) -> dict[str, CachedResponse]:
        self.load_calls.append(list(urls))
        found = {u: self.entries[u] for u in urls if u in self.entries}
        if not bodies:
            for url, entry in found.items():
                if entry.derived is not None:
                    found[url] = dataclasses.replace(entry, body=b"", body_omitted=True)
        return found

    def store(self, entries: Sequence[CachedResponse]) -> None:
        self.store_calls.append(list(entries))
        for entry in entries:
            if entry.body_omitted and entry.url in self.entries:
                entry = dataclasses.replace(
                    entry, body=self.entries[entry.url].body, body_omitted=False
                )
            self.entries[entry.url] = entry

    def touch(
        self, fetched: Mapping[str, datetime], fresh_for: Mapping[str, float | None] | None = None
    ) -> None:
        self.touch_calls.append(dict(fetched))
        for url, when in fetched.items():
            if url in self.entries:
                entry = dataclasses.replace(self.entries[url], fetched_at=when)
                if fresh_for is not None and url in fresh_for:
                    entry = dataclasses.replace(entry, fresh_for=fresh_for[url])
                self.entries[url] = entry


@pytest.fixture
def memory_cache() -> MemoryCache:
    return MemoryCache()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
