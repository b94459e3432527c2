"""The one HTTP client every reader shares: bounded concurrency, retries, conditional requests.

- Retries (exponential backoff with jitter) on connect errors, timeouts, 429 (``Retry-After``
  honoured up to a cap), 5xx and bodies the caller cannot decode; then ``RegistryUnavailable``.
- 404/410 raise ``PackageNotFound``; other 4xx fail at once (retrying a 401 does not help).
- Responses go through a ``ResponseCache``: cached validators are sent (``If-None-Match`` /
  ``If-Modified-Since``) and a 304 reuses the cached body and its derived blob. New entries are
  kept in memory and written in one ``cache.store`` batch by ``flush()``.
- ``offline`` answers from the cache only; ``max_age`` trusts younger entries without a request;
  ``allow_stale`` (per call) serves the cached copy, flagged ``stale``, when every retry failed.

Credentials travel only as an ``Authorization`` header chosen by the caller; httpx drops it on a
redirect to another origin. URLs in messages are redacted and never carry credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import random
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import httpx

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.registries.base import CachedResponse, ResponseCache
from custody.registries.urls import redact_url

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = "custody/0.1 (python-httpx)"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))


class BadDocument(ValueError):
    """A response body the caller cannot decode (garbage JSON, wrong shape): retried."""


@dataclass(frozen=True, slots=True)
class HttpOptions:
    concurrency: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0  # one attempt, headers to last byte (slow-drip guard)
    attempts: int = 3
    backoff: float = 0.5  # first retry waits about this long, doubling each time
    backoff_cap: float = 8.0
    retry_after_cap: float = 30.0
    max_body: int = 200 * 1024 * 1024  # decoded bytes; larger answers fail (memory bombs)
    ca_files: tuple[str, ...] = ()  # extra CA bundles trusted besides the system store
    offline: bool = False  # never send a request: cache or RegistryUnavailable
    max_age: float | None = None  # seconds: trust younger cache entries without a request


@dataclass(frozen=True, slots=True)
class Response:
    url: str  # the URL asked for (the cache key)
    final_url: str  # after redirects: resolve relative links against this
    status: int
    body: bytes
    fetched_at: datetime  # when the registry last confirmed this body
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # empty if no request was sent
    not_modified: bool = False  # the body is the cached one (304, or a trusted cache entry)
    stale: bool = False  # the registry failed and the caller accepted an old cached copy
    derived: bytes | None = None
    derived_version: str | None = None


class _TooLarge(Exception):
    pass


class ResponseTooLarge(RegistryUnavailable):
    """The answer exceeded the size limit (not retried: it would be as large again)."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _ssl_context(ca_files: tuple[str, ...]) -> ssl.SSLContext:
    """The system trust store (like pip with truststore, or npm) plus configured CA bundles."""
    context = ssl.create_default_context()
    for path in ca_files:
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            log.warning("ignoring CA bundle %s: %s", path, exc)
    return context


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out ({name})"
    text = str(exc)
    return f"{name}: {text}" if text else name


