"""The one HTTP client every reader shares: bounded concurrency, retries, conditional requests.

- Retries (exponential backoff with jitter) on connect errors, timeouts, 429 (``Retry-After``
  honoured up to a cap), 5xx and bodies the caller cannot decode; then ``RegistryUnavailable``.
- 404/410 raise ``PackageNotFound``; other 4xx fail at once (retrying a 401 does not help).
- Responses go through a ``ResponseCache``: cached validators are sent (``If-None-Match`` /
  ``If-Modified-Since``) and a 304 reuses the cached body and its derived blob. New entries are
  kept in memory and written in one ``cache.store`` batch by ``flush()``; 304s only refresh
  ``fetched_at`` (one ``cache.touch`` batch). Cache entries are preloaded without the bodies
  that a derived blob makes unnecessary; ``Response.body`` loads such a body on first use.
- ``offline`` answers from the cache only; ``max_age`` trusts younger entries without a request;
  ``allow_stale`` (per call) serves the cached copy, flagged ``stale``, when every retry failed.

Credentials travel only as an ``Authorization`` header chosen by the caller; httpx drops it on a
redirect to another origin. URLs in messages are redacted and never carry credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import functools
import importlib.util
import logging
import os
import random
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
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


def _remember_missing_sniffio() -> None:
    """httpcore 1.0 imports ``sniffio`` each time it sets up a lock or an event, several times a
    request. anyio >= 4.11 no longer installs sniffio, Python does not cache a failed import, and
    every attempt scans ``sys.path`` again: about 0.6 ms of CPU per request, more than the rest of
    a 304 costs (encode/httpcore#1102). Record the absence once; ``import sniffio`` then fails at
    once, exactly as before, only faster."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # the documented import block


_remember_missing_sniffio()


class BodyUnavailable(Exception):
    """A cached body left out at load time could not be read back (the entry changed or went)."""


class Response:
    """One answer, from the registry or the cache. ``body`` of a cached answer may be loaded
    lazily: a reader that decodes the derived blob never pays for it."""

    __slots__ = (
        "_body",
        "_load_body",
        "content_type",
        "derived",
        "derived_version",
        "fetched_at",
        "final_url",
        "headers",
        "not_modified",
        "stale",
        "status",
        "url",
    )

    def __init__(
        self,
        *,
        url: str,
        final_url: str,
        status: int,
        body: bytes | None,
        fetched_at: datetime,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        not_modified: bool = False,
        stale: bool = False,
        derived: bytes | None = None,
        derived_version: str | None = None,
        load_body: Callable[[], bytes] | None = None,
    ) -> None:
        if body is None and load_body is None:
            raise ValueError("a Response needs a body or a way to load it")
        self.url = url  # the URL asked for (the cache key)
        self.final_url = final_url  # after redirects: resolve relative links against this
        self.status = status
        self.fetched_at = fetched_at  # when the registry last confirmed this body
        self.content_type = content_type
        self.headers: Mapping[str, str] = headers or {}  # empty if no request was sent
        self.not_modified = not_modified  # the cached body (304, or a trusted cache entry)
        self.stale = stale  # the registry failed and the caller accepted an old cached copy
        self.derived = derived
        self.derived_version = derived_version
        self._body = body
        self._load_body = load_body

    @property
    def body(self) -> bytes:
        """The raw body. Raises ``BadDocument`` if a lazily loaded cached body is gone (the
        client then fetches the document again)."""
        if self._body is None:
            assert self._load_body is not None
            try:
                self._body = self._load_body()
            except BodyUnavailable as exc:
                raise BadDocument(f"cached body unavailable: {exc}") from None
        return self._body

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url}{' (cached)' if self.not_modified else ''}>"


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
    """The system trust store (like pip with truststore, or npm) plus configured CA bundles.

    Loading the system store takes about 50 ms, and a run may open several clients (histories,
    then artifacts): contexts are shared, and rebuilt when a CA bundle file changes."""
    versions: list[tuple[str, tuple[int, int] | None]] = []
    for path in ca_files:
        try:
            stat = os.stat(path)
        except OSError:
            versions.append((path, None))
        else:
            versions.append((path, (stat.st_mtime_ns, stat.st_size)))
    return _shared_ssl_context(tuple(versions))


