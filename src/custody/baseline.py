"""Trust on first use: the custodians ``custody init`` writes for each locked release.

Who: every identity that published a locked release or an earlier release of the same major
line (publisher accounts, ``npm:trusted-publisher/ID`` for npm trusted publishing, provenance
source repositories). From when: the first release of the package, in any line, that the
identity published or was listed with as a maintainer, so that an older major of the same
author (a nested ``^1`` dependency, a rollback) is trusted too. No ``until``. Where the registry
names no publisher, today's owners stand in for them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import nodesemver
from packaging.version import InvalidVersion, Version

from custody.judge import find_release
from custody.model import Custodian, Ecosystem, LockedDependency, PackageHistory, Release
from custody.trust import TrustedEntry


@dataclass(frozen=True, slots=True)
class PackageBaseline:
    package_key: str
    entries: tuple[TrustedEntry, ...]
    versions: tuple[str, ...]  # the locked versions it was made from
    unknown: bool  # the registry names nobody: nothing to trust, only the locked versions


def _major(ecosystem: Ecosystem, version: str) -> str | None:
    try:
        if ecosystem is Ecosystem.PYPI:
            return str(Version(version).major)
        parsed = nodesemver.parse(version, loose=True)
        return None if parsed is None else str(parsed.major)
    except (InvalidVersion, ValueError, TypeError):
        return None


def _line(history: PackageHistory, release: Release) -> list[Release]:
    major = _major(history.ecosystem, release.version)
    return [
        r
        for r in [*history.predecessors(release.version), release]
        if major is None or _major(history.ecosystem, r.version) == major
    ]


def _first_seen(
    history: PackageHistory, ids: Mapping[str, Custodian]
) -> dict[str, datetime | None]:
    """For each of ``ids``: the publish time of the first release of the package, in any line,
    that names it (as publisher, provenance source or listed maintainer). None when no such
    release has a known time (trusted from the start)."""
    since: dict[str, datetime | None] = {}
    for r in history.releases:
        if r.unpublished:
            continue
        named = {c.id for c in r.identities}
        if r.maintainers:
            named.update(c.id for c in r.maintainers)
        for cid in named:
            if cid not in ids:
                continue
            first = since.get(cid)
            if cid not in since or (r.published_at and (first is None or r.published_at < first)):
                since[cid] = r.published_at
    return since


def build_baseline(
    deps: Iterable[LockedDependency],
    histories: Mapping[tuple[Ecosystem, str], PackageHistory],
    *,
    when: datetime,
) -> list[PackageBaseline]:
    versions: dict[tuple[Ecosystem, str], set[str]] = {}
    for d in deps:
        versions.setdefault((d.ecosystem, d.name), set()).add(d.version)
    out = []
    note = f"baseline written by custody init on {when.date().isoformat()}"
    for (eco, name), locked in sorted(versions.items()):
        history = histories.get((eco, name))
        if history is None:
            continue
        ids: dict[str, Custodian] = {}
        for version in sorted(locked):
            release = find_release(history, version)
            if release is None:
                continue
            for r in _line(history, release):
                for c in r.identities:
                    ids.setdefault(c.id, c)
        since = _first_seen(history, ids)
        if not ids and history.current_owners:
            for owner in history.current_owners:
                ids.setdefault(owner.custodian.id, owner.custodian)
                since.setdefault(owner.custodian.id, None)
        entries = tuple(
            TrustedEntry(
                custodian=cid,
                since=since.get(cid),
                until=None,
                note=f"{note} from {name} {', '.join(sorted(locked))}",
                numeric_id=ids[cid].numeric_id,
            )
            for cid in sorted(ids)
        )
        out.append(PackageBaseline(f"{eco.value}:{name}", entries, tuple(sorted(locked)), not ids))
    return out
