"""Source fingerprints: does a published artifact match its source repository at a commit?

``fingerprint`` compares one artifact; ``fingerprint_release`` downloads a release's artifacts
and compares each. Results turn into ``content.not-in-source`` findings."""

from custody.fingerprint.check import (
    fingerprint,
    fingerprint_artifacts,
    fingerprint_release,
    source_refs,
    source_repository,
    tag_names,
)
from custody.fingerprint.git import GitError, GitOptions, SourceRepo, default_sources_dir
from custody.fingerprint.result import RULE, FileReport, FileStatus, FingerprintResult

__all__ = [
    "RULE",
    "FileReport",
    "FileStatus",
    "FingerprintResult",
    "GitError",
    "GitOptions",
    "SourceRepo",
    "default_sources_dir",
    "fingerprint",
    "fingerprint_artifacts",
    "fingerprint_release",
    "source_refs",
    "source_repository",
    "tag_names",
]
