"""The fragility radar: which dependencies are both critical to you and one tired maintainer away
from a hand-over, and where to send help. Pure: histories, blast radius and observations in,
assessments out. The score is documented, factor by factor, in docs/fragility.md.

- **criticality** (0-100): fan-in within your projects (20 dependents is full marks) and, where
  a popularity endpoint is configured, weekly downloads (10 million is full marks), averaged.
  Without popularity it is fan-in alone, and the report says so.
- **fragility** (0-100): the sum of the factors below, capped at 100. Each factor carries the
  reason it fired, so a reader can check every point.
- **rank score** = criticality x fragility / 100: high only when both are."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from custody.blast import BlastRadius
from custody.model import Ecosystem, Observation, PackageHistory, Release
from custody.timeline import Event

# Points per factor (docs/fragility.md explains each).
SINGLE_MAINTAINER = 30
TWO_MAINTAINERS = 10
IDLE_2Y, IDLE_1Y, IDLE_6M = 25, 15, 5
SLOWING = 10
NO_PROVENANCE = 5
PROVENANCE_DROPPED = 10
OWNERSHIP_CHANGE = 15
DEPRECATED = 25
SEEKING_MAINTAINERS = 20

RECENT_CHANGE = timedelta(days=730)  # ownership changes younger than this count
FULL_FAN_IN = 20
FULL_WEEKLY_DOWNLOADS = 10_000_000

_NOTES = re.compile(
    r"looking for (?:a |new |more )*(?:co-?)?maintainers?|seeking (?:a |new )*maintainers?"
    r"|maintainers? (?:wanted|needed)|need(?:s|ing)? (?:a |new )*maintainers?"
    r"|un-?maintained|no longer (?:actively )?maintained|not (?:actively )?maintained"
    r"|abandoned|end[- ]of[- ]life|archived",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Factor:
    """One reason a package is fragile, with the points it adds."""

    rule: str  # stable id: fragility.single-maintainer, fragility.idle, ...
    points: int
    reason: str


@dataclass(frozen=True, slots=True)
class Assessment:
    """The radar's verdict on one package."""

    ecosystem: Ecosystem
    name: str
    locked: tuple[str, ...]  # versions locked in the scanned projects
    latest: str | None
    criticality: int
    criticality_basis: str  # "fan-in 3 (2 lockfiles), 12,345 downloads/week"
    fragility: int
    factors: tuple[Factor, ...]
    maintainers: tuple[str, ...]
    last_release: datetime | None
    help: tuple[tuple[str, str], ...]  # (kind, url): funding first, then the repository
    tier: str
    blast: BlastRadius | None = None
    popularity_known: bool = False

    @property
    def package_key(self) -> str:
        return f"{self.ecosystem.value}:{self.name}"

    @property
    def score(self) -> int:
        """Rank score: criticality x fragility / 100."""
        return round(self.criticality * self.fragility / 100)


@dataclass(frozen=True, slots=True)
class RadarInput:
    """Everything the radar looks at for one package."""

    history: PackageHistory
    blast: BlastRadius | None = None
    observations: Sequence[Observation] = ()
    locked: tuple[str, ...] = ()
    tier: str = "normal"


def _live(history: PackageHistory, now: datetime) -> list[Release]:
    return [
        r
        for r in history.releases
        if not r.unpublished and r.published_at is not None and r.published_at <= now
    ]


def _latest(history: PackageHistory, live: Sequence[Release]) -> Release | None:
    tagged = history.dist_tags.get("latest")
    if tagged:
        found = next((r for r in live if r.version == tagged), None)
        if found is not None:
            return found
    stable = [r for r in live if not _prerelease(r.version)]
    pool = stable or list(live)
    return max(pool, key=lambda r: r.published_at or datetime.min) if pool else None


def _prerelease(version: str) -> bool:
    return bool(re.search(r"[-a-zA-Z]", version.split("+", 1)[0]))


def _years(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days / 365.25:.1f} years" if days >= 365 else f"{days:.0f} days"


def _date(when: datetime | None) -> str:
    return when.date().isoformat() if when else "unknown date"


