"""What the signals need from the ledger besides package histories: the publish events of every
fetched history (recorded, then read back per publisher for ``custody.publish-burst``) and the
known-bad records naming the scanned packages (``known.malicious``). I/O, called by the engine
before judging, so that the signals stay pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from custody.judge import find_release
from custody.ledger import Ledger
from custody.model import Ecosystem, LockedDependency, PackageHistory, PublishEvent, Release
from custody.osv import KnownBadRecord
from custody.signals.base import package_id
from custody.signals.burst import BURST_LOOKBACK, BURST_WINDOW

PackageId = tuple[Ecosystem, str]

RECORD_HORIZON = timedelta(days=365)
"""Publishes older than this (before ``now``, or ``--as-of``) are not recorded: bursts are
judged around recent releases, and a first run over a large tree stays cheap."""


def _events(history: PackageHistory, since: datetime) -> list[PublishEvent]:
    """The publishes worth remembering: a known publisher account (not a shared CI identity
    such as npm's trusted publishing) and a publish time."""
    out = []
    for r in history.releases:
        if r.publisher is None or r.published_at is None or r.published_at < since:
            continue
        if r.by_shared_ci:
            continue
        out.append(
            PublishEvent(history.ecosystem, history.name, r.version, r.publisher.id, r.published_at)
        )
    return out


def record_publishes(ledger: Ledger, histories: Iterable[PackageHistory], now: datetime) -> int:
    """Record the publishes of ``histories`` since ``now - RECORD_HORIZON``. Cheap when nothing
    changed: one query counts what the ledger already holds per package, and only packages
    whose count differs are written. Returns the number of events offered for writing."""
    # an --as-of in year 1 would overflow: from the start of time, then
    since = now - min(RECORD_HORIZON, now - now.min.replace(tzinfo=now.tzinfo))
    events = {(h.ecosystem, h.name): _events(h, since) for h in histories}
    events = {k: v for k, v in events.items() if v}
    if not events:
        return 0
    known = ledger.publish_counts(events, since)
    fresh = [e for key, evs in events.items() if known.get(key, 0) != len(evs) for e in evs]
    if fresh:
        ledger.record_publishes(fresh)
    return len(fresh)


def publishes_around(
    ledger: Ledger, candidates: Iterable[Release], now: datetime
) -> dict[str, list[PublishEvent]]:
    """Per publisher of ``candidates``: the ledger's publishes of that publisher from
    ``BURST_LOOKBACK`` before its earliest candidate to ``BURST_WINDOW`` after its latest (not
    after ``now``). One query for all of them."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for r in candidates:
        if r.publisher is None or r.published_at is None:
            continue
        if r.by_shared_ci:
            continue
        low, high = spans.get(r.publisher.id, (r.published_at, r.published_at))
        spans[r.publisher.id] = (min(low, r.published_at), max(high, r.published_at))
    return ledger.publishes_within(
        {
            who: (low - BURST_LOOKBACK, min(high + BURST_WINDOW, now))
            for who, (low, high) in spans.items()
        }
    )


def known_bad_for(
    ledger: Ledger, deps: Iterable[LockedDependency]
) -> dict[PackageId, list[KnownBadRecord]]:
    """The known-bad records naming the scanned packages, in one query."""
    return ledger.known_bad_for({package_id(d.ecosystem, d.name) for d in deps})


def candidates(
    deps: Sequence[LockedDependency],
    histories: Mapping[PackageId, PackageHistory],
    as_of: datetime | None,
) -> list[Release]:
    """The locked releases the registries know, as of ``as_of``."""
    out = []
    seen: defaultdict[PackageId, set[str]] = defaultdict(set)
    for d in deps:
        history = histories.get((d.ecosystem, d.name))
        if history is None or d.version in seen[(d.ecosystem, d.name)]:
            continue
        seen[(d.ecosystem, d.name)].add(d.version)
        release = find_release(history.as_of(as_of), d.version)
        if release is not None:
            out.append(release)
    return out