class RegistryClient:
    """Shared async HTTP client. Use one per run; ``flush()`` then ``aclose()`` at the end."""

    def __init__(
        self,
        cache: ResponseCache | None = None,
        options: HttpOptions | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = options or HttpOptions()
        opts = self.options
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            follow_redirects=True,
            max_redirects=10,
            timeout=httpx.Timeout(
                connect=opts.connect_timeout,
                read=opts.read_timeout,
                write=opts.read_timeout,
                pool=opts.read_timeout,
            ),
            limits=httpx.Limits(
                max_connections=opts.concurrency,
                max_keepalive_connections=opts.concurrency,
                keepalive_expiry=30.0,
            ),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            verify=_ssl_context(opts.ca_files),
            trust_env=True,  # HTTPS_PROXY / NO_PROXY as every other client honours them
        )
        self._semaphore = asyncio.Semaphore(opts.concurrency)
        self._cache = cache
        self._loaded: dict[str, CachedResponse | None] = {}
        self._pending: dict[str, CachedResponse] = {}
        self.stale_urls: set[str] = set()
        self.requests = 0  # requests sent (tests and benchmarks look at it)

    # -- cache bookkeeping -------------------------------------------------------------------

    def preload(self, urls: Iterable[str]) -> None:
        """Load cache entries for many URLs in one ``cache.load`` call."""
        wanted = [u for u in dict.fromkeys(urls) if u not in self._loaded]
        if not wanted:
            return
        found = self._cache.load(wanted) if self._cache is not None else {}
        for url in wanted:
            self._loaded[url] = found.get(url)

    def lookup(self, url: str) -> CachedResponse | None:
        if url in self._pending:
            return self._pending[url]
        if url not in self._loaded:
            self.preload([url])
        return self._loaded.get(url)

    def remember(self, url: str, body: bytes, content_type: str | None = None) -> None:
        """Keep a synthetic entry (e.g. METADATA extracted from a wheel) under ``url``."""
        self._pending[url] = CachedResponse(
            url=url, status=200, body=body, fetched_at=datetime.now(UTC), content_type=content_type
        )

    def attach_derived(self, url: str, derived: bytes, version: str) -> None:
        """Store the parsed form of the response for ``url`` beside its body."""
        entry = self.lookup(url)
        if entry is None or (entry.derived == derived and entry.derived_version == version):
            return
        self._pending[url] = dataclasses.replace(entry, derived=derived, derived_version=version)

    def flush(self) -> int:
        """Write every new or refreshed cache entry in one batch; returns how many."""
        if not self._pending:
            return 0
        entries = list(self._pending.values())
        if self._cache is not None:
            self._cache.store(entries)
        for entry in entries:
            self._loaded[entry.url] = entry
        self._pending.clear()
        return len(entries)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- requests ----------------------------------------------------------------------------

    @staticmethod
    def _from_cache(
        entry: CachedResponse,
        *,
        headers: Mapping[str, str] | None = None,
        final_url: str | None = None,
        stale: bool = False,
    ) -> Response:
        return Response(
            url=entry.url,
            final_url=final_url or entry.url,
            status=entry.status,
            body=entry.body,
            fetched_at=entry.fetched_at,
            content_type=entry.content_type,
            headers=headers or {},
            not_modified=True,
            stale=stale,
            derived=entry.derived,
            derived_version=entry.derived_version,
        )

    def _trusted(self, entry: CachedResponse, immutable: bool) -> bool:
        if self.options.offline or immutable:
            return True
        if self.options.max_age is None:
            return False
        age = (datetime.now(UTC) - entry.fetched_at).total_seconds()
        return age < self.options.max_age

    async def get(
        self,
        url: str,
        *,
        registry: str,
        what: str,
        decode: Callable[[Response], T],
        accept: str | None = None,
        auth: str | None = None,
        allow_stale: bool = False,
        immutable: bool = False,
        max_body: int | None = None,
        use_cache: bool = True,
    ) -> tuple[Response, T]:
        """GET ``url`` and ``decode`` it (``decode`` raises ``BadDocument`` for garbage, which is
        retried). ``what`` names the thing for messages (a package name); ``registry`` is the
        redacted base URL errors name. ``immutable`` URLs (content-addressed files) are served
        from the cache whenever cached. ``use_cache=False`` neither reads nor stores the cache
        (large downloads)."""
        cached = self.lookup(url) if use_cache else None
        if cached is not None and self._trusted(cached, immutable):
            if cached.status in (404, 410):
                raise PackageNotFound(registry, what)
            resp = self._from_cache(cached)
            try:
                return resp, decode(resp)
            except BadDocument as exc:
                if self.options.offline:
                    raise RegistryUnavailable(
                        registry, f"cached copy of {what} unusable: {exc}"
                    ) from None
                cached = None  # refetch unconditionally
        if self.options.offline:
            raise RegistryUnavailable(
                registry, f"offline mode and no cached copy of {what} ({redact_url(url)})"
            )

        opts = self.options
        last_error = "no attempt made"
        wait: float | None = None
        for attempt in range(opts.attempts):
            if attempt:
                await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
            wait = None
            headers = {"Accept": accept} if accept else {}
            if auth:
                headers["Authorization"] = auth
            if cached is not None and cached.status == 200:
                if cached.etag:
                    headers["If-None-Match"] = cached.etag
                if cached.last_modified:
                    headers["If-Modified-Since"] = cached.last_modified
            try:
                status, resp_headers, body, final_url = await self._send(
                    url, headers, max_body or opts.max_body
                )
            except _TooLarge:
                raise ResponseTooLarge(
                    registry,
                    f"response for {what} exceeds {(max_body or opts.max_body) // 2**20} MB "
                    f"({redact_url(url)})",
                ) from None
            except (httpx.TransportError, TimeoutError) as exc:
                last_error = _describe(exc)
                log.debug("GET %s failed: %s", redact_url(url), last_error)
                continue
            now = datetime.now(UTC)
            if status == 304 and cached is not None:
                refreshed = dataclasses.replace(cached, fetched_at=now)
                resp = self._from_cache(refreshed, headers=resp_headers, final_url=final_url)
                try:
                    value = decode(resp)
                except BadDocument as exc:
                    last_error = f"cached copy unusable: {exc}"
                    cached = None
                    continue
                self._pending[url] = refreshed
                return resp, value
            if status in (404, 410):
                if use_cache:  # remembered, so offline runs know it too
                    self._pending[url] = CachedResponse(
                        url=url, status=status, body=b"", fetched_at=now
                    )
                raise PackageNotFound(registry, what)
            if status in _RETRY_STATUSES:
                last_error = f"HTTP {status}"
                if status in (429, 503):
                    after = _retry_after(resp_headers.get("retry-after"))
                    if after is not None:
                        wait = min(after, opts.retry_after_cap)
                continue
            if status != 200:
                hint = " (check the registry credentials)" if status in (401, 403) else ""
                raise RegistryUnavailable(
                    registry, f"HTTP {status} for {what} ({redact_url(url)}){hint}"
                )
            resp = Response(
                url=url,
                final_url=final_url,
                status=200,
                body=body,
                fetched_at=now,
                content_type=resp_headers.get("content-type"),
                headers=resp_headers,
            )
            try:
                value = decode(resp)
            except BadDocument as exc:
                last_error = str(exc) or "undecodable response"
                log.debug("GET %s: %s", redact_url(url), last_error)
                continue
            if not use_cache:
                return resp, value
            self._pending[url] = CachedResponse(
                url=url,
                status=200,
                body=body,
                fetched_at=now,
                etag=resp_headers.get("etag"),
                last_modified=resp_headers.get("last-modified"),
                content_type=resp.content_type,
            )
            return resp, value

        stale = self.lookup(url) if allow_stale and use_cache else None
        if stale is not None:
            if stale.status in (404, 410):
                raise PackageNotFound(registry, what)
            resp = self._from_cache(stale, stale=True)
            try:
                value = decode(resp)
            except BadDocument:
                pass
            else:
                log.warning(
                    "using a cached copy of %s from %s: %s", what, stale.fetched_at, last_error
                )
                self.stale_urls.add(url)
                return resp, value
        raise RegistryUnavailable(
            registry,
            f"{last_error} (gave up after {opts.attempts} attempt(s): GET {redact_url(url)})",
        )

    def _backoff(self, attempt: int) -> float:
        opts = self.options
        base = min(opts.backoff_cap, opts.backoff * 2.0 ** (attempt - 1))
        return base / 2 + random.uniform(0, base / 2)

    async def _send(
        self, url: str, headers: dict[str, str], limit: int
    ) -> tuple[int, Mapping[str, str], bytes, str]:
        async with self._semaphore:
            self.requests += 1
            async with asyncio.timeout(self.options.total_timeout):
                async with self._client.stream("GET", url, headers=headers) as r:
                    if r.status_code != 200:
                        return r.status_code, dict(r.headers), b"", str(r.url)
                    declared = r.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise _TooLarge
                    chunks: list[bytes] = []
                    total = 0
                    async for chunk in r.aiter_bytes():
                        total += len(chunk)
                        if total > limit:
                            raise _TooLarge
                        chunks.append(chunk)
                    return 200, dict(r.headers), b"".join(chunks), str(r.url)
