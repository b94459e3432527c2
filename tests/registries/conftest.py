"""Helpers for the registry reader tests: an in-memory ResponseCache and fast HTTP options.

Registry servers come from tests/support/servers.py (``devpi``) and pytest-httpserver
(``httpserver``, for documents we shape ourselves and for misbehaving servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
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
    """A ResponseCache in a dict, counting calls (the ledger implements the real one)."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedResponse] = {}
        self.load_calls: list[list[str]] = []
        self.store_calls: list[list[CachedResponse]] = []

    def load(self, urls: Sequence[str]) -> dict[str, CachedResponse]:
        self.load_calls.append(list(urls))
        return {u: self.entries[u] for u in urls if u in self.entries}

    def store(self, entries: Sequence[CachedResponse]) -> None:
        self.store_calls.append(list(entries))
        for entry in entries:
            self.entries[entry.url] = entry


@pytest.fixture
def memory_cache() -> MemoryCache:
    return MemoryCache()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
