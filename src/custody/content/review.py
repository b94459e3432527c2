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

from custody.content.archive import (
    DEFAULT_LIMITS,
    SDIST_LIMITS,
    ArchiveContents,
    ArchiveLimits,
    ArchiveRefusal,
    read_archive,
)
from custody.content.compare import ContentComparison, compare_archives
from custody.content.fetch import (
    DEFAULT_MAX_BYTES,
    ArtifactCache,
    ArtifactPair,
    IntegrityMismatch,
    choose_artifacts,
    fetch_artifact,
)
from custody.model import Artifact, Finding, Release, Severity
from custody.registries.http import RegistryClient


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
        "content.unsafe-archive",
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


def limits_for(kind: str) -> ArchiveLimits:
    return SDIST_LIMITS if kind == "sdist" else DEFAULT_LIMITS


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
) -> ContentOutcome:
    """Fetch both releases' artifacts concurrently, verify them and compare their files."""
    pair = choose_artifacts(baseline, candidate)
    if pair is None:
        return ContentOutcome(note="no artifacts of the same kind to compare")
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
        return ContentOutcome(error=exc.finding(release))
    return await asyncio.to_thread(
        compare_files, pair, old_data, new_data, baseline, candidate, limits=limits
    )
