"""Blast radius within the scanned projects: fan-in from the lockfiles' dependency paths.

Public popularity (downloads, dependents) joins this later; fan-in is always available."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from custody.model import LockedDependency

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