@functools.lru_cache(maxsize=8)
def _shared_ssl_context(
    ca_files: tuple[tuple[str, tuple[int, int] | None], ...],
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for path, _version in ca_files:
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


_KEEPALIVE_S = 30.0
_POOL_SIZE = 2  # connections per httpcore pool (see _SmallPools)


class _Released(httpx.AsyncByteStream):
    """A response body stream that calls ``release`` once, when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            await self._stream.aclose()
        finally:
            if release is not None:
                release()


class _SmallPools(httpx.AsyncBaseTransport):
    """The direct transport: ``concurrency`` connections in several httpcore pools of
    ``_POOL_SIZE``, each request sent to the pool with the fewest requests in flight.

    Whenever a request starts or ends, an httpcore pool looks at every one of its connections
    (for each idle one a ``poll()`` and a rebuild of anyio's socket attributes, and an idle
    count that is quadratic in the pool size). With one pool of 16 that bookkeeping is most of
    the CPU a request costs: on loopback, 1,000 conditional GETs took about 2 s in one pool of
    16 and 0.9 s in eight pools of 2 (benchmarks/check_speed.py). Our semaphore keeps at most
    ``concurrency`` requests in flight, so the least busy pool always has a free connection."""

    def __init__(self, concurrency: int, verify: ssl.SSLContext) -> None:
        count = -(-concurrency // _POOL_SIZE)
        sizes = [concurrency // count + (i < concurrency % count) for i in range(count)]
        self._pools = [
            httpx.AsyncHTTPTransport(
                verify=verify,
                http1=True,
                http2=False,
                limits=httpx.Limits(
                    max_connections=size,
                    max_keepalive_connections=size,
                    keepalive_expiry=_KEEPALIVE_S,
                ),
            )
            for size in sizes
        ]
        self._in_flight = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._in_flight[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Released(response.stream, lambda: self._release(index))
        return response

    def _release(self, index: int) -> None:
        self._in_flight[index] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def _same_response(a: CachedResponse, b: CachedResponse) -> bool:
    """Do two cache entries hold the same response: the same validators, or (without any) the
    same fetch? (Another process sharing the ledger may have replaced it meanwhile.)"""
    if (a.etag, a.last_modified) != (b.etag, b.last_modified):
        return False
    return a.etag is not None or a.last_modified is not None or a.fetched_at == b.fetched_at


_DRAIN_LIMIT = 64 * 1024


async def _drain(response: httpx.Response) -> None:
    """Read the body of an answer we do not use (a 304, an error page), up to a small limit:
    httpcore closes a connection whose response was not read to the end, and without this every
    revalidation (304) would pay for a new connection."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > _DRAIN_LIMIT:
            break


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
        verify = _ssl_context(opts.ca_files)
        limits = httpx.Limits(
            max_connections=opts.concurrency,
            max_keepalive_connections=opts.concurrency,
            keepalive_expiry=_KEEPALIVE_S,
        )
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
            limits=limits,  # for proxy transports (HTTPS_PROXY); direct requests use the pools
            headers={"User-Agent": USER_AGENT},
            transport=transport if transport is not None else _SmallPools(opts.concurrency, verify),
            verify=verify,
            trust_env=True,  # HTTPS_PROXY / NO_PROXY as every other client honours them
        )
        self._semaphore = asyncio.Semaphore(opts.concurrency)
        self._cache = cache
        self._loaded: dict[str, CachedResponse | None] = {}  # may lack bodies (body_omitted)
        self._pending: dict[str, CachedResponse] = {}  # new or changed: stored by flush()
        self._touched: dict[str, datetime] = {}  # confirmed unchanged (304): touched by flush()
        self.stale_urls: set[str] = set()
        self.requests = 0  # requests sent (tests and benchmarks look at it)

    # -- cache bookkeeping -------------------------------------------------------------------

    def preload(self, urls: Iterable[str]) -> None:
        """Load cache entries for many URLs in one ``cache.load`` call (without the bodies a
        derived blob may make unnecessary)."""
        wanted = [u for u in dict.fromkeys(urls) if u not in self._loaded]
        if not wanted:
            return
        found = self._cache.load(wanted, bodies=False) if self._cache is not None else {}
        for url in wanted:
            self._loaded[url] = found.get(url)

    def _entry(self, url: str) -> CachedResponse | None:
        """The cache entry for ``url``, possibly without its body."""
        if url in self._pending:
            return self._pending[url]
        if url not in self._loaded:
            self.preload([url])
        return self._loaded.get(url)

    def _body_of(self, entry: CachedResponse) -> bytes:
        """The body of ``entry``, read back from the cache if it was left out. Raises
        ``BodyUnavailable`` when the cache no longer holds that same response."""
        if not entry.body_omitted:
            return entry.body
        found = self._cache.load([entry.url]).get(entry.url) if self._cache is not None else None
        if found is None or found.body_omitted or not _same_response(found, entry):
            raise BodyUnavailable(f"the cache entry for {redact_url(entry.url)} changed")
        current = self._loaded.get(entry.url)
        if current is not None and current.body_omitted and _same_response(current, found):
            self._loaded[entry.url] = dataclasses.replace(
                current, body=found.body, body_omitted=False
            )
        return found.body

    def _refresh(self, url: str, when: datetime) -> None:
        """The registry confirmed the cached ``url`` at ``when`` (a 304)."""
        if url in self._pending:
            self._pending[url] = dataclasses.replace(self._pending[url], fetched_at=when)
            return
        entry = self._loaded.get(url)
        if entry is not None:
            self._loaded[url] = dataclasses.replace(entry, fetched_at=when)
            self._touched[url] = when

    def lookup(self, url: str) -> CachedResponse | None:
        """The cache entry for ``url`` with its body, or None."""
        entry = self._entry(url)
        if entry is None or not entry.body_omitted:
            return entry
        try:
            body = self._body_of(entry)
        except BodyUnavailable:
            return None
        return dataclasses.replace(entry, body=body, body_omitted=False)

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
        """Write every new or refreshed cache entry in one batch (and every entry a 304
        confirmed in another); returns how many."""
        entries = list(self._pending.values())
        touched = {u: t for u, t in self._touched.items() if u not in self._pending}
        if self._cache is not None:
            if entries:
                self._cache.store(entries)
            if touched:
                self._cache.touch(touched)
        for entry in entries:
            self._loaded[entry.url] = entry
        self._pending.clear()
        self._touched.clear()
        return len(entries) + len(touched)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- requests ----------------------------------------------------------------------------

    def _from_cache(
        self,
        entry: CachedResponse,
        *,
        headers: Mapping[str, str] | None = None,
        final_url: str | None = None,
        stale: bool = False,
    ) -> Response:
        omitted = entry.body_omitted
        return Response(
            url=entry.url,
            final_url=final_url or entry.url,
            status=entry.status,
            body=None if omitted else entry.body,
            fetched_at=entry.fetched_at,
            content_type=entry.content_type,
            headers=headers,
            not_modified=True,
            stale=stale,
            derived=entry.derived,
            derived_version=entry.derived_version,
            load_body=(lambda: self._body_of(entry)) if omitted else None,
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
        cached = self._entry(url) if use_cache else None
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
                self._refresh(url, now)
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

        stale = self._entry(url) if allow_stale and use_cache else None
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
                        await _drain(r)
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
