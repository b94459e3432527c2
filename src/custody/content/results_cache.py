"""Comparison results on disk, so that a warm ``custody check`` neither downloads nor re-reads,
unpacks and compares the artifacts of a release pair it already compared.

One small file per comparison (a checksum and a msgpack entry), at
``<cache dir>/comparisons/<hex[:2]>/<hex>`` beside ``artifacts/`` (``CUSTODY_CACHE_DIR``, else
the user cache directory). ``hex`` is the sha256 of a canonical encoding of everything the
outcome depends on (``comparison_key``): the comparison format, Custody's version, ecosystem,
artifact kind, root stripping, archive limits, and both sides' package, version, filename and
strong digests. A result is stored only after ``fetch_artifact`` checked both artifacts' bytes
against those digests, so the key names the very bytes compared; without a strong digest on
both sides nothing is cached. Only deterministic outcomes are kept: a ``ContentComparison``,
or the refusal of an unsafe archive (it depends on the bytes and the limits alone). Digest
mismatches, registry errors and "nothing comparable" are never stored. An entry that cannot
be read, fails its checksum or to decode, or names another key, is a miss (logged at debug
level) and is computed again: never an error, never a pass. The directory is safe to delete.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

import msgspec

from custody import __version__
from custody.cache_dir import cache_base
from custody.content.fetch import ArtifactPair, strong_digests, write_atomic
from custody.content.limits import ArchiveLimits
from custody.content.result import COMPARISON_FORMAT, ContentComparison
from custody.model import Artifact, Finding, Release, Severity

log = logging.getLogger(__name__)

UNSAFE_ARCHIVE = "content.unsafe-archive"


def default_results_dir() -> Path:
    return cache_base() / "comparisons"


def _side(release: Release, artifact: Artifact, digests: dict[str, str]) -> list[object]:
    return [release.name, release.version, artifact.filename, sorted(digests.items())]


def comparison_key(
    pair: ArtifactPair, baseline: Release, candidate: Release, limits: ArchiveLimits
) -> str | None:
    """The cache key of comparing ``pair`` with ``limits`` (a sha256 hex), or None when either
    artifact has no strong published digest: then the bytes cannot be named, so no caching."""
    old, new = strong_digests(pair.baseline), strong_digests(pair.candidate)
    if not old or not new:
        return None
    doc = [
        "custody/content-comparison",
        COMPARISON_FORMAT,
        __version__,
        baseline.ecosystem.value,
        candidate.ecosystem.value,
        pair.kind,
        pair.strip_root,
        _side(baseline, pair.baseline, old),
        _side(candidate, pair.candidate, new),
        [[f.name, getattr(limits, f.name)] for f in dataclasses.fields(limits)],
    ]
    return hashlib.sha256(msgspec.msgpack.encode(doc)).hexdigest()


class _Refusal(msgspec.Struct, frozen=True):
    """A ``content.unsafe-archive`` finding as stored (rebuilt into a ``Finding`` on read)."""

    severity: Severity
    message: str
    evidence: dict[str, Any]


class _Entry(msgspec.Struct, frozen=True):
    key: str  # checked on read: a file under another name, or from another version, misses
    comparison: ContentComparison | None = None
    refusal: _Refusal | None = None


# A file is the sha256 of its body, then the body: a msgpack ``_Entry``. The checksum turns
# damage that still decodes (a flipped byte in a string or a field name) into a miss.
_CHECK_SIZE = 32


@functools.cache
def _decoder() -> msgspec.msgpack.Decoder[_Entry]:
    return msgspec.msgpack.Decoder(_Entry)


class ComparisonCache:
    """Comparison outcomes on disk by ``comparison_key``; every failure is a miss."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_results_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> ContentComparison | Finding | None:
        """The stored comparison or unsafe-archive finding, or None (absent or unusable)."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.debug("comparison cache: cannot read %s: %s", path, exc)
            return None
        check, body = raw[:_CHECK_SIZE], raw[_CHECK_SIZE:]
        if len(check) != _CHECK_SIZE or hashlib.sha256(body).digest() != check:
            log.debug("comparison cache: ignoring %s: damaged (checksum)", path)
            return None
        try:
            entry = _decoder().decode(body)
        except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
            log.debug("comparison cache: ignoring %s: %s", path, exc)
            return None
        if entry.key != key or (entry.comparison is None) == (entry.refusal is None):
            log.debug("comparison cache: ignoring %s: not an entry for this key", path)
            return None
        if entry.comparison is not None:
            return entry.comparison
        assert entry.refusal is not None
        r = entry.refusal
        return Finding(UNSAFE_ARCHIVE, r.severity, r.message, dict(r.evidence))

    def put(self, key: str, result: ContentComparison | Finding) -> None:
        """Store a deterministic outcome; best effort (a read-only cache dir is not an error).
        Findings other than ``content.unsafe-archive`` are not stored."""
        if isinstance(result, Finding):
            if result.rule != UNSAFE_ARCHIVE:
                return
            entry = _Entry(key, refusal=_Refusal(result.severity, result.message, result.evidence))
        else:
            entry = _Entry(key, comparison=result)
        try:
            body = msgspec.msgpack.encode(entry)
        except (msgspec.EncodeError, TypeError, ValueError, OverflowError) as exc:
            log.debug("comparison cache: cannot encode the result for %s: %s", key, exc)
            return
        try:
            write_atomic(self.path(key), hashlib.sha256(body).digest() + body)
        except OSError as exc:
            log.debug("comparison cache: cannot write %s: %s", self.path(key), exc)
