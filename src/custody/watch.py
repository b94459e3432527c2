"""``custody watch``: poll the registries for every package in the inventory and report custody
changes as they appear, as JSON lines (schema ``custody/watch-event@1``) and optionally to a
webhook.

Each poll revalidates every package's registry document (a 304 costs little) and:

- judges every release newer than the newest version the inventory locks with the same judge
  and signals as ``custody check`` (custody.judge), against the trust file of each project that
  locks it; a release with a custody finding (new publisher, new maintainer, provenance
  downgrade, ...) is reported once: the ledger's decision log remembers it (source ``watch``);
- reports owners Custody sees appear or go (PyPI roles, devpi upload ACL, npm maintainers) since
  the previous look."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from custody.engine import FetchOptions, fetch, record_observations
from custody.judge import judge_release
from custody.ledger import DecisionRecord, InventoryEntry, Ledger
from custody.model import Decision, Ecosystem, LockedDependency, Observation, PackageHistory
from custody.registries.config import RegistrySettings
from custody.trust import EMPTY_TRUST, TrustFile, find_trust_file, load_trust_file

SCHEMA = "custody/watch-event@1"
SOURCE = "watch"
QUIET_RULES = frozenset({"custody.unknown-publisher"})  # a stripped mirror says it of everything

PackageId = tuple[Ecosystem, str]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    kind: str  # "release" | "owner-added" | "owner-removed"
    ecosystem: Ecosystem
    package: str
    seen_at: datetime
    version: str | None = None
    decision: Decision | None = None
    subject: str | None = None  # the owner, for owner events
    role: str | None = None
    projects: tuple[str, ...] = ()
    lockfiles: tuple[str, ...] = ()
    locked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "seen_at": _iso(self.seen_at),
            "ecosystem": self.ecosystem.value,
            "package": self.package,
            "version": self.version,
            "from_version": d.from_version if d else None,
            "action": d.action.value if d else None,
            "tier": d.tier if d else None,
            "findings": [
                {
                    "rule": f.rule,
                    "severity": f.severity.value,
                    "message": f.message,
                    "evidence": f.evidence,
                }
                for f in (d.findings if d else ())
            ],
            "subject": self.subject,
            "role": self.role,
            "projects": list(self.projects),
            "lockfiles": list(self.lockfiles),
            "locked": list(self.locked),
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict()).decode()


@dataclass
class _Package:
    versions: set[str] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)
    lockfiles: set[str] = field(default_factory=set)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _group(entries: Iterable[InventoryEntry]) -> dict[PackageId, _Package]:
    out: dict[PackageId, _Package] = defaultdict(_Package)
    for e in entries:
        p = out[(e.ecosystem, e.name)]
        p.versions.add(e.version)
        p.projects.add(e.project)
        p.lockfiles.add(e.lockfile)
    return out


def newer_releases(history: PackageHistory, locked: Iterable[str]) -> list[str]:
    """Versions listed after the newest locked one (publish order), still published."""
    wanted = set(locked)
    positions = [i for i, r in enumerate(history.releases) if r.version in wanted]
    start = max(positions) + 1 if positions else len(history.releases)
    return [r.version for r in history.releases[start:] if not r.unpublished]


class TrustFiles:
    """The trust file of each lockfile (found from its folder up), loaded once."""

    def __init__(self, given: Path | None = None) -> None:
        self.given = given
        self._loaded: dict[Path | None, TrustFile] = {}

    def for_lockfile(self, lockfile: str) -> TrustFile:
        path = self.given or find_trust_file(Path(lockfile).parent)
        if path not in self._loaded:
            self._loaded[path] = load_trust_file(path) if path is not None else EMPTY_TRUST
        return self._loaded[path]


def _reported(ledger: Ledger, eco: Ecosystem, name: str) -> set[str]:
    return {r.version for r in ledger.decisions(ecosystem=eco, package=name) if r.source == SOURCE}


def _custody_change(decision: Decision) -> bool:
    return any(
        f.rule.startswith("custody.") and f.rule not in QUIET_RULES for f in decision.findings
    )


def _judge(
    history: PackageHistory,
    version: str,
    trusts: Sequence[TrustFile],
    observations: Sequence[Observation],
    now: datetime,
    fan_in: int,
) -> Decision | None:
    """The strictest decision over the trust files of the projects that lock the package,
    when it reports a custody change."""
    dep = LockedDependency(history.ecosystem, history.name, version, direct=True)
    found: Decision | None = None
    for trust in trusts:
        decision = judge_release(
            dep, history, trust, observations=observations, now=now, fan_in=fan_in
        ).decision
        if _custody_change(decision) and (
            found is None or decision.action.rank > found.action.rank
        ):
            found = decision
    return found


def _owner_events(
    before: Mapping[PackageId, Sequence[Observation]],
    after: Mapping[PackageId, Sequence[Observation]],
) -> list[tuple[PackageId, Observation, str]]:
    """Owners this poll's look saw appear or go: the intervals it opened or closed, compared
    with what the ledger held before it. Looks are recorded at the registry's answer time, not
    at the poll's, so a poll that reuses an answer an earlier poll already recorded changes
    nothing and reports nothing again."""
    out = []
    for pid, obs in after.items():
        prior = {_interval(o): o for o in before.get(pid, ())}
        if not prior:
            continue  # the first look at this package: nothing to compare with
        for o in obs:
            was = prior.get(_interval(o))
            if was is None:
                out.append((pid, o, f"{o.fact}-added"))
            if o.gone_since is not None and (was is None or was.gone_since is None):
                out.append((pid, o, f"{o.fact}-removed"))
    return out


def _interval(o: Observation) -> tuple[str, str, str | None, datetime]:
    return (o.fact, o.subject, o.role, o.first_seen)


def _observed(ledger: Ledger, packages: Iterable[PackageId]) -> dict[PackageId, list[Observation]]:
    by_eco: dict[Ecosystem, list[str]] = defaultdict(list)
    for eco, name in packages:
        by_eco[eco].append(name)
    return {
        (eco, name): obs
        for eco, names in by_eco.items()
        for name, obs in ledger.observations(eco, names).items()
    }


def poll(
    ledger: Ledger,
    settings: RegistrySettings,
    *,
    trust_file: Path | None = None,
    options: FetchOptions | None = None,
    now: datetime | None = None,
) -> list[WatchEvent]:
    """One look at the registries for every inventoried package; the events not reported
    before. Raises ``RegistryUnavailable`` (exit 3) like ``check``."""
    options = options or FetchOptions()
    packages = _group(ledger.inventory())
    if not packages:
        return []
    deps = [LockedDependency(eco, name, "0", direct=True) for eco, name in packages]
    fetched = fetch(deps, settings, ledger, options)
    seen_at = now or datetime.now(UTC)
    before = _observed(ledger, fetched.histories)
    observations = record_observations(ledger, fetched.histories.values(), seen_at)
    trusts = TrustFiles(trust_file)
    events: list[WatchEvent] = []
    records: list[DecisionRecord] = []
    for pid, history in sorted(fetched.histories.items()):
        info = packages[pid]
        candidates = newer_releases(history, info.versions)
        if not candidates:
            continue
        done = _reported(ledger, *pid)
        files = list({id(t): t for t in map(trusts.for_lockfile, sorted(info.lockfiles))}.values())
        for version in candidates:
            if version in done:
                continue
            decision = _judge(
                history, version, files, observations.get(pid, ()), seen_at, len(info.lockfiles)
            )
            if decision is None:
                continue
            events.append(
                WatchEvent(
                    "release",
                    pid[0],
                    pid[1],
                    seen_at,
                    version,
                    decision,
                    projects=tuple(sorted(info.projects)),
                    lockfiles=tuple(sorted(info.lockfiles)),
                    locked=tuple(sorted(info.versions)),
                )
            )
            records.append(DecisionRecord.from_decision(decision, at=seen_at, source=SOURCE))
    for pid, obs, kind in _owner_events(before, observations):
        info = packages.get(pid, _Package())
        events.append(
            WatchEvent(
                kind,
                pid[0],
                pid[1],
                seen_at,
                subject=obs.subject,
                role=obs.role,
                projects=tuple(sorted(info.projects)),
                lockfiles=tuple(sorted(info.lockfiles)),
                locked=tuple(sorted(info.versions)),
            )
        )
    if records:
        ledger.record_decisions(records)
    return events


@dataclass(frozen=True, slots=True)
class Webhook:
    """POSTs each event as JSON. Bounded: ``attempts`` tries with backoff, each at most
    ``timeout`` seconds; a webhook that stays down loses the event (stderr says so) and never
    stops the watch."""

    url: str
    attempts: int = 3
    timeout: float = 10.0
    backoff: float = 0.5

    def send(self, event: WatchEvent, log: Callable[[str], None]) -> bool:
        body = event.to_json().encode()
        last = ""
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(self.attempts):
                if attempt:
                    time.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2))
                try:
                    r = client.post(
                        self.url,
                        content=body,
                        headers={"content-type": "application/json", "user-agent": "custody"},
                    )
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                    continue
                if r.status_code < 300:
                    return True
                last = f"HTTP {r.status_code}"
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    break
        log(f"webhook: gave up on {event.ecosystem.value}:{event.package} after {last}")
        return False