def current_maintainers(history: PackageHistory, latest: Release | None) -> tuple[str, ...] | None:
    """Today's maintainers where the registry shows them, else those listed with the latest
    release (npm), else the latest release's publisher; None when nothing tells."""
    if history.current_owners:
        people = [o.custodian.id for o in history.current_owners if o.role != "organization"]
        if people:
            return tuple(sorted(set(people)))
    if latest is not None and latest.maintainers:
        return tuple(sorted(c.id for c in latest.maintainers))
    return None


def _maintainer_factor(maintainers: tuple[str, ...] | None) -> Factor | None:
    if maintainers is None:
        return None
    if len(maintainers) == 1:
        return Factor(
            "fragility.single-maintainer",
            SINGLE_MAINTAINER,
            f"a single maintainer: {maintainers[0]}",
        )
    if len(maintainers) == 2:
        return Factor(
            "fragility.two-maintainers",
            TWO_MAINTAINERS,
            f"two maintainers: {', '.join(maintainers)}",
        )
    return None


def _idle_factor(last: Release | None, now: datetime) -> Factor | None:
    if last is None or last.published_at is None:
        return None
    idle = now - last.published_at
    days = idle.days
    points = IDLE_2Y if days >= 730 else IDLE_1Y if days >= 365 else IDLE_6M if days >= 180 else 0
    if not points:
        return None
    return Factor(
        "fragility.idle",
        points,
        f"no release for {_years(idle)} (last: {last.version} on {_date(last.published_at)})",
    )


def _slowing_factor(live: Sequence[Release], now: datetime) -> Factor | None:
    """Still releasing, but at under a third of its earlier yearly pace."""
    times = sorted(r.published_at for r in live if r.published_at is not None)
    if len(times) < 4:
        return None
    year_ago = now - timedelta(days=365)
    recent = sum(1 for t in times if t > year_ago)
    earlier = [t for t in times if t <= year_ago]
    span_days = (year_ago - times[0]).days
    if recent == 0 or span_days < 365 or not earlier:
        return None
    pace = len(earlier) / (span_days / 365.25)
    if recent >= pace / 3:
        return None
    return Factor(
        "fragility.slowing",
        SLOWING,
        f"{recent} release(s) in the last year against {pace:.1f} a year before",
    )


def _provenance_factor(live: Sequence[Release], latest: Release | None) -> Factor | None:
    if latest is None:
        return None
    if latest.provenance is not None:
        return None
    earlier = [r for r in live if r.provenance is not None]
    if earlier:
        return Factor(
            "fragility.provenance-dropped",
            PROVENANCE_DROPPED,
            f"{latest.version} has no provenance; {earlier[-1].version} had it",
        )
    return Factor(
        "fragility.no-provenance", NO_PROVENANCE, "no release carries signed build provenance"
    )


def ownership_changes(
    live: Sequence[Release], observations: Sequence[Observation], since: datetime
) -> list[str]:
    """Custody changes on record after ``since``: maintainers added or removed between releases,
    a first release by a publisher never seen before, owners Custody saw appear or go."""
    out: list[str] = []
    publishers: set[str] = set()
    previous: Release | None = None
    for r in live:
        recent = r.published_at is not None and r.published_at >= since
        if previous is not None and recent:
            if previous.maintainers is not None and r.maintainers is not None:
                for c in sorted(r.maintainers - previous.maintainers, key=str):
                    out.append(f"maintainer {c.id} added in {r.version} ({_date(r.published_at)})")
                for c in sorted(previous.maintainers - r.maintainers, key=str):
                    out.append(
                        f"maintainer {c.id} removed in {r.version} ({_date(r.published_at)})"
                    )
            if r.publisher is not None and publishers and r.publisher.id not in publishers:
                out.append(
                    f"{r.version} was the first release by {r.publisher.id} "
                    f"({_date(r.published_at)})"
                )
        if r.publisher is not None:
            publishers.add(r.publisher.id)
        previous = r
    if observations:
        first_look = min(o.first_seen for o in observations)
        for o in observations:
            if o.first_seen > first_look and o.first_seen >= since:
                out.append(f"Custody saw {o.fact} {o.subject} appear on {_date(o.first_seen)}")
            if o.gone_since is not None and o.gone_since >= since:
                out.append(f"Custody saw {o.fact} {o.subject} go on {_date(o.gone_since)}")
    return out


