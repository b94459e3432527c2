"""The content pipeline the engine runs before the signals: choose, fetch, verify, read and
compare the artifacts of a trusted release and its candidate.

Everything that can go wrong with the package's own files ends as a value, never an exception:
a refused archive or a digest mismatch becomes ``ContentOutcome.error`` (a finding), nothing
comparable becomes ``note``. Registry failures (``RegistryUnavailable``, ``PackageNotFound``)
propagate like every other reader error, so the run can exit 3 instead of passing silently.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custody.content.fetch import (
    DEFAULT_MAX_BYTES,
    ArtifactCache,
    ArtifactPair,
    IntegrityMismatch,
    choose_artifacts,
    fetch_artifact,
)
from custody.content.limits import ArchiveLimits, limits_for
from custody.content.result import ContentComparison
from custody.content.results_cache import UNSAFE_ARCHIVE, ComparisonCache, comparison_key
from custody.content.threads import run_blocking
from custody.model import Artifact, Finding, Release, Severity
from custody.registries.http import RegistryClient

if TYPE_CHECKING:
    from custody.content.archive import ArchiveContents, ArchiveRefusal


@dataclass(frozen=True, slots=True)
class ContentOutcome:
    """What the engine puts in ``SignalContext.content`` / ``content_error``."""

    comparison: ContentComparison | None = None
    error: Finding | None = None  # content.unsafe-archive or content.integrity-mismatch
    note: str | None = None  # why nothing was compared (no comparable artifacts)


def unsafe_archive_finding(
    refusal: ArchiveRefusal, artifact: Artifact, release: Release, *, trusted: bool = False
) -> Finding:
    """``content.unsafe-archive``: high for the candidate (it holds); low when only the trusted
    release's archive was refused (nothing new, but its content could not be compared)."""
    where = f" ({refusal.member!r})" if refusal.member else ""
    return Finding(
        UNSAFE_ARCHIVE,
        Severity.LOW if trusted else Severity.HIGH,
        f"{artifact.filename} of {release.key} was not read: {refusal.reason}{where}: "
        f"{refusal.detail}",
        {
            "artifact": artifact.filename,
            "release": release.key,
            "side": "baseline" if trusted else "candidate",
            **refusal.evidence(),
        },
    )


def compare_files(
    pair: ArtifactPair,
    old_data: bytes,
    new_data: bytes,
    baseline: Release,
    candidate: Release,
    *,
    limits: ArchiveLimits | None = None,
) -> ContentOutcome:
    """Read both archives and compare them (CPU only; run it in a thread for big packages)."""
    # Imported here: a run whose comparisons all come from the result cache never reads one.
    from custody.content.archive import ArchiveRefusal, read_archive

    lim = limits or limits_for(pair.kind)
    new = read_archive(new_data, strip_root=pair.strip_root, limits=lim)
    if isinstance(new, ArchiveRefusal):
        return ContentOutcome(error=unsafe_archive_finding(new, pair.candidate, candidate))
    old = read_archive(old_data, strip_root=pair.strip_root, limits=lim)
    if isinstance(old, ArchiveRefusal):
        return ContentOutcome(
            error=unsafe_archive_finding(old, pair.baseline, baseline, trusted=True)
        )
    return ContentOutcome(comparison=_compare(pair, old, new, baseline, candidate))


def _compare(
    pair: ArtifactPair,
    old: ArchiveContents,
    new: ArchiveContents,
    baseline: Release,
    candidate: Release,
) -> ContentComparison:
    from custody.content.compare import compare_archives  # the heuristics: only to compare

    return compare_archives(
        old,
        new,
        ecosystem=candidate.ecosystem.value,
        kind=pair.kind,
        baseline_artifact=pair.baseline.filename,
        candidate_artifact=pair.candidate.filename,
        baseline_version=baseline.version,
        candidate_version=candidate.version,
    )


async def compare_releases(
    client: RegistryClient,
    baseline: Release,
    candidate: Release,
    *,
    registry: str,
    auth: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cache: ArtifactCache | None = None,
    limits: ArchiveLimits | None = None,
    results: ComparisonCache | None = None,
) -> ContentOutcome:
    """Fetch both releases' artifacts concurrently, verify them and compare their files.

    With ``results``, an outcome stored for the same artifacts (by strong digest), limits and
    comparison format is returned without downloading or reading anything, and a new
    comparison or unsafe-archive refusal is stored (see results_cache.py)."""
    pair = choose_artifacts(baseline, candidate)
    if pair is None:
        return ContentOutcome(note="no artifacts of the same kind to compare")
    lim = limits or limits_for(pair.kind)
    key = comparison_key(pair, baseline, candidate, lim) if results is not None else None
    if results is not None and key is not None:
        stored = results.get(key)
        if isinstance(stored, Finding):
            return ContentOutcome(error=stored)
        if stored is not None:
            return ContentOutcome(comparison=stored)
    try:
        old_data, new_data = await asyncio.gather(
            fetch_artifact(
                client, pair.baseline, registry=registry, max_bytes=max_bytes, auth=auth,
                cache=cache,
            ),
            fetch_artifact(
                client, pair.candidate, registry=registry, max_bytes=max_bytes, auth=auth,
                cache=cache,
            ),
        )  # fmt: skip
    except IntegrityMismatch as exc:
        release = candidate if exc.artifact is pair.candidate else baseline
        return ContentOutcome(error=exc.finding(release))  # never stored: not about the bytes
    size = len(old_data) + len(new_data)
    outcome = await run_blocking(
        size, compare_files, pair, old_data, new_data, baseline, candidate, limits=lim
    )
    if results is not None and key is not None:
        # Both artifacts were just checked against the digests in ``key``. The result of a
        # large pair is written in a thread while the other comparisons go on.
        stored = outcome.comparison or outcome.error  # an error only if an unsafe archive
        if stored is not None:
            await run_blocking(size, results.put, key, stored)
    return outcome
