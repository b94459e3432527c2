"""Publish bursts: one publisher releasing many packages within minutes, as a worm that stole
a maintainer's token does (Shai-Hulud republished every package its victims owned). Seen from
what the ledger recorded: the publishes of every package any scan fetched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from custody.model import Ecosystem, Finding, PublishEvent, Severity
from custody.signals.base import SignalContext

BURST_PACKAGES = 5
"""Distinct packages one publisher must publish within ``BURST_WINDOW`` to make a burst."""
BURST_WINDOW = timedelta(minutes=60)
BURST_LOOKBACK = timedelta(days=365)
"""How far before a candidate the engine reads its publisher's publishes, to tell a habitual
release train (a monorepo that always publishes its packages together) from a first burst."""
MAX_LISTED = 50

_LEVELS = list(Severity)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _widest(
    events: Sequence[PublishEvent], around: datetime
) -> tuple[datetime, list[PublishEvent]]:
    """The ``BURST_WINDOW``-long window containing ``around`` with the most distinct packages:
    its start and its events."""
    near = sorted(
        (e for e in events if abs(e.published_at - around) <= BURST_WINDOW),
        key=lambda e: e.published_at,
    )
    best_start, best = around, [e for e in near if e.published_at == around]
    best_count = len({(e.ecosystem, e.package) for e in best})
    for start in sorted({e.published_at for e in near if e.published_at <= around}):
        inside = [e for e in near if start <= e.published_at <= start + BURST_WINDOW]
        count = len({(e.ecosystem, e.package) for e in inside})
        if count > best_count:
            best_start, best, best_count = start, inside, count
    return best_start, best


def _earlier_bursts(events: Sequence[PublishEvent], before: datetime) -> list[datetime]:
    """Starts of earlier windows (ending before ``before``) in which the publisher published
    ``BURST_PACKAGES`` or more distinct packages; non-overlapping, oldest first."""
    past = sorted((e for e in events if e.published_at < before), key=lambda e: e.published_at)
    starts: list[datetime] = []
    i = 0
    while i < len(past):
        start = past[i].published_at
        inside = {
            (e.ecosystem, e.package)
            for e in past[i:]
            if e.published_at <= start + BURST_WINDOW and e.published_at < before
        }
        if len(inside) >= BURST_PACKAGES:
            starts.append(start)
            while i < len(past) and past[i].published_at <= start + BURST_WINDOW:
                i += 1
        else:
            i += 1
    return starts


def _repository(ctx: SignalContext, event: PublishEvent) -> str | None:
    """The source repository the tree's history of ``event``'s package declares for it."""
    if ctx.tree is None:
        return None
    for entry in ctx.tree.lookup(Ecosystem(event.ecosystem), event.package):
        if entry.history is None:
            continue
        release = entry.history.release(event.version)
        repo = (release.repository if release else None) or entry.history.repository
        if repo:
            return repo.rstrip("/").lower()
    return None


def _one_repository(ctx: SignalContext, burst: Sequence[PublishEvent]) -> str | None:
    """The repository every package of the burst declares, when the tree knows at least half of
    them and they all agree (a monorepo's release train); else None."""
    cand = ctx.candidate
    own = cand.repository if cand else None
    if not own:
        return None
    own = own.rstrip("/").lower()
    packages = {(e.ecosystem, e.package): e for e in burst}
    repos = [_repository(ctx, e) for e in packages.values()]
    known = [r for r in repos if r is not None]
    if 2 * len(known) < len(packages) or any(r != own for r in known):
        return None
    return own


def publish_burst(ctx: SignalContext) -> list[Finding]:
    """``custody.publish-burst``: the candidate's publisher published ``BURST_PACKAGES`` or more
    distinct packages within ``BURST_WINDOW`` around it. ``high``; ``info`` when the publisher
    has done so before (a release train), or when the packages all come from one source
    repository (a monorepo's release); two steps higher when the release also adds install
    scripts (how a worm spreads). Runs in the tree pass, which knows the other packages'
    repositories."""
    cand = ctx.candidate
    if cand is None or cand.publisher is None or cand.published_at is None:
        return []
    if cand.by_shared_ci:
        return []  # the "publisher" is a shared CI identity, not an account
    who = cand.publisher.id
    at = cand.published_at
    events = [e for e in ctx.publishes if e.publisher_id == who and e.published_at <= ctx.now]
    if len(events) + 1 < BURST_PACKAGES:
        return []  # too few publishes for a burst, whatever their packages (the usual case)
    own = PublishEvent(ctx.dependency.ecosystem, cand.name, cand.version, who, at)
    if not any(e[:3] == own[:3] for e in events):
        events.append(own)
    start, burst = _widest(events, at)
    packages = {(e.ecosystem, e.package) for e in burst}
    if len(packages) < BURST_PACKAGES:
        return []
    earlier = _earlier_bursts(events, start - BURST_WINDOW)
    base = ctx.baseline
    scripts = sorted(set(cand.install_scripts) - set(base.install_scripts)) if base else []
    monorepo = _one_repository(ctx, burst)
    # a release train is info, not low: in the critical tier any custody.* finding of low holds
    severity = Severity.INFO if earlier or monorepo else Severity.HIGH
    reasons = [f"{len(packages)} packages within {int(BURST_WINDOW.total_seconds() // 60)} min"]
    if monorepo:
        reasons.append(f"all from one repository, {monorepo} (a monorepo's release)")
    if earlier:
        reasons.append(
            f"{who} published {len(earlier)} such bursts before (a release train), the last "
            f"starting {_iso(earlier[-1])}"
        )
    if scripts:
        severity = _LEVELS[min(severity.rank + 2, Severity.CRITICAL.rank)]
        reasons.append("this release also adds install scripts: " + ", ".join(scripts))
    listed = sorted(burst, key=lambda e: (e.published_at, e.package))[:MAX_LISTED]
    return [
        Finding(
            "custody.publish-burst",
            severity,
            f"{who} published {len(packages)} packages within "
            f"{int(BURST_WINDOW.total_seconds() // 60)} minutes around {cand.name} "
            f"{cand.version}: " + "; ".join(reasons[1:] or ["the pattern of a worm"]),
            {
                "publisher": who,
                "published_at": _iso(at),
                "window_start": _iso(start),
                "window_minutes": int(BURST_WINDOW.total_seconds() // 60),
                "threshold": BURST_PACKAGES,
                "count": len(packages),
                "packages": [
                    {
                        "ecosystem": Ecosystem(e.ecosystem).value,
                        "package": e.package,
                        "version": e.version,
                        "published_at": _iso(e.published_at),
                    }
                    for e in listed
                ],
                "earlier_bursts": [_iso(s) for s in earlier[-5:]],
                "one_repository": monorepo,
                "added_install_scripts": scripts,
                "weighed": reasons,
            },
        )
    ]
