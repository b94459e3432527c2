"""The one HTTP client every reader shares: bounded concurrency, retries, conditional requests.

- Retries (exponential backoff with jitter) on connect errors, timeouts, 429 (``Retry-After``
  honoured up to a cap), 5xx and bodies the caller cannot decode; then ``RegistryUnavailable``.
- 404/410 raise ``PackageNotFound``; other 4xx fail at once (retrying a 401 does not help).
- Responses go through a ``ResponseCache``: cached validators are sent (``If-None-Match`` /
  ``If-Modified-Since``) and a 304 reuses the cached body and its derived blob (a 304 to a
  request that sent no validator confirms nothing: retried as garbage). An entry keeps the URL
  its body came from after redirects (``final_url``). New entries are kept in memory and
  written in one ``cache.store`` batch by ``flush()``; 304s only refresh ``fetched_at`` (one
  ``cache.touch`` batch). Cache entries are preloaded without the bodies that a derived blob
  makes unnecessary; ``Response.body`` loads such a body on first use.
- ``offline`` answers from the cache only; ``max_age`` trusts younger entries without a request;
  without it, ``honor_cache_control`` trusts an entry for as long as the registry's
  ``Cache-Control: max-age`` (less its ``Age``) said, capped at ``freshness_cap``;
  ``allow_stale`` (per call) serves the cached copy, flagged ``stale``, when every retry failed.

Credentials travel only as an ``Authorization`` header chosen by the caller, dropped on a
redirect to another origin. URLs in messages are redacted and never carry credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import functools
import logging
import random
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urljoin

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.registries.base import CachedResponse, ResponseCache
from custody.registries.documents import BadDocument
from custody.registries.gzipped import TooLarge, content_coding, gunzip
from custody.registries.tls import ssl_context_soon
from custody.registries.urls import redact_url

if TYPE_CHECKING:
    import httpx

    from custody.registries.transport import Transport

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))


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
    honor_cache_control: bool = False  # else: trust entries as long as the registry said
    freshness_cap: float = 600.0  # ... but never longer than this many seconds


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
        "gzip_body",
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
        gzip_body: bytes | None = None,
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
        self.gzip_body = gzip_body  # the body as sent, when gzip-compressed (``gzipped.py``)

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


def freshness_lifetime(headers: Mapping[str, str]) -> float | None:
    """How many more seconds a response stays fresh by its ``Cache-Control`` (RFC 9111):
    ``max-age`` less the ``Age`` a shared cache on the way added; 0 for ``no-cache``,
    ``no-store`` or a malformed ``max-age``; None when the registry says nothing."""
    value = headers.get("cache-control")
    if not value:
        return None
    lifetime: float | None = None
    for directive in value.split(","):
        name, _, argument = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-cache", "no-store"):
            return 0.0
        if name == "max-age":
            argument = argument.strip().strip('"')
            if not argument.isdigit():
                return 0.0
            lifetime = float(argument)
    if lifetime is None:
        return None
    age = headers.get("age", "").strip()
    return max(0.0, lifetime - (float(age) if age.isdigit() else 0.0))


def _inflated(packed: bytes, limit: int, url: str) -> bytes:
    """A gzip body inflated: ``BadDocument`` (retried) when corrupt, ``ResponseTooLarge`` when
    it inflates past ``limit`` bytes (a decompression bomb)."""
    try:
        return gunzip(packed, limit)
    except TooLarge as exc:
        origin = redact_url(urljoin(url, "/"))
        raise ResponseTooLarge(origin, f"response {exc} ({redact_url(url)})") from None
    except zlib.error as exc:
        raise BadDocument(f"corrupt gzip body: {exc}") from None


def _conditional(headers: Mapping[str, str]) -> bool:
    """Do these request headers ask for a 304 (``If-None-Match`` or ``If-Modified-Since``)?"""
    return "If-None-Match" in headers or "If-Modified-Since" in headers


def _same_response(a: CachedResponse, b: CachedResponse) -> bool:
    """Do two cache entries hold the same response: the same validators, or (without any) the
    same fetch? (Another process sharing the ledger may have replaced it meanwhile.)"""
    if (a.etag, a.last_modified) != (b.etag, b.last_modified):
        return False
    return a.etag is not None or a.last_modified is not None or a.fetched_at == b.fetched_at


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
        self._custom_transport = transport
        self._transport: Transport | None = None  # made on the first request
        self._semaphore = asyncio.Semaphore(opts.concurrency)
        self._cache = cache
        self._loaded: dict[str, CachedResponse | None] = {}  # may lack bodies (body_omitted)
        self._pending: dict[str, CachedResponse] = {}  # new or changed: stored by flush()
        self._touched: dict[str, datetime] = {}  # confirmed unchanged (304): touched by flush()
        self._renewed: dict[str, float | None] = {}  # ... with a new freshness lifetime
        self._ask_again: set[str] = set()  # fresh cache entries that must be revalidated
        self._unasked: set[str] = set()  # answered from a fresh cache entry in this run
        self.stale_urls: set[str] = set()
        self.requests = 0  # requests sent (tests and benchmarks look at it)

    # -- cache bookkeeping -------------------------------------------------------------------

    def preload(self, urls: Iterable[str]) -> None:
        """Load cache entries for many URLs in one ``cache.load`` call (without the bodies a
        derived blob may make unnecessary). When some of them will be asked of the registry
        (no entry, or one not fresh), the TLS context starts loading now, in a thread
        (``tls.py``), so that the first request does not wait for the trust store."""
        wanted = list(dict.fromkeys(urls))
        missing = [u for u in wanted if u not in self._loaded]
        if missing:
            found = self._cache.load(missing, bodies=False) if self._cache is not None else {}
            for url in missing:
                self._loaded[url] = found.get(url)
        if not self.options.offline and any(
            (entry := self._loaded[u]) is None or not self._trusted(entry, False) for u in wanted
        ):
            ssl_context_soon(self.options.ca_files)

    def uncached(self, urls: Iterable[str]) -> int:
        """How many of these URLs have no cache entry at all: each will be downloaded whole."""
        return sum(1 for url in urls if self._entry(url) is None)

    def _entry(self, url: str) -> CachedResponse | None:
        """The cache entry for ``url``, possibly without its body."""
        if url in self._pending:
            return self._pending[url]
        if url not in self._loaded:
            self.preload([url])
        return self._loaded.get(url)

    def _body_of(self, entry: CachedResponse) -> bytes:
        """The body of ``entry``: inflated if it came gzip-compressed, read back from the cache
        if it was left out. Raises ``BodyUnavailable`` when the cache no longer holds that same
        response."""
        if entry.gzip_body is not None:
            return _inflated(entry.gzip_body, self.options.max_body, entry.url)
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

    def _refresh(self, url: str, when: datetime, fresh_for: float | None) -> None:
        """The registry confirmed the cached ``url`` at ``when`` (a 304), fresh for
        ``fresh_for`` seconds if it said so (else the stored lifetime stays)."""

        def renewed(entry: CachedResponse) -> CachedResponse:
            lifetime = entry.fresh_for if fresh_for is None else fresh_for
            return dataclasses.replace(entry, fetched_at=when, fresh_for=lifetime)

        if url in self._pending:
            self._pending[url] = renewed(self._pending[url])
            return
        entry = self._loaded.get(url)
        if entry is not None:
            self._loaded[url] = renewed(entry)
            self._touched[url] = when
            if fresh_for is not None:
                self._renewed[url] = fresh_for

    def lookup(self, url: str) -> CachedResponse | None:
        """The cache entry for ``url`` with its body, or None."""
        entry = self._entry(url)
        if entry is None or (not entry.body_omitted and entry.gzip_body is None):
            return entry
        try:
            body = self._body_of(entry)
        except (BodyUnavailable, BadDocument):
            return None
        return dataclasses.replace(entry, body=body, body_omitted=False)

    def remember(self, url: str, body: bytes, content_type: str | None = None) -> None:
        """Keep a synthetic entry (e.g. METADATA extracted from a wheel) under ``url``."""
        self._pending[url] = CachedResponse(
            url=url, status=200, body=body, fetched_at=datetime.now(UTC), content_type=content_type
        )

    def attach_derived(self, url: str, derived: bytes, version: str) -> None:
        """Store the parsed form of the response for ``url`` beside its body."""
        entry = self._entry(url)
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
                renewed = {u: f for u, f in self._renewed.items() if u in touched}
                self._cache.touch(touched, renewed)
        for entry in entries:
            self._loaded[entry.url] = entry
        self._pending.clear()
        self._touched.clear()
        self._renewed.clear()
        return len(entries) + len(touched)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    # -- requests ----------------------------------------------------------------------------

    def _from_cache(
        self,
        entry: CachedResponse,
        *,
        headers: Mapping[str, str] | None = None,
        final_url: str | None = None,
        stale: bool = False,
    ) -> Response:
        lazy = entry.body_omitted or entry.gzip_body is not None
        return Response(
            url=entry.url,
            final_url=final_url or entry.final_url or entry.url,
            status=entry.status,
            body=None if lazy else entry.body,
            fetched_at=entry.fetched_at,
            content_type=entry.content_type,
            headers=headers,
            not_modified=True,
            stale=stale,
            derived=entry.derived,
            derived_version=entry.derived_version,
            load_body=(lambda: self._body_of(entry)) if lazy else None,
            gzip_body=entry.gzip_body,
        )

    def revalidate(self, urls: Iterable[str]) -> set[str]:
        """Ask the registry about these URLs next time even if their cache entries are fresh
        (a fresh copy turned out not to know a locked version). Returns those of them that
        were answered from the cache without asking in this run: the others are as current as
        the registry makes them."""
        marked = {u for u in urls if u in self._unasked}
        self._ask_again |= marked
        self._unasked -= marked
        return marked

    def _trusted(self, entry: CachedResponse, immutable: bool) -> bool:
        """May ``entry`` answer without asking the registry?"""
        opts = self.options
        if opts.offline or immutable:
            return True
        if entry.url in self._ask_again:
            return False
        if opts.max_age is not None:
            lifetime = opts.max_age
        elif opts.honor_cache_control and entry.fresh_for:
            lifetime = min(entry.fresh_for, opts.freshness_cap)
        else:
            return False
        return (datetime.now(UTC) - entry.fetched_at).total_seconds() < lifetime

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

        async def decoded(resp: Response) -> T:
            return decode(resp)

        return await self.get_async(
            url,
            registry=registry,
            what=what,
            decode=decoded,
            accept=accept,
            auth=auth,
            allow_stale=allow_stale,
            immutable=immutable,
            max_body=max_body,
            use_cache=use_cache,
        )

    async def get_async(
        self,
        url: str,
        *,
        registry: str,
        what: str,
        decode: Callable[[Response], Awaitable[T]],
        accept: str | None = None,
        auth: str | None = None,
        allow_stale: bool = False,
        immutable: bool = False,
        max_body: int | None = None,
        use_cache: bool = True,
    ) -> tuple[Response, T]:
        """``get`` with a coroutine ``decode`` (one that parses in a worker process)."""
        cached = self._entry(url) if use_cache else None
        if cached is not None and self._trusted(cached, immutable):
            if cached.status in (404, 410):
                raise PackageNotFound(registry, what)
            self._unasked.add(url)
            resp = self._from_cache(cached)
            try:
                return resp, await decode(resp)
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

        from custody.registries import transport

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
            except transport.BodyTooLarge:
                raise ResponseTooLarge(
                    registry,
                    f"response for {what} exceeds {(max_body or opts.max_body) // 2**20} MB "
                    f"({redact_url(url)})",
                ) from None
            except transport.TRANSPORT_ERRORS as exc:
                last_error = transport.describe(exc)
                log.debug("GET %s failed: %s", redact_url(url), last_error)
                continue
            now = datetime.now(UTC)
            if status == 304 and not _conditional(headers):
                last_error = "HTTP 304 to a request without validators"  # nothing to confirm
                continue
            if status == 304 and cached is not None:
                refreshed = dataclasses.replace(cached, fetched_at=now)
                resp = self._from_cache(refreshed, headers=resp_headers, final_url=final_url)
                try:
                    value = await decode(resp)
                except BadDocument as exc:
                    last_error = f"cached copy unusable: {exc}"
                    cached = None
                    continue
                self._refresh(url, now, freshness_lifetime(resp_headers))
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
            packed = body if content_coding(resp_headers) == "gzip" else None
            limit = max_body or opts.max_body
            resp = Response(
                url=url,
                final_url=final_url,
                status=200,
                body=None if packed is not None else body,
                fetched_at=now,
                content_type=resp_headers.get("content-type"),
                headers=resp_headers,
                gzip_body=packed,
                load_body=functools.partial(_inflated, packed, limit, url) if packed else None,
            )
            try:
                value = await decode(resp)
            except BadDocument as exc:
                last_error = str(exc) or "undecodable response"
                log.debug("GET %s: %s", redact_url(url), last_error)
                continue
            if not use_cache:
                return resp, value
            self._pending[url] = CachedResponse(
                url=url,
                status=200,
                body=b"" if packed is not None else body,
                gzip_body=packed,
                fetched_at=now,
                etag=resp_headers.get("etag"),
                last_modified=resp_headers.get("last-modified"),
                content_type=resp.content_type,
                fresh_for=freshness_lifetime(resp_headers),
                final_url=final_url if final_url != url else None,
            )
            return resp, value

        stale = self._entry(url) if allow_stale and use_cache else None
        if stale is not None:
            if stale.status in (404, 410):
                raise PackageNotFound(registry, what)
            resp = self._from_cache(stale, stale=True)
            try:
                value = await decode(resp)
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
        from custody.registries.transport import Transport

        if self._transport is None:
            opts = self.options
            self._transport = Transport(
                concurrency=opts.concurrency,
                connect_timeout=opts.connect_timeout,
                read_timeout=opts.read_timeout,
                ca_files=opts.ca_files,
                transport=self._custom_transport,
            )
        async with self._semaphore:
            self.requests += 1
            async with asyncio.timeout(self.options.total_timeout):
                return await self._transport.get(url, headers, limit)
