"""Python package index reader (PEP 503/691 simple API, plus Warehouse or devpi JSON).

A history combines up to three documents: the project's simple page (files, hashes, upload
times, yanks, PEP 658/740 flags), Warehouse's project JSON when the index offers it
(``<root>/pypi/<name>/json``: upload times, yank reasons, project URLs and ``ownership``) or, on
a devpi index, devpi's project JSON (who uploaded each file) and the index ACL (who may upload).
Dependencies cost one request per release and are fetched by ``enrich`` for chosen versions."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from custody.errors import PackageNotFound
from custody.model import (
    Artifact,
    Custodian,
    DeclaredDependency,
    Ecosystem,
    OwnerRole,
    PackageHistory,
    Provenance,
    Release,
)
from custody.registries.derived import decode_derived, encode_derived
from custody.registries.documents import BadDocument
from custody.registries.http import RegistryClient, Response, ResponseTooLarge
from custody.registries.ordering import order_releases
from custody.registries.pypi_json import (
    ProjectFacts,
    load_json_object,
    parse_devpi_acl,
    parse_devpi_project,
    parse_warehouse,
)
from custody.registries.pypi_metadata import (
    check_digests,
    dependencies_from_metadata,
    metadata_from_wheel,
)
from custody.registries.pypi_simple import (
    SIMPLE_ACCEPT,
    SimplePage,
    file_version,
    normalise_version,
    parse_simple,
)
from custody.registries.settings import PypiSettings
from custody.registries.urls import redact_url

log = logging.getLogger(__name__)
T = TypeVar("T")

PYPI_PARSER_VERSION = "pypi/3"
MAX_WHEEL_BYTES = 64 * 1024 * 1024
_DEVPI_INDEX = re.compile(r"^(?P<stage>.*/(?P<user>[^/+][^/]*)/[^/+][^/]*/)\+simple/$")
_MAX_SPECULATIVE_MISSES = 3
_EPOCH = datetime.min.replace(tzinfo=UTC)
_STATUS_NOTES = frozenset({"archived", "deprecated", "quarantined"})


class _PageFacts(msgspec.Struct, frozen=True):
    """What a simple page says about its files that ``Artifact`` does not keep, by file URL:
    the hashes of each PEP 658 metadata file and each PEP 740 provenance URL. Cached with the
    history, so a warm run checks metadata it has not cached yet as a cold run does."""

    metadata_hashes: dict[str, dict[str, str]] = {}
    provenance_urls: dict[str, str] = {}


class _Derived(msgspec.Struct, frozen=True):
    """The parsed form cached beside a simple page."""

    history: PackageHistory
    page: _PageFacts


_DERIVED_DECODER = msgspec.msgpack.Decoder(type=_Derived)


def _page_facts(page: SimplePage) -> _PageFacts:
    return _PageFacts(
        metadata_hashes={f.url: f.metadata_hashes for f in page.files if f.metadata_hashes},
        provenance_urls={f.url: f.provenance_url for f in page.files if f.provenance_url},
    )


def pep440_key(version: str) -> tuple[int, Any]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


class PypiReader:
    ecosystem = Ecosystem.PYPI

    def __init__(
        self,
        settings: PypiSettings,
        client: RegistryClient,
        *,
        allow_stale: bool = False,
        max_wheel_bytes: int = MAX_WHEEL_BYTES,
    ) -> None:
        self.settings = settings
        self.client = client
        self.allow_stale = allow_stale
        self.max_wheel_bytes = max_wheel_bytes
        self.registry = redact_url(settings.index_url)
        self.notes: dict[str, str] = {}  # release key -> why its dependencies stay unknown
        index = settings.index_url
        devpi = _DEVPI_INDEX.match(index)
        self._devpi_stage = devpi.group("stage") if devpi else None
        self._devpi_user = devpi.group("user") if devpi else None
        path = urlsplit(index).path
        self._warehouse_root = (
            index[: -len("simple/")] if not devpi and path.endswith("/simple/") else None
        )
        self._acl: asyncio.Future[tuple[OwnerRole, ...] | None] | None = None
        # Some indexes serve PEP 658 .metadata without advertising it: try it anyway until it
        # has failed a few times and never worked (devpi never serves it unadvertised).
        self._metadata_seen = False
        self._metadata_misses = 0 if devpi is None else _MAX_SPECULATIVE_MISSES
        self._provenance_urls: dict[str, str] = {}  # file URL -> PEP 740 provenance URL
        self._metadata_hashes: dict[str, dict[str, str]] = {}  # file URL -> its .metadata's

    # -- URLs --------------------------------------------------------------------------------

    def project_url(self, name: str) -> str:
        return f"{self.settings.index_url}{canonicalize_name(name)}/"

    def warehouse_url(self, name: str) -> str | None:
        if self._warehouse_root is None:
            return None
        return f"{self._warehouse_root}pypi/{canonicalize_name(name)}/json"

    def cache_urls(self, name: str) -> list[str]:
        urls = [self.project_url(name)]
        warehouse = self.warehouse_url(name)
        if warehouse:
            urls.append(warehouse)
        if self._devpi_stage:
            urls += [self._devpi_stage + canonicalize_name(name), self._devpi_stage.rstrip("/")]
        return urls

    def _auth(self, url: str) -> str | None:
        auth = self.settings.auth_for(url)
        return auth.header() if auth is not None else None

    async def _get(
        self, url: str, what: str, decode: Callable[[Response], T], **kw: Any
    ) -> tuple[Response, T]:
        return await self.client.get(
            url,
            registry=self.registry,
            what=what,
            decode=decode,
            auth=self._auth(url),
            allow_stale=self.allow_stale,
            **kw,
        )

    async def _optional(
        self, url: str, what: str, parse: Callable[[dict[str, Any]], T]
    ) -> tuple[Response | None, T | None]:
        """A JSON document the index may not offer: 404 or a non-JSON answer gives None."""

        def decode(resp: Response) -> T | None:
            doc = load_json_object(resp, what)
            return parse(doc) if doc is not None else None

        try:
            return await self._get(url, what, decode, accept="application/json")
        except PackageNotFound:
            return None, None

    # -- history -----------------------------------------------------------------------------

    async def history(self, name: str) -> PackageHistory:
        name = canonicalize_name(name)
        page_resp, page = await self._get(
            self.project_url(name),
            name,
            lambda r: parse_simple(r.body, r.content_type, name, r.final_url),
            accept=SIMPLE_ACCEPT,
        )
        devpi = self._devpi_stage is not None and (
            not page_resp.headers or any(k.startswith("x-devpi-") for k in page_resp.headers)
        )
        responses: list[Response | None] = [page_resp]
        facts: ProjectFacts | None = None
        owners: tuple[OwnerRole, ...] | None = None
        if devpi and self._devpi_stage:
            (resp, facts), owners = await asyncio.gather(
                self._optional(
                    self._devpi_stage + name, f"devpi project JSON of {name}", parse_devpi_project
                ),
                self._index_acl(),
            )
            responses.append(resp)
        elif (warehouse := self.warehouse_url(name)) is not None:
            resp, facts = await self._optional(
                warehouse, f"project JSON of {name}", parse_warehouse
            )
            responses.append(resp)
            owners = facts.owners if facts is not None else None

        if all(r is None or r.not_modified for r in responses):
            cached = decode_derived(
                _DERIVED_DECODER, page_resp.derived, page_resp.derived_version, PYPI_PARSER_VERSION
            )
            if cached is not None:
                self._remember(cached.page)
                return msgspec.structs.replace(
                    cached.history, fetched_at=page_resp.fetched_at, current_owners=owners
                )
        known = _page_facts(page)
        self._remember(known)
        history = self._build(name, page, page_resp.fetched_at, facts, owners)
        blob = encode_derived(_Derived(history, known))
        self.client.attach_derived(page_resp.url, blob, PYPI_PARSER_VERSION)
        return history

    def _remember(self, facts: _PageFacts) -> None:
        self._metadata_hashes.update(facts.metadata_hashes)
        self._provenance_urls.update(facts.provenance_urls)

    async def _index_acl(self) -> tuple[OwnerRole, ...] | None:
        """devpi's upload ACL, shared by every project of the index: fetched once per reader."""
        if self._acl is None:
            self._acl = asyncio.ensure_future(self._fetch_acl())
        return await asyncio.shield(self._acl)

    async def _fetch_acl(self) -> tuple[OwnerRole, ...] | None:
        assert self._devpi_stage is not None and self._devpi_user is not None
        user = self._devpi_user
        _resp, roles = await self._optional(
            self._devpi_stage.rstrip("/"),
            "devpi index configuration",
            lambda doc: parse_devpi_acl(doc, user),
        )
        return roles

    def _build(
        self,
        name: str,
        page: SimplePage,
        fetched_at: datetime,
        facts: ProjectFacts | None,
        owners: tuple[OwnerRole, ...] | None,
    ) -> PackageHistory:
        known = facts.files if facts is not None else {}
        by_version: dict[str, list[Artifact]] = {v: [] for v in page.versions}
        if facts is not None:
            for v in facts.versions:
                by_version.setdefault(v, [])
        for f in page.files:
            extra = known.get(f.filename)
            version = f.version or (extra.version if extra else None)
            if version is None:
                log.debug("%s: cannot tell the version of %s", name, f.filename)
                continue
            by_version.setdefault(version, []).append(
                Artifact(
                    filename=f.filename,
                    url=f.url,
                    digests={**(extra.digests if extra else {}), **f.hashes},
                    size=f.size if f.size is not None else (extra.size if extra else None),
                    kind=f.kind,
                    uploaded_at=f.upload_time or (extra.uploaded_at if extra else None),
                    uploader=Custodian.pypi_user(extra.uploader)
                    if extra and extra.uploader
                    else None,
                    yanked=f.yanked or (extra.yanked if extra else False),
                    has_metadata=f.has_metadata,
                    has_attestations=f.provenance_url is not None,
                )
            )
        listed = {f.filename for f in page.files}
        for filename, extra in known.items():  # files the JSON knows and the page omits
            if filename not in listed:
                by_version.setdefault(extra.version, []).append(
                    Artifact(
                        filename=filename,
                        url=extra.url,
                        digests=dict(extra.digests),
                        size=extra.size,
                        kind=file_version(filename, name)[1],
                        uploaded_at=extra.uploaded_at,
                        uploader=Custodian.pypi_user(extra.uploader) if extra.uploader else None,
                        yanked=extra.yanked,
                    )
                )
        reasons = {fname: ff.yanked_reason for fname, ff in known.items()}
        reasons.update({f.filename: f.yanked_reason for f in page.files if f.yanked_reason})
        releases = [
            self._release(name, version, artifacts, reasons)
            for version, artifacts in by_version.items()
        ]
        deprecated = None
        if page.status in _STATUS_NOTES:
            deprecated = f"project status: {page.status}" + (
                f" ({page.status_reason})" if page.status_reason else ""
            )
        return PackageHistory(
            ecosystem=Ecosystem.PYPI,
            name=name,
            registry=self.registry,
            fetched_at=fetched_at,
            releases=order_releases(releases, pep440_key),
            current_owners=owners,
            organization=facts.organization if facts else None,
            deprecated=deprecated,
            funding=facts.funding if facts else (),
            repository=facts.repository if facts else None,
        )

    @staticmethod
    def _release(
        name: str, version: str, artifacts: list[Artifact], reasons: dict[str, str | None]
    ) -> Release:
        artifacts.sort(key=lambda a: (a.uploaded_at is None, a.uploaded_at or _EPOCH, a.filename))
        times = [a.uploaded_at for a in artifacts if a.uploaded_at is not None]
        uploader = next((a.uploader for a in artifacts if a.uploader is not None), None)
        yanked = bool(artifacts) and all(a.yanked for a in artifacts)
        reason = next((reasons.get(a.filename) for a in artifacts if reasons.get(a.filename)), None)
        attested = any(a.has_attestations for a in artifacts)
        return Release(
            ecosystem=Ecosystem.PYPI,
            name=name,
            version=version,
            published_at=min(times) if times else None,
            publisher=uploader,
            provenance=Provenance(kind="pep740", verified=None) if attested else None,
            artifacts=tuple(artifacts),
            yanked=yanked,
            yanked_reason=reason if yanked else None,
            unpublished=not artifacts,
        )

    # -- provenance (PEP 740) ----------------------------------------------------------------

    def provenance_url(self, name: str, version: str, artifact: Artifact) -> str | None:
        """The file's PEP 740 provenance URL: as the simple page gave it, else Warehouse's
        integrity API (``<root>/integrity/<project>/<version>/<filename>/provenance``)."""
        if artifact.url and artifact.url in self._provenance_urls:
            return self._provenance_urls[artifact.url]
        if self._warehouse_root is None:
            return None
        return (
            f"{self._warehouse_root}integrity/{canonicalize_name(name)}/{version}/"
            f"{artifact.filename}/provenance"
        )

    async def provenance(self, release: Release, artifact: Artifact) -> bytes | None:
        """The provenance object (JSON bytes) of a file the index marks as attested; None when
        unmarked or not served. Cached as immutable. Raises ``RegistryUnavailable``."""
        if not artifact.has_attestations:
            return None
        url = self.provenance_url(release.name, release.version, artifact)
        if url is None:
            return None
        what = f"{release.key} provenance of {artifact.filename}"

        def decode(resp: Response) -> bytes | None:
            return resp.body if load_json_object(resp, what) is not None else None

        try:
            _resp, body = await self._get(
                url, what, decode, accept="application/json", immutable=True
            )
        except PackageNotFound:
            return None
        return body

    # -- dependencies ------------------------------------------------------------------------

    async def enrich(self, history: PackageHistory, versions: Sequence[str]) -> PackageHistory:
        """Fill ``dependencies`` for these versions from PEP 658 ``.metadata`` (a wheel's, else an
        sdist's), else from the METADATA inside a wheel. sdist-only releases stay None (building
        an sdist would run its code) and get a line in ``notes``."""
        wanted = {normalise_version(v) for v in versions}
        targets = [
            r
            for r in history.releases
            if r.version in wanted and r.dependencies is None and not r.unpublished
        ]
        found = await asyncio.gather(*(self._dependencies(r) for r in targets))
        updates = {
            r.version: deps for r, deps in zip(targets, found, strict=True) if deps is not None
        }
        if not updates:
            return history
        releases = tuple(
            msgspec.structs.replace(r, dependencies=updates[r.version])
            if r.version in updates
            else r
            for r in history.releases
        )
        return msgspec.structs.replace(history, releases=releases)

    async def _dependencies(self, release: Release) -> tuple[DeclaredDependency, ...] | None:
        wheels = sorted(
            (a for a in release.artifacts if a.kind == "wheel" and a.url),
            key=lambda a: (not a.filename.endswith("-none-any.whl"), a.size or 0, a.filename),
        )
        sdists = [a for a in release.artifacts if a.kind == "sdist" and a.url]
        for artifact in [*wheels, *sdists]:
            speculative = not artifact.has_metadata
            if speculative and not self._speculate():
                continue
            assert artifact.url is not None
            try:
                _resp, deps = await self._get(
                    artifact.url + ".metadata",
                    f"{release.key} metadata",
                    self._metadata_decoder(artifact),
                    immutable=True,
                )
            except PackageNotFound:
                self._metadata_misses += speculative
                continue
            self._metadata_seen = self._metadata_seen or speculative
            return deps
        if wheels:
            return await self._wheel_dependencies(release, wheels[0])
        self.notes[release.key] = "no wheel and no .metadata: dependencies unknown (sdist only)"
        return None

    def _metadata_decoder(
        self, artifact: Artifact
    ) -> Callable[[Response], tuple[DeclaredDependency, ...]]:
        """Decodes the PEP 658 file of ``artifact`` once it matches the hashes the simple page
        gave for it (``core-metadata``): a mismatch is garbage, retried and never cached."""
        digests = self._metadata_hashes.get(artifact.url or "", {})
        name = f"{artifact.filename}.metadata"
        return lambda r: dependencies_from_metadata(check_digests(r.body, digests, name))

    def _speculate(self) -> bool:
        return self._metadata_seen or self._metadata_misses < _MAX_SPECULATIVE_MISSES

    async def _wheel_dependencies(
        self, release: Release, wheel: Artifact
    ) -> tuple[DeclaredDependency, ...] | None:
        assert wheel.url is not None
        key = wheel.url + "#custody-metadata"  # synthetic cache entry: METADATA, not the wheel
        cached = self.client.lookup(key)
        if cached is not None:
            try:
                return dependencies_from_metadata(cached.body)
            except BadDocument:
                pass
        if wheel.size is not None and wheel.size > self.max_wheel_bytes:
            self.notes[release.key] = f"wheel {wheel.filename} too large to read its METADATA"
            return None

        def decode(resp: Response) -> bytes:
            return metadata_from_wheel(check_digests(resp.body, wheel.digests, wheel.filename))

        try:
            _resp, metadata = await self._get(
                wheel.url,
                f"{release.key} wheel",
                decode,
                use_cache=False,
                max_body=self.max_wheel_bytes,
            )
        except ResponseTooLarge:
            self.notes[release.key] = f"wheel {wheel.filename} too large to read its METADATA"
            return None
        except PackageNotFound:
            self.notes[release.key] = f"wheel {wheel.filename} is gone from the index"
            return None
        self.client.remember(key, metadata, "text/plain")
        return dependencies_from_metadata(metadata)
