"""Upstream metadata through the same client and readers as ``custody check``.

One ``RegistryClient`` for the whole process, with the ledger as its response cache: every
document is revalidated with its ETag / Last-Modified, and when the upstream fails after the
retries the last copy in the ledger is used (``allow_stale``), flagged stale. The npm packument
is parsed by ``parse_packument`` (what ``NpmReader`` uses); a Python project goes through
``PypiReader`` (simple page, devpi or Warehouse JSON, devpi's upload ACL), and its raw page is
read back from the same cache for rendering.

A fingerprint of what was fetched (the raw body, and for PyPI the parsed history) tells the
caller whether anything changed, so an unchanged package is neither parsed nor judged again."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from custody.errors import RegistryUnavailable
from custody.model import PackageHistory
from custody.proxy.packument import Tarball, tarballs
from custody.proxy.simple import SimpleProject, parse_index, parse_project
from custody.registries.derived import encode_history
from custody.registries.documents import BadDocument
from custody.registries.http import HttpOptions, RegistryClient, Response
from custody.registries.npm import NpmReader
from custody.registries.npm_packument import NPM_PARSER_VERSION, parse_packument
from custody.registries.pypi import PypiReader
from custody.registries.pypi_simple import SIMPLE_ACCEPT
from custody.registries.settings import NpmSettings, PypiSettings
from custody.registries.urls import origin, redact_url

Origin = tuple[str, str, int | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRIM_AT = 4096  # cache entries the shared client keeps in memory before it forgets them


@dataclass(frozen=True, slots=True)
class NpmSource:
    doc: dict[str, Any]
    history: PackageHistory
    tarballs: dict[str, Tarball]  # by file name
    unusable: frozenset[str]  # versions whose tarball the proxy cannot serve
    size: int = 0  # bytes of the upstream document (what the memory budget counts)


@dataclass(frozen=True, slots=True)
class PypiSource:
    page: SimpleProject
    history: PackageHistory
    size: int = 0


Source = NpmSource | PypiSource


@dataclass(frozen=True, slots=True)
class Fetched:
    source: Source | None  # None: unchanged since ``previous``
    fingerprint: bytes
    stale: bool  # the upstream failed; this is the ledger's last copy


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


class Upstreams:
    def __init__(
        self,
        npm: NpmSettings | None,
        pypi: PypiSettings | None,
        cache: Any,
        *,
        timeout: float = 10.0,
        attempts: int = 2,
        ca_files: tuple[str, ...] = (),
        artifact_hosts: tuple[str, ...] | None = None,
    ) -> None:
        self.npm_settings = npm
        self.pypi_settings = pypi
        options = HttpOptions(
            concurrency=32,
            connect_timeout=min(10.0, timeout),
            read_timeout=timeout,
            total_timeout=max(60.0, timeout * 3),
            attempts=max(1, attempts),
            backoff=0.2,
            backoff_cap=1.0,
            retry_after_cap=5.0,
            ca_files=ca_files,
        )
        self.client = RegistryClient(cache, options)
        self._npm = NpmReader(npm, self.client, allow_stale=True) if npm is not None else None
        self.artifact_origins = self._artifact_origins(artifact_hosts)

    def _artifact_origins(self, hosts: tuple[str, ...] | None) -> set[Origin] | None:
        if hosts is None:
            return None
        out: set[Origin] = set()
        if self.npm_settings is not None:
            out.add(origin(self.npm_settings.registry))
            out.update(origin(u) for u in self.npm_settings.scopes.values())
        if self.pypi_settings is not None:
            out.add(origin(self.pypi_settings.index_url))
        for host in hosts:
            url = host if "://" in host else f"https://{host}"
            out.add(origin(url))
            if "://" not in host:
                out.add(origin(f"http://{host}"))
        return out

    def artifact_allowed(self, url: str) -> bool:
        return self.artifact_origins is None or origin(url) in self.artifact_origins

    async def aclose(self) -> None:
        try:
            self.client.flush()
        finally:
            await self.client.aclose()

    def flush(self) -> None:
        """Write new and revalidated cache entries to the ledger; bound the client's memory."""
        self.client.flush()
        loaded = self.client._loaded  # the client keeps every entry it saw; a server must not
        if len(loaded) > _TRIM_AT:
            loaded.clear()

    def _stale(self, urls: list[str]) -> bool:
        found = False
        for url in urls:
            if url in self.client.stale_urls:
                self.client.stale_urls.discard(url)
                found = True
        return found

    # -- npm ------------------------------------------------------------------------------

    def npm_auth(self, url: str) -> str | None:
        if self.npm_settings is None:
            return None
        auth = self.npm_settings.auth_for(url)
        return auth.header() if auth is not None else None

    async def npm(self, name: str, previous: bytes | None) -> Fetched:
        """The package's packument. Raises ``PackageNotFound`` and ``RegistryUnavailable``."""
        assert self._npm is not None and self.npm_settings is not None
        url = self._npm.packument_url(name)
        registry = redact_url(self.npm_settings.registry_for(name))
        changed: list[NpmSource] = []
        fingerprint = b""

        def decode(resp: Response) -> None:
            nonlocal fingerprint
            if origin(resp.final_url) != origin(url):
                raise BadDocument(f"redirected to another host ({redact_url(resp.final_url)})")
            body = resp.body
            fingerprint = _digest(body)
            changed.clear()
            if fingerprint == previous:
                return
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise BadDocument(f"invalid packument for {name}: {exc}") from None
            history = parse_packument(doc, name=name, registry=registry, fetched_at=resp.fetched_at)
            files, unusable = tarballs(doc, self.artifact_origins)
            changed.append(NpmSource(doc, history, files, frozenset(unusable), len(body)))

        await self.client.get(
            url,
            registry=registry,
            what=name,
            decode=decode,
            accept="application/json",
            auth=self.npm_auth(url),
            allow_stale=True,
        )
        stale = self._stale([url])
        if changed:
            self.client.attach_derived(url, encode_history(changed[0].history), NPM_PARSER_VERSION)
            return Fetched(changed[0], fingerprint, stale)
        return Fetched(None, fingerprint, stale)

    # -- PyPI -----------------------------------------------------------------------------

    def pypi_auth(self, url: str) -> str | None:
        if self.pypi_settings is None:
            return None
        auth = self.pypi_settings.auth_for(url)
        return auth.header() if auth is not None else None

    async def pypi(self, name: str, previous: bytes | None) -> Fetched:
        """The project's history and simple page. Raises ``PackageNotFound`` and
        ``RegistryUnavailable``."""
        assert self.pypi_settings is not None
        reader = PypiReader(self.pypi_settings, self.client, allow_stale=True)
        history = await reader.history(name)
        page_url = reader.project_url(name)
        stale = self._stale(reader.cache_urls(name))
        entry = self.client.lookup(page_url)
        if entry is None or entry.status != 200:
            raise RegistryUnavailable(reader.registry, f"no usable simple page for {name}")
        blob = encode_history(msgspec.structs.replace(history, fetched_at=_EPOCH))
        fingerprint = _digest(entry.body, blob)
        if fingerprint == previous:
            return Fetched(None, fingerprint, stale)
        try:
            page = parse_project(entry.body, entry.content_type, history.name, page_url)
        except BadDocument as exc:
            raise RegistryUnavailable(reader.registry, str(exc)) from None
        # File URLs as the reader resolved them (against the page's final URL).
        urls = {a.filename: a.url for r in history.releases for a in r.artifacts if a.url}
        files = tuple(dataclasses.replace(f, url=urls.get(f.filename) or f.url) for f in page.files)
        page = dataclasses.replace(page, files=files)
        return Fetched(PypiSource(page, history, len(entry.body)), fingerprint, stale)

    async def pypi_index(self) -> tuple[list[str], bool]:
        assert self.pypi_settings is not None
        url = self.pypi_settings.index_url
        registry = redact_url(url)
        _resp, names = await self.client.get(
            url,
            registry=registry,
            what="the project list",
            decode=lambda r: parse_index(r.body, r.content_type),
            accept=SIMPLE_ACCEPT,
            auth=self.pypi_auth(url),
            allow_stale=True,
        )
        return names, self._stale([url])
