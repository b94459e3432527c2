"""Release content review: read artifacts safely, compare a candidate with its trusted release,
and flag new code that is packed, encoded or executes things.

The engine calls ``compare_releases`` (network, before the signals) and hands the outcome to
the signals through ``SignalContext.content`` / ``content_error``; the signals in
``custody.signals.content`` and ``custody.signals.scripts`` are pure."""

from custody.content.archive import (
    DEFAULT_LIMITS,
    SDIST_LIMITS,
    ArchiveContents,
    ArchiveLimits,
    ArchiveRefusal,
    read_archive,
)
from custody.content.compare import (
    BuildChange,
    ContentComparison,
    ContentFlag,
    FileChange,
    compare_archives,
)
from custody.content.fetch import (
    ArtifactCache,
    ArtifactPair,
    IntegrityMismatch,
    choose_artifacts,
    fetch_artifact,
    verify,
)
from custody.content.review import (
    ContentOutcome,
    compare_files,
    compare_releases,
    unsafe_archive_finding,
)

__all__ = [
    "DEFAULT_LIMITS",
    "SDIST_LIMITS",
    "ArchiveContents",
    "ArchiveLimits",
    "ArchiveRefusal",
    "ArtifactCache",
    "ArtifactPair",
    "BuildChange",
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
