"""Blast radius: fan-in from the lockfiles' dependency paths within the scanned projects, joined
with public popularity (custody.popularity) where an endpoint is configured. Fan-in is always
available; popularity is not, and reports say when it is missing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from custody.model import Ecosystem, LockedDependency

ROOT = "<root>"


def fan_in(deps: Iterable[LockedDependency]) -> dict[str, int]:
    """Per package key (``npm:name``), the number of distinct dependents pulling it in across
    all scanned lockfiles: each lockfile root that depends on it directly counts once, and each
    distinct parent package in its recorded paths counts once."""
    parents: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for dep in deps:
        key = dep.package_key
        lockfile = dep.location.path if dep.location else ""
        if dep.direct:
            parents[key].add((lockfile, ROOT))
        for path in dep.paths:
            if len(path) >= 2:
                parents[key].add(("", path[-2]))
            elif len(path) == 1:
                parents[key].add((lockfile, ROOT))
        parents.setdefault(key, set())
    return {key: max(len(p), 1) for key, p in parents.items()}


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """How far a bad release of one package would reach."""

    ecosystem: Ecosystem
    name: str
    fan_in: int
    """Distinct dependents within the scanned lockfiles (see ``fan_in``)."""
    lockfiles: int
    """Scanned lockfiles that lock it."""
    direct: bool
    """A direct dependency of at least one scanned project."""
    depth: int
    """Shortest dependency path from a project root (1: direct)."""
    weekly_downloads: int | None = None
    """Public downloads over the last week; None when no endpoint told."""
    dependents: int | None = None
    """Public dependents where the endpoint tells."""

    @property
    def package_key(self) -> str:
        return f"{self.ecosystem.value}:{self.name}"


def blast_radius(
    deps: Iterable[LockedDependency],
    popularity: Mapping[tuple[Ecosystem, str], tuple[int | None, int | None]] | None = None,
) -> dict[str, BlastRadius]:
    """Per package key, fan-in, spread and depth within the scanned lockfiles, plus public
    ``popularity`` as ``(weekly_downloads, dependents)`` per ``(ecosystem, name)`` when known."""
    deps = list(deps)
    fans = fan_in(deps)
    lockfiles: dict[str, set[str]] = defaultdict(set)
    direct: dict[str, bool] = defaultdict(bool)
    depth: dict[str, int] = {}
    ids: dict[str, tuple[Ecosystem, str]] = {}
    for dep in deps:
        key = dep.package_key
        ids[key] = (dep.ecosystem, dep.name)
        lockfiles[key].add(dep.location.path if dep.location else "")
        direct[key] = direct[key] or dep.direct
        shortest = min((len(p) for p in dep.paths if p), default=1 if dep.direct else 2)
        depth[key] = min(depth.get(key, shortest), shortest)
    out = {}
    for key, (eco, name) in ids.items():
        weekly, dependents = (popularity or {}).get((eco, name), (None, None))
        out[key] = BlastRadius(
            eco,
            name,
            fans.get(key, 1),
            len(lockfiles[key]),
            direct[key],
            depth[key],
            weekly,
            dependents,
        )
    return out
