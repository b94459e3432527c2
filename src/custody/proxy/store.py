"""Judged packages in memory: the upstream document, its decisions and the rendered answers.

A request for a package is answered from memory while everything it depends on is current:

- the upstream copy was confirmed less than ``max_age`` seconds ago;
- the trust file, the known-bad records and the time-weighed rules (a cooldown ending) have not
  changed since the package was judged;
- the package's reviews have not changed since the verdicts were laid over the judgement.

Otherwise one task per package revalidates the upstream copy (a conditional request: an
unchanged document is neither parsed nor judged again) and judges every version again when the
document, the trust file or the known-bad records changed, in a worker thread. Requests wait
for it for at most ``stale_after`` seconds when a judged copy exists: after that, or when the
upstream fails, they get the last good filtered copy, marked stale. A package never fetched
before, with the upstream down, fails closed (503): nothing unfiltered is ever served."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from custody import gather
from custody.engine import record_observations
from custody.errors import PackageNotFound, RegistryUnavailable
from custody.ledger import Ledger
from custody.model import Action, Ecosystem
from custody.proxy.judging import (
    Judgement,
    Verdict,
    held_rows,
    judge_package,
    next_change,
    verdicts,
)
from custody.proxy.metrics import Metrics
from custody.proxy.reviews import Reviews
from custody.proxy.trustwatch import TrustWatcher
from custody.proxy.upstream import Source, Upstreams
from custody.signals.base import package_id

log = logging.getLogger("custody.proxy")
PackageKey = tuple[Ecosystem, str]
KnownBadMarker = tuple[int, Any]
_generation = itertools.count(1)
_MISSING_TTL = 30.0


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a refresh's exception as seen: the requests that awaited it got it already."""
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True, slots=True)
class Snapshot:
    ecosystem: Ecosystem
    name: str
    source: Source
    fingerprint: bytes
    judgement: Judgement
    trust_version: str
    known_bad: KnownBadMarker
    rejudge_at: datetime
    generation: int


@dataclass(frozen=True, slots=True)
class View:
    snapshot: Snapshot
    verdicts: Mapping[str, Verdict]
    stamp: tuple[int, int]  # (snapshot generation, review stamp): what rendered answers key on


@dataclass(frozen=True, slots=True)
class Answer:
    view: View
    stale: bool
    reason: str | None


@dataclass
class _Entry:
    snapshot: Snapshot | None = None
    checked: float = float("-inf")
    stale: bool = False
    reason: str | None = None
    task: asyncio.Task[None] | None = None
    view: View | None = None
    rendered: dict[Any, Any] = field(default_factory=dict)
    missing_until: float = float("-inf")
    held: list[tuple[str, Action, tuple[str, ...], str]] | None = None
    first_seen: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoreSettings:
    max_age: float = 60.0
    stale_after: float = 3.0
    retry_after_error: float = 5.0
    judge_ttl: float = 600.0
    unknown_packages: str = "first-use"
    max_packages: int = 5000
    max_bytes: int = 512 * 1024 * 1024  # upstream documents kept judged in memory


