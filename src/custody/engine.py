"""Orchestration: lockfiles -> registry histories (fetched concurrently, cached in the ledger)
-> observations -> judgement -> a report. The only module of the check path that does I/O."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from custody import gather
from custody.blast import fan_in
from custody.content.fetch import ArtifactCache
from custody.content.results_cache import ComparisonCache
from custody.content.review import ContentOutcome, compare_releases
from custody.errors import InputError
from custody.fingerprint.result import FingerprintResult
from custody.judge import Judged, find_release, judge_all, with_content
from custody.ledger import Ledger
from custody.lockfiles import UNSUPPORTED, SkippedEntry, read_lockfile_report
from custody.model import (
    Action,
    Decision,
    Ecosystem,
    Finding,
    LockedDependency,
    Observation,
    PackageHistory,
    Release,
    Severity,
)
from custody.provenance import ProvenanceCheck, provenance_versions, verify_histories
from custody.registries.config import RegistrySettings
from custody.registries.facade import fetch_histories, make_readers
from custody.registries.http import HttpOptions
from custody.registries.urls import redact_url
from custody.report import Report
from custody.signals.base import package_id
from custody.signals.lockfile import SOURCE_RULE
from custody.trust import TrustFile

if TYPE_CHECKING:
    from custody.fingerprint.git import GitOptions

Progress = Callable[[int, int], None]
_KEPT_UNTIL_EXIT: list[object] = []  # see FetchOptions.one_shot
T = TypeVar("T")
PackageId = tuple[Ecosystem, str]


@dataclass(frozen=True, slots=True)
class FetchOptions:
    concurrency: int = 16
    max_age: float | None = None  # trust cached responses younger than this without asking
    offline: bool = False  # answer from the ledger's cache only; a miss is exit 3
    timeout: float = 30.0  # seconds to wait for a registry's answer, per attempt
    attempts: int = 3  # tries per request on timeouts, 5xx and garbage
    content: bool = True  # compare the artifacts of flagged releases (check) / changes (diff)
    online_provenance: bool = False  # refresh the Sigstore trust root over the network first
    progress: Progress | None = None
    # The process ends with this run (the CLI ends it with os._exit): what fetching builds is
    # frozen out of the collector's sight (collector_paused) and kept until the exit, instead
    # of being freed object by object (50 ms for a thousand packages) when the run returns.
    one_shot: bool = False

    def http(self, settings: RegistrySettings) -> HttpOptions:
        return HttpOptions(
            concurrency=self.concurrency,
            connect_timeout=min(10.0, self.timeout),
            read_timeout=self.timeout,
            total_timeout=max(300.0, self.timeout),
            attempts=self.attempts,
            offline=self.offline,
            max_age=self.max_age,
            honor_cache_control=True,
            ca_files=settings.ca_files,
        )


@dataclass(frozen=True, slots=True)
class Fetched:
    histories: dict[PackageId, PackageHistory]
    missing: dict[PackageId, str] = field(default_factory=dict)  # package -> registry
    provenance: dict[str, ProvenanceCheck] = field(default_factory=dict)  # by release key


@dataclass(frozen=True, slots=True)
class Locked:
    """What the lockfiles lock: registry releases, and entries with no registry custodian."""

    dependencies: tuple[LockedDependency, ...]
    skipped: tuple[SkippedEntry, ...]
    lockfiles: tuple[str, ...]
    unchecked: tuple[str, ...] = ()  # lockfiles beside them that no reader handles yet

    @property
    def ecosystems(self) -> set[Ecosystem]:
        return {d.ecosystem for d in self.dependencies}

    def warnings(self) -> list[str]:
        out = [
            f"{path} is here too, but {UNSUPPORTED[Path(path).name]} lockfiles are not "
            "supported yet: the packages it locks are not checked"
            for path in self.unchecked
        ]
        if self.skipped:
            shown = ", ".join(f"{s.name} ({s.kind})" for s in self.skipped[:8])
            more = f" and {len(self.skipped) - 8} more" if len(self.skipped) > 8 else ""
            out.append(
                f"{len(self.skipped)} lockfile entries do not come from a registry and have no "
                f"custodian to check: {shown}{more}"
            )
        return out


def read_lockfiles(paths: Sequence[Path]) -> Locked:
    if not paths:
        raise InputError("no lockfiles given and none found in the current directory")
    reports = [read_lockfile_report(path) for path in paths]
    folders = dict.fromkeys(Path(p).parent for p in paths)
    beside = [folder / name for folder in folders for name in UNSUPPORTED]
    return Locked(
        tuple(d for r in reports for d in r.dependencies),
        tuple(
            replace(s, ecosystem=r.ecosystem)
            for r in reports
            for s in r.skipped
            if s.kind not in ("local", "bundled")
        ),
        tuple(str(p) for p in paths),
        tuple(str(p) for p in beside if p.is_file()),
    )


async def _fetch(
    deps: Sequence[LockedDependency],
    settings: RegistrySettings,
    ledger: Ledger,
    options: FetchOptions,
    enrich: Callable[[PackageHistory], Sequence[str]] | None = None,
) -> Fetched:
    packages = sorted({(d.ecosystem, d.name) for d in deps})
    locked = _locked_versions(deps)
    http = options.http(settings)
    async with make_readers(settings, ledger, options=http, parallel_parse=True) as registries:
        readers = registries.readers
        histories, not_found = await fetch_histories(
            readers, packages, options.progress, keep=options.one_shot
        )
        if not options.offline:
            # A cache entry still fresh by the registry's Cache-Control may predate a release
            # the lockfile already locks: ask the registry again about exactly those packages.
            behind = [
                (eco, name)
                for (eco, name), h in histories.items()
                if any(find_release(h, v) is None for v in locked.get((eco, name), ()))
                and registries.client.revalidate(readers[eco].cache_urls(name))
            ]
            if behind:
                again, gone = await fetch_histories(readers, behind)
                histories.update(again)
                not_found.update(gone)
                for pid in gone:
                    histories.pop(pid, None)
        if enrich is not None:
            jobs = {
                pid: readers[pid[0]].enrich(h, versions)
                for pid, h in histories.items()
                if (versions := enrich(h))
            }
            for pid, enriched in zip(jobs, await asyncio.gather(*jobs.values()), strict=True):
                histories[pid] = enriched
        # Verify signed provenance of the locked releases and of the releases they are
        # compared with, so custody signals compare verified identities, not claims.
        wanted = {pid: provenance_versions(h, locked.get(pid, ())) for pid, h in histories.items()}
        histories, checks = await verify_histories(
            readers, histories, wanted, online=options.online_provenance
        )
    missing = {pid: err.registry for pid, err in not_found.items()}
    return Fetched(histories, missing, checks)


def fetch(
    deps: Sequence[LockedDependency],
    settings: RegistrySettings,
    ledger: Ledger,
    options: FetchOptions,
    enrich: Callable[[PackageHistory], Sequence[str]] | None = None,
) -> Fetched:
    """Fetch every package's history concurrently. Raises ``RegistryUnavailable`` (exit 3)."""
    fetched = run_async(_fetch(deps, settings, ledger, options, enrich))
    if options.one_shot:
        _KEPT_UNTIL_EXIT.append(fetched)
    return fetched


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` whose main task returns None: on Python 3.11 ``asyncio.run`` builds the
    ``repr`` of its task's result when it restores the Ctrl-C handler, which for a thousand
    package histories costs a second and a lot of memory."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]


def _locked_versions(deps: Iterable[LockedDependency]) -> dict[PackageId, set[str]]:
    out: dict[PackageId, set[str]] = defaultdict(set)
    for d in deps:
        out[(d.ecosystem, d.name)].add(d.version)
    return out


def pypi_details(deps: Sequence[LockedDependency]) -> Callable[[PackageHistory], list[str]]:
    """PyPI dependencies cost a request per release: fetch them for the locked releases and
    the release before each, which is all the signals compare."""
    locked = _locked_versions(deps)

    def versions(history: PackageHistory) -> list[str]:
        if history.ecosystem is not Ecosystem.PYPI:
            return []
        wanted: list[str] = []
        for version in locked.get((history.ecosystem, history.name), ()):
            release = find_release(history, version)
            if release is None:
                continue
            wanted.append(release.version)
            before = history.predecessors(release.version)
            if before:
                wanted.append(before[-1].version)
        return sorted(set(wanted))

    return versions


def record_observations(
    ledger: Ledger, histories: Iterable[PackageHistory], seen_at: datetime
) -> dict[PackageId, list[Observation]]:
    """Record today's owners (facts the registry keeps no history of) and read back what the
    ledger has seen of them over time.

    Each package's facts are recorded at its ``fetched_at``, when the registry last confirmed
    the document (a warm run reusing a fresh cache entry looks at the same time again, which
    writes nothing), never later than ``seen_at`` (the caller's now), which also stands in for a
    history without a usable ``fetched_at``."""
    looks: dict[PackageId, tuple[datetime, list[tuple[str, str, str | None]]]] = {}
    by_eco: dict[Ecosystem, list[str]] = defaultdict(list)
    for h in histories:
        by_eco[h.ecosystem].append(h.name)
        if h.current_owners is None:
            continue
        rows: list[tuple[str, str, str | None]] = [
            ("owner", o.custodian.id, o.role) for o in h.current_owners
        ]
        if h.organization:
            rows.append(("organization", h.organization, None))
        looks[(h.ecosystem, h.name)] = (_look_time(h, seen_at), rows)
    out: dict[PackageId, list[Observation]] = ledger.observe(looks) if looks else {}
    for eco, names in by_eco.items():
        unseen = [name for name in names if (eco, name) not in out]
        if unseen:
            for name, obs in ledger.observations(eco, unseen).items():
                out[(eco, name)] = obs
    return out


def _look_time(history: PackageHistory, now: datetime) -> datetime:
    """When the registry showed ``history``: its ``fetched_at``, never later than ``now`` (a
    cache entry stamped by a host whose clock runs ahead would otherwise record owners this
    run's judgement, as of ``now``, cannot see yet), and ``now`` when it is missing or naive (a
    hand-built history; the registry readers always set an aware one)."""
    fetched_at: datetime | None = history.fetched_at
    if fetched_at is None or fetched_at.utcoffset() is None:
        return now
    return min(fetched_at, now)


def missing_decisions(deps: Iterable[LockedDependency], fetched: Fetched) -> list[Decision]:
    """Packages the registry does not know at all: held, never passed."""
    out = []
    for d in deps:
        registry = fetched.missing.get((d.ecosystem, d.name))
        if registry is None:
            continue
        out.append(
            Decision(
                d.ecosystem,
                d.name,
                d.version,
                None,
                Action.HOLD,
                (
                    Finding(
                        "release.unpublished",
                        Severity.HIGH,
                        f"{d.package_key} does not exist on {registry}",
                        {"registry": registry},
                    ),
                ),
                locations=(d.location,) if d.location else (),
            )
        )
    return out


OFF_REGISTRY = frozenset({"git", "url", "file"})


def off_registry_decisions(locked: Locked, trust: TrustFile) -> list[Decision]:
    """Packages the trust file knows as registry packages that the lockfiles now take from git,
    a URL or a file: not a release Custody can judge, and exactly what a tampered lockfile does
    to pass a package off as trusted. Held (``lockfile.source-mismatch``); other such entries
    stay a run warning (a project's own git dependencies)."""
    out = []
    for entry in locked.skipped:
        if entry.kind not in OFF_REGISTRY or entry.ecosystem is None:
            continue
        key = f"{entry.ecosystem.value}:{package_id(entry.ecosystem, entry.name)[1]}"
        if not trust.knows(key):
            continue
        source = redact_url(entry.source) if entry.source else entry.kind
        finding = Finding(
            SOURCE_RULE,
            Severity.HIGH,
            f"the trust file knows {key} as a registry package, but the lockfile takes it from "
            f"{source} ({entry.kind}): not a release Custody can judge",
            {"resolved": source, "reason": "not-a-registry-url", "kind": entry.kind},
        )
        out.append(
            Decision(
                entry.ecosystem,
                entry.name,
                f"({entry.kind})",  # no registry version: where it comes from instead
                None,
                Action.HOLD,
                (finding,),
                locations=(entry.location,) if entry.location else (),
            )
        )
    return out


def check(
    locked: Locked,
    trust: TrustFile,
    ledger: Ledger,
    settings: RegistrySettings,
    *,
    as_of: datetime | None = None,
    options: FetchOptions | None = None,
) -> Report:
    """``custody check``: judge every locked release against the trust file and its history."""
    options = options or FetchOptions()
    deps = locked.dependencies
    fetched = fetch(deps, settings, ledger, options, enrich=pypi_details(deps))
    now = datetime.now(UTC)
    observations = record_observations(ledger, fetched.histories.values(), now)
    gather.record_publishes(ledger, fetched.histories.values(), as_of or now)
    present = [d for d in deps if (d.ecosystem, d.name) in fetched.histories]
    locked_releases = gather.candidates(present, fetched.histories, as_of)
    judged = judge_all(
        present,
        fetched.histories,
        trust,
        observations=observations,
        now=as_of or now,
        fan_ins=fan_in(deps),
        as_of=as_of,
        known_bad=gather.known_bad_for(ledger, present),
        publishes=gather.publishes_around(ledger, locked_releases, as_of or now),
        provenance_checks=fetched.provenance,
    )
    if options.content or trust.policy.fingerprints:
        judged = review_content(judged, trust, settings, ledger, options)
    decisions = [j.decision for j in judged] + missing_decisions(deps, fetched)
    decisions += off_registry_decisions(locked, trust)
    decisions.sort(key=lambda d: (-d.action.rank, d.ecosystem.value, d.package, d.version))
    warnings = locked.warnings() + coverage_warnings(decisions)
    return Report(
        command="check",
        decisions=tuple(decisions),
        generated_at=now,
        as_of=as_of,
        lockfiles=locked.lockfiles,
        trust_file=str(trust.path) if trust.path else None,
        warnings=tuple(warnings),
    )


def coverage_warnings(decisions: Sequence[Decision]) -> list[str]:
    unknown = [
        d for d in decisions if any(f.rule == "custody.unknown-publisher" for f in d.findings)
    ]
    if not unknown:
        return []
    return [
        f"{len(unknown)} of {len(decisions)} releases: the registry does not say who published "
        "them, so their custody could not be judged (see custody.unknown-publisher findings)"
    ]


@dataclass(frozen=True, slots=True)
class InitResult:
    packages: int
    custodians_added: int
    unknown: tuple[str, ...]  # packages whose registry names no custodian
    missing: tuple[str, ...]  # packages the registry does not know


def init(
    locked: Locked,
    trust_path: Path,
    ledger: Ledger,
    settings: RegistrySettings,
    *,
    merge: bool,
    options: FetchOptions | None = None,
) -> InitResult:
    """``custody init``: trust on first use. Writes the custodians of each locked release (and
    of its major line before it) to the trust file, and records today's owners in the ledger so
    that a later change of owners is seen."""
    from custody.baseline import build_baseline
    from custody.trust import TrustFileEditor, write_baseline

    options = options or FetchOptions()
    deps = locked.dependencies
    fetched = fetch(deps, settings, ledger, options)
    now = datetime.now(UTC)
    record_observations(ledger, fetched.histories.values(), now)
    gather.record_publishes(ledger, fetched.histories.values(), now)
    baselines = build_baseline(deps, fetched.histories, when=now)
    added = write_baseline(
        trust_path,
        {b.package_key: b.entries for b in baselines if b.entries},
        generated_by="custody init",
        when=now,
        merge=merge,
    )
    unknown = [b for b in baselines if b.unknown]
    if unknown:
        editor = TrustFileEditor.open(trust_path)
        for b in unknown:
            for version in b.versions:
                editor.add_approval(
                    b.package_key,
                    version,
                    by="custody init",
                    reason="baseline: the registry names no publisher or owner for this package",
                    at=now,
                )
        editor.save()
    return InitResult(
        packages=len(baselines),
        custodians_added=added,
        unknown=tuple(b.package_key for b in unknown),
        missing=tuple(f"{eco.value}:{name}" for eco, name in sorted(fetched.missing)),
    )


def package_history(
    ecosystem: Ecosystem,
    name: str,
    ledger: Ledger,
    settings: RegistrySettings,
    options: FetchOptions | None = None,
) -> tuple[PackageHistory, list[Observation]]:
    """One package's history and what the ledger observed of it (``custody history``)."""
    from custody.errors import PackageNotFound

    dep = LockedDependency(ecosystem, name, "0", direct=True)
    fetched = fetch([dep], settings, ledger, options or FetchOptions())
    if (ecosystem, name) in fetched.missing:
        raise PackageNotFound(fetched.missing[(ecosystem, name)], f"{ecosystem.value}:{name}")
    history = next(iter(fetched.histories.values()))
    observations = record_observations(ledger, [history], datetime.now(UTC))
    return history, observations.get((ecosystem, history.name), [])


RECENT_REVIEW = timedelta(days=30)
"""Releases published this recently have their files compared even without a finding: a
phished maintainer's release (chalk/debug, 2025) changes nothing but its code, and is found
within days; the comparison costs two downloads once (results are cached by digest)."""


def flagged(j: Judged) -> bool:
    """Worth downloading both artifacts for: something about the release already drew a
    finding a reviewer will read (custody, dependencies, scripts, age ...), or it is recent
    (``RECENT_REVIEW``) and nothing but its files would show a hijacked account's payload."""
    if any(f.severity.rank >= Severity.LOW.rank for f in j.decision.findings):
        return True
    cand, now = j.context.candidate, j.context.now
    published = cand.published_at if cand is not None else None
    return published is not None and now - published <= RECENT_REVIEW


async def _compare_all(
    pairs: Sequence[tuple[int, Release | None, Release]],
    settings: RegistrySettings,
    ledger: Ledger,
    options: FetchOptions,
    fingerprints: bool,
) -> dict[int, tuple[ContentOutcome, tuple[FingerprintResult, ...]]]:
    # Fingerprints (clones, git) only with ``[policy] fingerprints = true``: imported then.
    git: GitOptions | None = None
    if fingerprints:
        from custody.fingerprint.git import GitOptions

        git = GitOptions(offline=options.offline)

    async with make_readers(settings, ledger, options=options.http(settings)) as registries:
        cache = ArtifactCache()
        comparisons = ComparisonCache()  # beside the artifact cache; see results_cache.py

        async def one(
            baseline: Release | None, candidate: Release
        ) -> tuple[ContentOutcome, tuple[FingerprintResult, ...]]:
            reader = registries.readers[candidate.ecosystem]
            eco = settings.npm if candidate.ecosystem is Ecosystem.NPM else settings.pypi
            url = next((a.url for a in candidate.artifacts if a.url), None)
            found = eco.auth_for(url) if eco is not None and url else None
            auth = found.header() if found else None
            outcome = ContentOutcome()
            if baseline is not None and options.content:
                outcome = await compare_releases(
                    registries.client,
                    baseline,
                    candidate,
                    registry=reader.registry,
                    auth=auth,
                    cache=cache,
                    results=comparisons,
                )
            prints: tuple[FingerprintResult, ...] = ()
            if git is not None:
                from custody.fingerprint.check import fingerprint_release

                prints = await fingerprint_release(
                    registries.client,
                    candidate,
                    registry=reader.registry,
                    auth=auth,
                    options=git,
                    cache=cache,
                )
            return outcome, prints

        results = await asyncio.gather(*(one(b, c) for _, b, c in pairs))
    return {index: result for (index, _, _), result in zip(pairs, results, strict=True)}


def review_content(
    judged: Sequence[Judged],
    trust: TrustFile,
    settings: RegistrySettings,
    ledger: Ledger,
    options: FetchOptions,
    *,
    select: Callable[[Judged], bool] = flagged,
) -> list[Judged]:
    """The third pass: for the selected releases, download the candidate's and its
    ``from_version``'s artifacts (integrity-checked, read in memory, never executed), compare
    their files and run the content signals again. With ``[policy] fingerprints = true``, every
    judged release's artifact is also compared with its source repository. Registry failures
    raise (exit 3)."""
    fingerprints = trust.policy.fingerprints
    pairs: list[tuple[int, Release | None, Release]] = []
    for index, j in enumerate(judged):
        cand, d = j.context.candidate, j.decision
        if cand is None or cand.unpublished:
            continue
        base = None
        if d.from_version is not None and d.from_version != d.version and select(j):
            base = find_release(j.context.history, d.from_version)
            base = None if base is None or base.unpublished else base
        if base is not None or fingerprints:
            pairs.append((index, base, cand))
    if not pairs:
        return list(judged)
    results = run_async(_compare_all(pairs, settings, ledger, options, fingerprints))
    out = list(judged)
    for index, (outcome, prints) in results.items():
        out[index] = with_content(out[index], outcome.comparison, outcome.error, trust, prints)
    return out
