"""npm registry reader: one full packument per package (the abbreviated install format has no
``_npmUser``, ``maintainers`` or ``time``). Parsing lives in npm_packument.py."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import msgspec
import orjson

from custody.errors import PackageNotFound
from custody.model import Ecosystem, PackageHistory, Release
from custody.registries.derived import decode_history, encode_history
from custody.registries.documents import BadDocument
from custody.registries.gzipped import inflated_size
from custody.registries.http import RegistryClient, Response
from custody.registries.npm_packument import NPM_PARSER_VERSION, parse_packument_body
from custody.registries.parsing import ParsePool
from custody.registries.settings import NpmSettings
from custody.registries.urls import redact_url


def escaped_name(name: str) -> str:
    """npm's URL form of a package name: ``@scope/name`` -> ``@scope%2fname``."""
    return quote(name, safe="@/").replace("/", "%2f")


class NpmReader:
    ecosystem = Ecosystem.NPM

    def __init__(
        self,
        settings: NpmSettings,
        client: RegistryClient,
        *,
        allow_stale: bool = False,
        parser: ParsePool | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.allow_stale = allow_stale
        self.parser = parser or ParsePool(workers=0)
        self.registry = redact_url(settings.registry)

    def packument_url(self, name: str) -> str:
        return self.settings.registry_for(name) + escaped_name(name)

    def cache_urls(self, name: str) -> list[str]:
        """URLs ``history(name)`` reads, so a caller can preload the cache in one batch."""
        return [self.packument_url(name)]

    async def history(self, name: str) -> PackageHistory:
        url = self.packument_url(name)
        registry = redact_url(self.settings.registry_for(name))
        auth = self.settings.auth_for(url)
        blob: bytes | None = None  # the msgpack form to cache; None: the cached one is reused

        async def decode(resp: Response) -> PackageHistory:
            nonlocal blob
            if resp.not_modified:
                cached = decode_history(resp.derived, resp.derived_version, NPM_PARSER_VERSION)
                if cached is not None:
                    blob = None
                    return msgspec.structs.replace(cached, fetched_at=resp.fetched_at)
            packed = resp.gzip_body  # inflated by the worker, not on the event loop
            size = inflated_size(packed) if packed is not None else len(resp.body)
            if not self.parser.offloads(size):
                parsed = parse_packument_body(resp.body, name, registry, resp.fetched_at)
                blob = encode_history(parsed)
                return parsed
            sent = packed if packed is not None else resp.body
            limit = self.client.options.max_body
            blob = await self.parser.parse(
                "npm-packument", sent, name, registry, resp.fetched_at, limit
            )
            history = decode_history(blob, NPM_PARSER_VERSION, NPM_PARSER_VERSION)
            if history is None:
                raise BadDocument(f"invalid packument for {name}: the parsed form does not decode")
            return history

        _resp, history = await self.client.get_async(
            url,
            registry=registry,
            what=name,
            decode=decode,
            accept="application/json",
            auth=auth.header() if auth is not None else None,
            allow_stale=self.allow_stale,
        )
        if blob is not None:
            self.client.attach_derived(url, blob, NPM_PARSER_VERSION)
        return history

    async def enrich(self, history: PackageHistory, versions: Sequence[str]) -> PackageHistory:
        """Packuments already carry dependencies and scripts: nothing to add."""
        return history

    def attestations_url(self, name: str, version: str) -> str:
        """The registry's attestations document of one version (what ``dist.attestations.url``
        names on the public registry), under the configured registry for the package."""
        base = self.settings.registry_for(name)
        return f"{base}-/npm/v1/attestations/{escaped_name(name)}@{version}"

    async def attestations(self, release: Release) -> bytes | None:
        """The attestations document (JSON bytes) of a release whose packument lists
        ``dist.attestations``; None when it lists none or the registry does not serve it.
        Cached as immutable. Raises ``RegistryUnavailable``."""
        if not any(a.has_attestations for a in release.artifacts):
            return None
        url = self.attestations_url(release.name, release.version)
        auth = self.settings.auth_for(url)
        try:
            _resp, body = await self.client.get(
                url,
                registry=redact_url(self.settings.registry_for(release.name)),
                what=f"{release.key} attestations",
                decode=_json_object_body,
                accept="application/json",
                auth=auth.header() if auth is not None else None,
                allow_stale=self.allow_stale,
                immutable=True,
            )
        except PackageNotFound:
            return None
        return body


def _json_object_body(resp: Response) -> bytes:
    """The body, once it is known to be a JSON object (else ``BadDocument``: retried)."""
    try:
        doc = orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadDocument("not a JSON object")
    return resp.body