class PackageStore:
    def __init__(
        self,
        settings: StoreSettings,
        upstreams: Upstreams,
        ledger: Ledger,
        trust: TrustWatcher,
        reviews: Reviews,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.upstreams = upstreams
        self.ledger = ledger
        self.trust = trust
        self.reviews = reviews
        self.metrics = metrics
        self.known_bad: KnownBadMarker = (0, None)
        self._entries: OrderedDict[PackageKey, _Entry] = OrderedDict()
        self._held: dict[PackageKey, int] = {}
        self._bytes = 0

    # -- answering ------------------------------------------------------------------------

    def _current(self, snap: Snapshot) -> bool:
        return (
            snap.trust_version == self.trust.current.version
            and snap.known_bad == self.known_bad
            and datetime.now(UTC) < snap.rejudge_at
        )

    def entry(self, key: PackageKey) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            self._evict()
        else:
            self._entries.move_to_end(key)
        return entry

    def _evict(self) -> None:
        """Forget the least recently used packages beyond the count and the memory budget
        (the upstream documents' sizes; parsed, they take several times that)."""
        limit, budget = self.settings.max_packages, self.settings.max_bytes
        for key in list(self._entries):
            if len(self._entries) <= limit and self._bytes <= budget:
                return
            old = self._entries[key]
            if old.task is not None and not old.task.done():
                continue  # being refreshed: keep it
            del self._entries[key]
            if old.snapshot is not None:
                self._bytes -= old.snapshot.source.size

    async def answer(self, ecosystem: Ecosystem, name: str) -> tuple[Answer, _Entry]:
        """The package's current verdicts. Raises ``PackageNotFound`` (the upstream does not
        know it) and ``RegistryUnavailable`` (no judged copy and the upstream failed)."""
        key = (ecosystem, name)
        entry = self.entry(key)
        now = time.monotonic()
        if entry.missing_until > now:
            raise PackageNotFound(self._registry(ecosystem), name)
        snap = entry.snapshot
        if snap is not None and now - entry.checked < self.settings.max_age and self._current(snap):
            self.metrics.cache.labels("metadata", "hit").inc()
            return Answer(self._view(entry, snap), entry.stale, entry.reason), entry
        if entry.task is None or entry.task.done():
            entry.task = asyncio.create_task(self._refresh(key, entry))
            entry.task.add_done_callback(_retrieve)
        if snap is not None:
            try:
                await asyncio.wait_for(asyncio.shield(entry.task), self.settings.stale_after)
            except TimeoutError:
                self.metrics.stale.labels(ecosystem.value).inc()
                reason = f"the upstream did not answer within {self.settings.stale_after:g}s"
                return Answer(self._view(entry, snap), True, reason), entry
            except PackageNotFound:
                raise
            except Exception as exc:  # the last good judgement, marked stale; never unfiltered
                log.exception("refreshing %s:%s failed", ecosystem.value, name)
                self.metrics.stale.labels(ecosystem.value).inc()
                reason = f"judging failed ({type(exc).__name__}); the last judged copy"
                return Answer(self._view(entry, snap), True, reason), entry
        else:
            await asyncio.shield(entry.task)
        snap = entry.snapshot
        if snap is None:
            raise RegistryUnavailable(self._registry(ecosystem), f"no verdict for {name}")
        if entry.stale:
            self.metrics.stale.labels(ecosystem.value).inc()
        return Answer(self._view(entry, snap), entry.stale, entry.reason), entry

    def _registry(self, ecosystem: Ecosystem) -> str:
        up = self.upstreams
        if ecosystem is Ecosystem.NPM and up.npm_settings is not None:
            return up.npm_settings.registry
        if up.pypi_settings is not None:
            return up.pypi_settings.index_url
        return "upstream"

    def _view(self, entry: _Entry, snap: Snapshot) -> View:
        stamp = (snap.generation, self.reviews.stamp(snap.ecosystem, snap.name))
        view = entry.view
        if view is None or view.stamp != stamp or view.snapshot is not snap:
            notes = self.reviews.for_package(snap.ecosystem, snap.name)
            view = View(snap, verdicts(snap.judgement, notes), stamp)
            entry.view = view
            entry.rendered.clear()
        return view

    # -- refreshing -----------------------------------------------------------------------

    async def _refresh(self, key: PackageKey, entry: _Entry) -> None:
        ecosystem, name = key
        snap = entry.snapshot
        settings = self.settings
        source = snap.source if snap is not None else None
        fingerprint = snap.fingerprint if snap is not None else None
        changed = False
        if snap is None or time.monotonic() - entry.checked >= settings.max_age:
            fetch: Callable[[str, bytes | None], Any] = (
                self.upstreams.npm if ecosystem is Ecosystem.NPM else self.upstreams.pypi
            )
            try:
                fetched = await fetch(name, fingerprint)
            except PackageNotFound:
                if entry.snapshot is not None:
                    self._bytes -= entry.snapshot.source.size
                entry.snapshot = None
                entry.view = None
                entry.rendered.clear()
                entry.missing_until = time.monotonic() + min(settings.max_age, _MISSING_TTL)
                self._count_held(key, [])
                raise
            except RegistryUnavailable as exc:
                self.metrics.upstream_errors.labels(ecosystem.value, "metadata").inc()
                if snap is None:
                    raise
                entry.stale, entry.reason = True, f"upstream unavailable: {exc.reason}"
                entry.checked = time.monotonic() - settings.max_age + settings.retry_after_error
                if self._current(snap):
                    return
            else:
                if fetched.stale:
                    self.metrics.upstream_errors.labels(ecosystem.value, "metadata").inc()
                    entry.stale, entry.reason = True, "upstream unavailable: the ledger's last copy"
                    entry.checked = time.monotonic() - settings.max_age + settings.retry_after_error
                else:
                    entry.stale, entry.reason = False, None
                    entry.checked = time.monotonic()
                if fetched.source is not None:
                    source, fingerprint, changed = fetched.source, fetched.fingerprint, True
                    self.metrics.cache.labels("metadata", "changed").inc()
                else:
                    self.metrics.cache.labels("metadata", "revalidated").inc()
            finally:
                try:
                    self.upstreams.flush()
                except Exception as exc:
                    log.error("cannot write the upstream cache to the ledger: %s", exc)
        if source is None or fingerprint is None:
            return
        if not changed and snap is not None and self._current(snap):
            return
        started = time.perf_counter()
        new = await asyncio.to_thread(
            self._judge, ecosystem, name, source, fingerprint, changed, entry
        )
        self.metrics.judgements.labels(ecosystem.value).inc()
        self.metrics.judge_seconds.labels(ecosystem.value).observe(time.perf_counter() - started)
        self._bytes += new.source.size - (entry.snapshot.source.size if entry.snapshot else 0)
        entry.snapshot = new
        entry.missing_until = float("-inf")
        self._evict()

    def _judge(
        self,
        ecosystem: Ecosystem,
        name: str,
        source: Source,
        fingerprint: bytes,
        changed: bool,
        entry: _Entry,
    ) -> Snapshot:
        """In a worker thread: the ledger's facts about the package, then every version."""
        loaded = self.trust.current
        known_bad = self.known_bad
        now = datetime.now(UTC)
        history = source.history
        ledger = self.ledger
        pid = package_id(ecosystem, name)
        if changed:
            observed = record_observations(ledger, [history], now)
            gather.record_publishes(ledger, [history], now)
        else:
            observed = {
                (ecosystem, n): o for n, o in ledger.observations(ecosystem, [name]).items()
            }
        live = [r for r in history.releases if not r.unpublished]
        if entry.first_seen is None:
            entry.first_seen = ledger.first_seen(ecosystem, name, now)
        judgement = judge_package(
            history,
            loaded.trust,
            unknown_packages=self.settings.unknown_packages,
            now=now,
            first_seen=entry.first_seen,
            observations=observed.get((ecosystem, history.name), ()),
            known_bad=ledger.known_bad_for({pid}).get(pid, ()),
            publishes=gather.publishes_around(ledger, live, now),
            trust_version=loaded.version,
            previous=entry.snapshot.judgement if entry.snapshot is not None else None,
        )
        rows = held_rows(judgement)
        if rows != entry.held:
            try:
                ledger.replace_holds(ecosystem, name, rows, now)
                entry.held = rows
            except Exception as exc:
                log.error("cannot record the holds of %s:%s: %s", ecosystem.value, name, exc)
        self._count_held((ecosystem, name), rows)
        return Snapshot(
            ecosystem=ecosystem,
            name=name,
            source=source,
            fingerprint=fingerprint,
            judgement=judgement,
            trust_version=loaded.version,
            known_bad=known_bad,
            rejudge_at=next_change(judgement, timedelta(seconds=self.settings.judge_ttl)),
            generation=next(_generation),
        )

    def _count_held(self, key: PackageKey, rows: list[Any]) -> None:
        self._held[key] = len(rows)
        total = sum(n for (eco, _name), n in self._held.items() if eco is key[0])
        self.metrics.held.labels(key[0].value).set(total)

    # -- maintenance ----------------------------------------------------------------------

    def packages(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        tasks = [e.task for e in self._entries.values() if e.task is not None and not e.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
