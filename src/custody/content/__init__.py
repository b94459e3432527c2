"""Release content review: read artifacts safely, compare a candidate with its trusted release,
and flag new code that is packed, encoded or executes things.

The engine calls ``compare_releases`` (network, before the signals) and hands the outcome to
the signals through ``SignalContext.content`` / ``content_error``; the signals in
``custody.signals.content`` and ``custody.signals.scripts`` are pure.

The names below are loaded on first use: a warm check whose comparisons all come from the
result cache (``results_cache``) never imports the archive reader."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custody.lazy import lazy_exports

if TYPE_CHECKING:
    from custody.content.archive import ArchiveContents, ArchiveRefusal, read_archive
    from custody.content.compare import compare_archives
    from custody.content.fetch import (
        ArtifactCache,
        ArtifactPair,
        IntegrityMismatch,
        choose_artifacts,
        fetch_artifact,
        verify,
    )
    from custody.content.limits import DEFAULT_LIMITS, SDIST_LIMITS, ArchiveLimits
    from custody.content.result import BuildChange, ContentComparison, ContentFlag, FileChange
    from custody.content.results_cache import ComparisonCache
    from custody.content.review import (
        ContentOutcome,
        compare_files,
        compare_releases,
        unsafe_archive_finding,
    )

_WHERE = {
    "DEFAULT_LIMITS": "custody.content.limits",
    "SDIST_LIMITS": "custody.content.limits",
    "ArchiveLimits": "custody.content.limits",
    "ArchiveContents": "custody.content.archive",
    "ArchiveRefusal": "custody.content.archive",
    "read_archive": "custody.content.archive",
    "BuildChange": "custody.content.result",
    "ContentComparison": "custody.content.result",
    "ContentFlag": "custody.content.result",
    "FileChange": "custody.content.result",
    "compare_archives": "custody.content.compare",
    "ArtifactCache": "custody.content.fetch",
    "ArtifactPair": "custody.content.fetch",
    "IntegrityMismatch": "custody.content.fetch",
    "choose_artifacts": "custody.content.fetch",
    "fetch_artifact": "custody.content.fetch",
    "verify": "custody.content.fetch",
    "ComparisonCache": "custody.content.results_cache",
    "ContentOutcome": "custody.content.review",
    "compare_files": "custody.content.review",
    "compare_releases": "custody.content.review",
    "unsafe_archive_finding": "custody.content.review",
}


__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = [
    "DEFAULT_LIMITS",
    "SDIST_LIMITS",
    "ArchiveContents",
    "ArchiveLimits",
    "ArchiveRefusal",
    "ArtifactCache",
    "ArtifactPair",
    "BuildChange",
    "ComparisonCache",
    "ContentComparison",
    "ContentFlag",
    "ContentOutcome",
    "FileChange",
    "IntegrityMismatch",
    "choose_artifacts",
    "compare_archives",
    "compare_files",
    "compare_releases",
    "fetch_artifact",
    "read_archive",
    "unsafe_archive_finding",
    "verify",
]
