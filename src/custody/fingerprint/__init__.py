"""Source fingerprints: does a published artifact match its source repository at a commit?

``fingerprint`` compares one artifact; ``fingerprint_release`` downloads a release's artifacts
and compares each. Results turn into ``content.not-in-source`` findings.

The names below are loaded on first use: every check imports ``result`` (the findings'
shape), only a run with ``[policy] fingerprints = true`` needs the comparison and git."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custody.lazy import lazy_exports

if TYPE_CHECKING:
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

_WHERE = {
    "fingerprint": "custody.fingerprint.check",
    "fingerprint_artifacts": "custody.fingerprint.check",
    "fingerprint_release": "custody.fingerprint.check",
    "source_refs": "custody.fingerprint.check",
    "source_repository": "custody.fingerprint.check",
    "tag_names": "custody.fingerprint.check",
    "GitError": "custody.fingerprint.git",
    "GitOptions": "custody.fingerprint.git",
    "SourceRepo": "custody.fingerprint.git",
    "default_sources_dir": "custody.fingerprint.git",
    "RULE": "custody.fingerprint.result",
    "FileReport": "custody.fingerprint.result",
    "FileStatus": "custody.fingerprint.result",
    "FingerprintResult": "custody.fingerprint.result",
}


__getattr__ = lazy_exports(__name__, _WHERE)


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
