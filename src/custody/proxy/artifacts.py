"""Artifacts (npm tarballs, wheels, sdists, PEP 658 ``.metadata`` files) through the proxy.

Downloaded from the exact URL the upstream's own document names (never a URL a client sent),
streamed to a temporary file while every published digest is computed, and kept only when they
all match. Verified files are stored by their strongest published digest (sha512, sha384 or
sha256) under ``<cache dir>/<alg>/<hex[:2]>/<hex>``, so a release already fetched is served
again without the upstream, even when it is down; small ones are also kept in memory.

Redirects are followed only within the same origin, at most three times."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

from custody.registries.urls import origin, redact_url

STRONG = ("sha512", "sha384", "sha256")
_ALL = (*STRONG, "sha1", "md5")
_MAX_REDIRECTS = 3


class ArtifactNotFound(Exception):
    """The upstream answered 404/410 for the artifact."""


class ArtifactUnavailable(Exception):
    """The upstream could not be reached, answered an error, or sent more than allowed."""


class ArtifactMismatch(Exception):
    """The bytes do not match a published digest: never served."""

    def __init__(self, algorithm: str, expected: str, actual: str) -> None:
        super().__init__(f"{algorithm} mismatch: published {expected}, received {actual}")
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class Served:
    """An artifact ready to send: in memory (``data``) or on disk (``path``)."""

    data: bytes | None
    path: Path | None
    size: int
    digest: str | None  # "alg-hex" of the strongest digest, for the ETag
    cached: bool  # served without asking the upstream


def wanted_digests(digests: Mapping[str, str]) -> dict[str, str]:
    """The published digests worth checking: every strong one, sha1/md5 only without them."""
    clean = {k.lower(): v.lower() for k, v in digests.items() if k.lower() in _ALL}
    if any(k in clean for k in STRONG):
        return {k: v for k, v in clean.items() if k in STRONG or k == "sha1"}
    return clean


def _address(digests: Mapping[str, str]) -> tuple[str, str] | None:
    for alg in STRONG:
        value = digests.get(alg)
        if value and all(c in "0123456789abcdef" for c in value) and 32 <= len(value) <= 128:
            return alg, value
    return None


class ArtifactStore:
    def __init__(
        self,
        root: Path,
        *,
        memory_bytes: int = 64 * 1024 * 1024,
        memory_item_bytes: int = 4 * 1024 * 1024,
        max_bytes: int = 1024 * 1024 * 1024,
        timeout: float = 30.0,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        self.root = root
        self.memory_bytes = memory_bytes
        self.memory_item_bytes = memory_item_bytes
        self.max_bytes = max_bytes
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_size = 0
        self._verified: set[str] = set()
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": "custody-proxy/0.1"},
            verify=verify,
        )
        self._inflight: dict[str, asyncio.Future[Served]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the cache ------------------------------------------------------------------------

    def _path(self, alg: str, value: str) -> Path:
        return self.root / alg / value[:2] / value

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > self.memory_item_bytes or key in self._memory:
            return
        self._memory[key] = data
        self._memory_size += len(data)
        while self._memory_size > self.memory_bytes and self._memory:
            _k, old = self._memory.popitem(last=False)
            self._memory_size -= len(old)

    def cached(self, digests: Mapping[str, str]) -> Served | None:
        """The verified artifact from memory or disk, or None."""
        address = _address(digests)
        if address is None:
            return None
        key = f"{address[0]}-{address[1]}"
        data = self._memory.get(key)
        if data is not None:
            self._memory.move_to_end(key)
            return Served(data, None, len(data), key, True)
        path = self._path(*address)
        try:
            size = path.stat().st_size
        except OSError:
            return None
        if key not in self._verified or size <= self.memory_item_bytes:
            try:
                if size <= self.memory_item_bytes:
                    data = path.read_bytes()
                    _check_bytes(data, wanted_digests(digests))
                else:
                    _check_file(path, wanted_digests(digests))
            except (OSError, ArtifactMismatch):
                with contextlib.suppress(OSError):
                    path.unlink()  # corrupted: fetch it again
                return None
            self._verified.add(key)
        if data is not None:
            self._remember(key, data)
            return Served(data, None, size, key, True)
        return Served(None, path, size, key, True)

    # -- fetching -------------------------------------------------------------------------

    async def fetch(
        self, url: str, digests: Mapping[str, str], *, auth: str | None = None
    ) -> Served:
        """The artifact, from the cache or the upstream; one download per artifact at a time.
        Raises ``ArtifactNotFound``, ``ArtifactUnavailable``, ``ArtifactMismatch``."""
        found = self.cached(digests)
        if found is not None:
            return found
        key = f"{url}\n{sorted(digests.items())}"
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(self._download(url, wanted_digests(digests), auth))
            self._inflight[key] = running
            running.add_done_callback(lambda _f: self._inflight.pop(key, None))
        return await asyncio.shield(running)

    async def _download(self, url: str, digests: dict[str, str], auth: str | None) -> Served:
        hashers = {alg: hashlib.new(alg) for alg in digests}
        address = _address(digests)
        target_dir = self._path(*address).parent if address else Path(tempfile.gettempdir())
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactUnavailable(f"cannot write the artifact cache: {exc}") from None
        fd, tmp_name = tempfile.mkstemp(dir=target_dir, prefix=".part-")
        tmp = Path(tmp_name)
        try:
            size = 0
            small: list[bytes] = []
            with os.fdopen(fd, "wb") as out:
                async with self._open(url, auth) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.max_bytes:
                        raise ArtifactUnavailable(
                            f"{redact_url(url)} is larger than {self.max_bytes} bytes"
                        )
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise ArtifactUnavailable(
                                f"{redact_url(url)} is larger than {self.max_bytes} bytes"
                            )
                        for h in hashers.values():
                            h.update(chunk)
                        out.write(chunk)
                        if size <= self.memory_item_bytes:
                            small.append(chunk)
            for alg, h in hashers.items():
                actual = h.hexdigest()
                if actual != digests[alg]:
                    raise ArtifactMismatch(alg, digests[alg], actual)
            data = b"".join(small) if size <= self.memory_item_bytes else None
            if address is None:  # nothing strong to file it under: serve it, keep nothing
                if data is None:
                    data = tmp.read_bytes()
                return Served(data, None, size, None, False)
            final = self._path(*address)
            os.replace(tmp, final)
            key = f"{address[0]}-{address[1]}"
            self._verified.add(key)
            if data is not None:
                self._remember(key, data)
                return Served(data, None, size, key, False)
            return Served(None, final, size, key, False)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    @contextlib.asynccontextmanager
    async def _open(self, url: str, auth: str | None) -> AsyncIterator[httpx.Response]:
        """A streamed GET of ``url`` following same-origin redirects only."""
        start = origin(url)
        current = url
        for _hop in range(_MAX_REDIRECTS + 1):
            headers = {"Accept-Encoding": "identity"}  # hash what was published
            if auth:
                headers["Authorization"] = auth
            request = self._client.build_request("GET", current, headers=headers)
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.TransportError, TimeoutError) as exc:
                raise ArtifactUnavailable(f"{redact_url(current)}: {type(exc).__name__}") from None
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location", "")
                    target = urljoin(current, location)
                    if not location or origin(target) != start:
                        raise ArtifactUnavailable(
                            f"{redact_url(current)} redirects to another host; not followed"
                        )
                    current = target
                    continue
                if response.status_code in (404, 410):
                    raise ArtifactNotFound(redact_url(current))
                if response.status_code != 200:
                    raise ArtifactUnavailable(f"{redact_url(current)}: HTTP {response.status_code}")
                yield response
                return
            finally:
                await response.aclose()
        raise ArtifactUnavailable(f"{redact_url(url)}: too many redirects")


def _check_bytes(data: bytes, digests: Mapping[str, str]) -> None:
    for alg, expected in digests.items():
        actual = hashlib.new(alg, data).hexdigest()
        if actual != expected:
            raise ArtifactMismatch(alg, expected, actual)


def _check_file(path: Path, digests: Mapping[str, str]) -> None:
    hashers = {alg: hashlib.new(alg) for alg in digests}
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            for h in hashers.values():
                h.update(chunk)
    for alg, h in hashers.items():
        if h.hexdigest() != digests[alg]:
            raise ArtifactMismatch(alg, digests[alg], h.hexdigest())
