"""Download release artifacts, verify their integrity, and choose which two to compare.

Artifacts bypass the ledger's HTTP cache (``use_cache=False``: too big for it). A small
content-addressed cache on disk (``<user cache dir>/custody/artifacts/<alg>/<hex[:2]>/<hex>``,
``CUSTODY_CACHE_DIR`` overrides the cache dir) keeps verified files by digest: a file is only
ever stored under the digest it was checked against, and is checked again when read back.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from custody.cache_dir import cache_base
from custody.content.threads import run_blocking
from custody.model import Artifact, Ecosystem, Finding, Release, Severity
from custody.registries.http import RegistryClient, Response
from custody.registries.urls import redact_url

DEFAULT_MAX_BYTES = 128 * 1024 * 1024

# Strongest first. md5 only counts when nothing else is given (very old PyPI uploads).
_ALGORITHMS = ("sha512", "sha384", "sha256", "sha1", "md5")


class IntegrityMismatch(Exception):
    """The downloaded bytes do not match the digest the registry published."""

    def __init__(self, artifact: Artifact, algorithm: str, expected: str, actual: str) -> None:
        super().__init__(f"{artifact.filename}: {algorithm} mismatch")
        self.artifact = artifact
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual

    def finding(self, release: Release | None = None) -> Finding:
        """``content.integrity-mismatch`` (critical): what was served is not what was published."""
        what = f" of {release.key}" if release is not None else ""
        return Finding(
            "content.integrity-mismatch",
            Severity.CRITICAL,
            f"{self.artifact.filename}{what} does not match its published {self.algorithm} "
            "digest: the registry or a proxy served different bytes",
            {
                "artifact": self.artifact.filename,
                "url": redact_url(self.artifact.url) if self.artifact.url else None,
                "algorithm": self.algorithm,
                "expected": self.expected,
                "actual": self.actual,
            },
        )


def expected_digests(artifact: Artifact) -> dict[str, str]:
    """``{algorithm: hex}`` from ``Artifact.digests`` and the npm SRI string."""
    out = {k.lower(): v.lower() for k, v in artifact.digests.items() if k.lower() in _ALGORITHMS}
    for item in (artifact.integrity or "").split():
        alg, sep, b64 = item.partition("-")
        if not sep or alg.lower() not in _ALGORITHMS:
            continue
        with contextlib.suppress(binascii.Error, ValueError):
            out.setdefault(alg.lower(), base64.b64decode(b64.split("?", 1)[0], validate=True).hex())
    return out


def verify(artifact: Artifact, data: bytes) -> str | None:
    """Check ``data`` against every published digest (strongest first); the algorithm that
    vouched for it, or None when the registry published none. Raises ``IntegrityMismatch``."""
    digests = expected_digests(artifact)
    strongest: str | None = None
    for alg in _ALGORITHMS:
        if alg not in digests or (alg == "md5" and strongest is not None):
            continue
        actual = hashlib.new(alg, data).hexdigest()
        if actual != digests[alg]:
            raise IntegrityMismatch(artifact, alg, digests[alg], actual)
        strongest = strongest or alg
    return strongest


def default_cache_dir() -> Path:
    return cache_base() / "artifacts"


_HEX = re.compile(r"^[0-9a-f]{32,128}$")
_STRONG_HEX_LENGTHS = {"sha512": 128, "sha384": 96, "sha256": 64}


def strong_digests(artifact: Artifact) -> dict[str, str]:
    """The well-formed sha512/sha384/sha256 digests the registry published for ``artifact``:
    ``fetch_artifact`` checks the bytes against every one of them, so they name those bytes."""
    return {
        alg: hexdigest
        for alg, hexdigest in expected_digests(artifact).items()
        if len(hexdigest) == _STRONG_HEX_LENGTHS.get(alg) and _HEX.match(hexdigest)
    }


class ArtifactCache:
    """Verified artifacts on disk, addressed by their strongest published digest."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_cache_dir()

    def _path(self, alg: str, hexdigest: str) -> Path | None:
        if alg not in _ALGORITHMS[:3] or not _HEX.match(hexdigest):
            return None  # only strong digests address the cache
        return self.root / alg / hexdigest[:2] / hexdigest

    def get(self, artifact: Artifact) -> bytes | None:
        for alg, hexdigest in expected_digests(artifact).items():
            path = self._path(alg, hexdigest)
            if path is None:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            try:
                verify(artifact, data)
            except IntegrityMismatch:
                with contextlib.suppress(OSError):
                    path.unlink()  # a corrupted cache entry: fetch again
                continue
            return data
        return None

    def put(self, artifact: Artifact, data: bytes) -> None:
        """Store verified ``data``; best effort (a read-only cache dir is not an error)."""
        digests = expected_digests(artifact)
        for alg in _ALGORITHMS[:3]:
            path = self._path(alg, digests.get(alg, ""))
            if path is None:
                continue
            with contextlib.suppress(OSError):
                write_atomic(path, data)
            return


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it), so a reader
    never sees a half-written cache entry. Raises ``OSError``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _body(response: Response) -> bytes:
    return response.body


