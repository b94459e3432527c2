"""``custody fragile`` orchestration: lockfiles -> histories and popularity (through the ledger's
cache) -> blast radius -> the fragility ranking (custody.fragility, pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime

from custody.blast import blast_radius
from custody.engine import FetchOptions, Locked, fetch, record_observations
from custody.fragility import FragileReport, RadarInput, rank
from custody.ledger import Ledger
from custody.model import Ecosystem
from custody.policy import Policy, blast_tier
from custody.popularity import PopularitySettings, load_popularity
from custody.registries.config import RegistrySettings
from custody.timeline import timeline


def fragile(
    locked: Locked,
    ledger: Ledger,
    settings: RegistrySettings,
    popularity: PopularitySettings,
    policy: Policy,
    *,
    as_of: datetime | None = None,
    options: FetchOptions | None = None,
) -> FragileReport:
    """Rank every locked package by criticality x fragility."""
    options = options or FetchOptions()
    deps = locked.dependencies
    fetched = fetch(deps, settings, ledger, options)
    now = datetime.now(UTC)
    observations = record_observations(ledger, fetched.histories.values(), now)
    packages = sorted(fetched.histories)
    pop = load_popularity(packages, popularity, ledger, ca_files=settings.ca_files)
    blasts = blast_radius(
        deps,
        {pid: (p.weekly_downloads, p.dependents) for pid, p in pop.found.items()},
    )
    versions: Mapping[tuple[Ecosystem, str], set[str]] = _versions(locked)
    when = as_of or now
    items = []
    timelines = {}
    for pid, history in sorted(fetched.histories.items()):
        cut = history.as_of(as_of)
        key = f"{pid[0].value}:{pid[1]}"
        blast = blasts.get(key)
        obs = [o for o in observations.get(pid, []) if o.first_seen <= when]
        tier = blast_tier(
            policy, blast.fan_in if blast else 1, blast.weekly_downloads if blast else None
        )
        items.append(RadarInput(cut, blast, obs, tuple(sorted(versions.get(pid, ()))), tier.name))
        timelines[key] = tuple(e for e in timeline(cut, obs) if e.at is None or e.at <= when)
    notes = list(pop.notes)
    notes += [f"not on the registry: {eco.value}:{name}" for eco, name in sorted(fetched.missing)]
    return FragileReport(
        assessments=tuple(rank(items, when)),
        generated_at=now,
        as_of=as_of,
        lockfiles=locked.lockfiles,
        notes=tuple(notes),
        timelines=timelines,
    )


def _versions(locked: Locked) -> dict[tuple[Ecosystem, str], set[str]]:
    out: dict[tuple[Ecosystem, str], set[str]] = defaultdict(set)
    for d in locked.dependencies:
        out[(d.ecosystem, d.name)].add(d.version)
    return out