def _ownership_factor(
    live: Sequence[Release], observations: Sequence[Observation], now: datetime
) -> Factor | None:
    changes = ownership_changes(live, observations, now - RECENT_CHANGE)
    if not changes:
        return None
    more = f" and {len(changes) - 2} more" if len(changes) > 2 else ""
    return Factor("fragility.ownership-change", OWNERSHIP_CHANGE, "; ".join(changes[:2]) + more)


def _notes_factors(history: PackageHistory, latest: Release | None) -> list[Factor]:
    out: list[Factor] = []
    deprecated = history.deprecated or (latest.deprecated if latest else None)
    if deprecated:
        out.append(Factor("fragility.deprecated", DEPRECATED, f"deprecated: {deprecated[:160]}"))
    match = _NOTES.search(history.description or "")
    if match:
        out.append(
            Factor(
                "fragility.seeking-maintainers",
                SEEKING_MAINTAINERS,
                f"its description says {match.group(0)!r}: {history.description or ''}"[:200],
            )
        )
    return out


def where_to_help(history: PackageHistory) -> tuple[tuple[str, str], ...]:
    """Funding links (npm ``funding``, PyPI Funding/Sponsor project URLs), then the repository."""
    links = [("funding", url) for url in history.funding]
    if history.repository:
        links.append(("repository", history.repository))
    return tuple(dict.fromkeys(links))


def criticality(blast: BlastRadius | None) -> tuple[int, str, bool]:
    """``(score 0-100, what it is based on, popularity known)``."""
    if blast is None:
        return 0, "not locked in the scanned projects", False
    f = min(1.0, math.log1p(blast.fan_in) / math.log1p(FULL_FAN_IN))
    basis = f"fan-in {blast.fan_in} ({blast.lockfiles} lockfile{'s' * (blast.lockfiles != 1)})"
    if blast.weekly_downloads is None:
        return round(100 * f), basis, False
    p = min(1.0, math.log10(1 + blast.weekly_downloads) / math.log10(FULL_WEEKLY_DOWNLOADS))
    basis += f", {blast.weekly_downloads:,} downloads/week"
    return round(100 * (f + p) / 2), basis, True


def assess(item: RadarInput, now: datetime) -> Assessment:
    history = item.history
    live = _live(history, now)
    latest = _latest(history, live)
    last = max(live, key=lambda r: r.published_at or datetime.min) if live else None
    maintainers = current_maintainers(history, latest)
    factors = [
        f
        for f in (
            _maintainer_factor(maintainers),
            _idle_factor(last, now),
            _slowing_factor(live, now),
            _provenance_factor(live, latest),
            _ownership_factor(live, item.observations, now),
        )
        if f is not None
    ]
    factors += _notes_factors(history, latest)
    crit, basis, known = criticality(item.blast)
    return Assessment(
        ecosystem=history.ecosystem,
        name=history.name,
        locked=item.locked,
        latest=latest.version if latest else None,
        criticality=crit,
        criticality_basis=basis,
        fragility=min(100, sum(f.points for f in factors)),
        factors=tuple(sorted(factors, key=lambda f: -f.points)),
        maintainers=maintainers or (),
        last_release=last.published_at if last else None,
        help=where_to_help(history),
        tier=item.tier,
        blast=item.blast,
        popularity_known=known,
    )


def rank(items: Iterable[RadarInput], now: datetime) -> list[Assessment]:
    """Every package assessed, most critical-and-fragile first (rank score, then fragility,
    then criticality, then name)."""
    assessed = [assess(item, now) for item in items]
    return sorted(assessed, key=lambda a: (-a.score, -a.fragility, -a.criticality, a.package_key))


@dataclass(frozen=True, slots=True)
class FragileReport:
    """The result of ``custody fragile``, shared by every output format."""

    assessments: tuple[Assessment, ...]
    generated_at: datetime
    as_of: datetime | None = None
    lockfiles: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # popularity fallbacks and other caveats, shown to the reader
    timelines: Mapping[str, tuple[Event, ...]] = field(default_factory=dict)  # by package key