async def fetch_artifact(
    client: RegistryClient,
    artifact: Artifact,
    *,
    registry: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    auth: str | None = None,
    cache: ArtifactCache | None = None,
) -> bytes:
    """The artifact's bytes, verified against its published digests.

    Raises ``IntegrityMismatch`` (turn it into a finding with ``.finding()``), and what
    ``RegistryClient.get`` raises: ``PackageNotFound``, ``RegistryUnavailable`` (including
    ``ResponseTooLarge`` over ``max_bytes``). ``auth`` is the ``Authorization`` header the
    reader uses for this registry."""
    if not artifact.url:
        raise ValueError(f"{artifact.filename} has no download URL")
    if cache is not None:
        cached = cache.get(artifact)
        if cached is not None:
            return cached
    _resp, data = await client.get(
        artifact.url,
        registry=registry,
        what=artifact.filename,
        decode=_body,
        auth=auth,
        immutable=True,
        max_body=max_bytes,
        use_cache=False,
    )
    verify(artifact, data)
    if cache is not None:
        await run_blocking(len(data), cache.put, artifact, data)
    return data


# ------------------------------------------------------------------------------ selection


@dataclass(frozen=True, slots=True)
class ArtifactPair:
    """The two files to compare, and how their paths are read."""

    baseline: Artifact
    candidate: Artifact
    kind: str  # "tarball", "wheel", "sdist"

    @property
    def strip_root(self) -> bool:
        return self.kind != "wheel"


def _wheel_tags(filename: str) -> str | None:
    """``py3-none-any`` from ``name-1.0-py3-none-any.whl`` (build tags ignored)."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    return "-".join(parts[-3:]) if len(parts) >= 5 else None


def _usable(release: Release) -> list[Artifact]:
    return [a for a in release.artifacts if a.url and not a.yanked]


def _pure_wheel(release: Release) -> Artifact | None:
    wheels = [a for a in _usable(release) if (_wheel_tags(a.filename) or "").endswith("-any")]
    wheels.sort(key=lambda a: (not (_wheel_tags(a.filename) or "").startswith("py3"), a.filename))
    return wheels[0] if wheels else None


def _sdist(release: Release) -> Artifact | None:
    sdists = [a for a in _usable(release) if a.kind == "sdist"]
    sdists.sort(key=lambda a: (not a.filename.endswith(".tar.gz"), a.filename))
    return sdists[0] if sdists else None


def choose_artifacts(baseline: Release, candidate: Release) -> ArtifactPair | None:
    """Which artifacts of two releases to compare, or None when nothing is comparable.

    npm: the tarballs. PyPI: the pure wheels when both releases have one (what most installs
    use, and what the code that runs is); else the sdists (what a build runs); else two binary
    wheels with the same tags."""
    if candidate.ecosystem is Ecosystem.NPM:
        a = next((x for x in _usable(baseline) if x.kind in ("tarball", None)), None)
        b = next((x for x in _usable(candidate) if x.kind in ("tarball", None)), None)
        return ArtifactPair(a, b, "tarball") if a and b else None
    wa, wb = _pure_wheel(baseline), _pure_wheel(candidate)
    if wa and wb:
        return ArtifactPair(wa, wb, "wheel")
    sa, sb = _sdist(baseline), _sdist(candidate)
    if sa and sb:
        return ArtifactPair(sa, sb, "sdist")
    by_tag = {_wheel_tags(a.filename): a for a in _usable(baseline) if a.kind == "wheel"}
    for b_art in sorted(_usable(candidate), key=lambda a: a.filename):
        tag = _wheel_tags(b_art.filename)
        if tag and tag in by_tag:
            return ArtifactPair(by_tag[tag], b_art, "wheel")
    return None
