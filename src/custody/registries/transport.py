"""The httpx side of ``RegistryClient``: the connection pools and the client itself. Kept apart
so that a run answered entirely from the cache (``--offline``, fresh entries) never imports
httpx: ``http.py`` imports this module on its first request. The TLS context is ``tls.py``'s."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable, Mapping

import httpx

from custody.registries.gzipped import content_coding
from custody.registries.tls import ssl_context_soon

USER_AGENT = "custody/0.1 (python-httpx)"


def describe(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out ({name})"
    text = str(exc)
    return f"{name}: {text}" if text else name


_KEEPALIVE_S = 30.0
_POOL_SIZE = 2  # connections per httpcore pool (see SmallPools)


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


class SmallPools(httpx.AsyncBaseTransport):
    """The direct transport: ``concurrency`` connections in several httpcore pools of
    ``_POOL_SIZE``, each request sent to the pool with the fewest requests in flight; one set
    of pools for ``https`` and one for ``http``, each made on its first request (``verify`` is
    called then: a registry on plain ``http`` never waits for the trust store).

    Whenever a request starts or ends, an httpcore pool looks at every one of its connections
    (for each idle one a ``poll()`` and a rebuild of anyio's socket attributes, and an idle
    count that is quadratic in the pool size). With one pool of 16 that bookkeeping is most of
    the CPU a request costs: on loopback, 1,000 conditional GETs took about 2 s in one pool of
    16 and 0.9 s in eight pools of 2 (benchmarks/check_speed.py). Our semaphore keeps at most
    ``concurrency`` requests in flight, so the least busy pool always has a free connection."""

    def __init__(self, concurrency: int, verify: Callable[[], ssl.SSLContext]) -> None:
        self._concurrency = concurrency
        self._verify = verify
        self._sets: dict[bool, _Pools] = {}  # by "is https"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        secure = request.url.scheme == "https"
        pools = self._sets.get(secure)
        if pools is None:
            # Plain http never does TLS: its pools get a context that trusts nothing.
            context = self._verify() if secure else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            pools = self._sets[secure] = _Pools(self._concurrency, context)
        return await pools.handle_async_request(request)

    async def aclose(self) -> None:
        for pools in self._sets.values():
            await pools.aclose()


class _Pools:
    """``SmallPools``' pools for one scheme."""

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


_DRAIN_LIMIT = 64 * 1024


async def drain(response: httpx.Response) -> None:
    """Read the body of an answer we do not use (a 304, an error page), up to a small limit:
    httpcore closes a connection whose response was not read to the end, and without this every
    revalidation (304) would pay for a new connection."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > _DRAIN_LIMIT:
            break


class BodyTooLarge(Exception):
    """The answer is larger than the caller's limit."""


class UnexpectedEncoding(httpx.DecodingError):
    """A ``Content-Encoding`` other than the ``gzip`` Custody asked for (retried, like a
    garbled answer)."""


_ACCEPT_GZIP = {"Accept-Encoding": "gzip"}


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    httpx.TooManyRedirects,
    UnexpectedEncoding,
    TimeoutError,
)


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10


def proxies_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Is any proxy variable set (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, any case)?"""
    env = os.environ if environ is None else environ
    return any(v.lower() in PROXY_VARIABLES and env[v].strip() for v in env)


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _is_https_upgrade(old: httpx.URL, new: httpx.URL) -> bool:
    """``http://host`` to ``https://host`` on the default ports: the credentials may follow."""
    return (
        old.scheme == "http"
        and new.scheme == "https"
        and old.host == new.host
        and old.port in (80, None)
        and new.port in (443, None)
    )


class Transport:
    """The timeouts, limits and pools of ``RegistryClient``.

    Requests go straight to the connection pools (``SmallPools``), not through
    ``httpx.AsyncClient``: the client's per-request work (merging URLs, headers and cookies,
    the auth and redirect machinery, picking a mount) cost about 0.2 ms of CPU per request, a
    third of a loopback request's CPU, and a cold check sends a thousand of them from a busy
    event loop. Redirects are followed here as httpx follows them (at most 10; the
    ``Authorization`` header dropped on a move to another origin, except from ``http`` to
    ``https`` on the same host). When a proxy variable is set, or a transport is given, requests
    go through an ``httpx.AsyncClient`` instead, which applies ``NO_PROXY`` and the rest of
    httpx's proxy rules."""

    def __init__(
        self,
        *,
        concurrency: int,
        connect_timeout: float,
        read_timeout: float,
        ca_files: tuple[str, ...],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        verify = ssl_context_soon(ca_files)
        pools = SmallPools(concurrency, verify) if transport is None else None
        self._timeouts = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": read_timeout,
        }
        self._direct = pools if pools is not None and not proxies_configured() else None
        self._client: httpx.AsyncClient | None = None
        if self._direct is None:
            limits = httpx.Limits(
                max_connections=concurrency,
                max_keepalive_connections=concurrency,
                keepalive_expiry=_KEEPALIVE_S,
            )
            self._client = httpx.AsyncClient(
                http1=True,
                http2=False,
                follow_redirects=True,
                max_redirects=_MAX_REDIRECTS,
                timeout=httpx.Timeout(**self._timeouts),
                limits=limits,  # for proxy transports (HTTPS_PROXY); else the pools' own
                headers={"User-Agent": USER_AGENT},
                transport=transport if transport is not None else pools,
                verify=verify(),
                trust_env=True,  # HTTPS_PROXY / NO_PROXY as every other client honours them
            )

    async def get(
        self, url: str, headers: dict[str, str], limit: int
    ) -> tuple[int, dict[str, str], bytes, str]:
        """GET ``url``: (status, headers, body, final URL). Only ``gzip`` is asked for and the
        body comes back as sent: still gzip-compressed when its ``content-encoding`` header
        says so (``gzipped.py``). The body is read only for a 200 (``BodyTooLarge`` beyond
        ``limit`` bytes as sent); other answers are drained."""
        if self._client is None:
            return await self._get_direct(url, headers, limit)
        async with self._client.stream("GET", url, headers={**headers, **_ACCEPT_GZIP}) as r:
            return await _answer(r, limit)

    async def _get_direct(
        self, url: str, headers: dict[str, str], limit: int
    ) -> tuple[int, dict[str, str], bytes, str]:
        assert self._direct is not None
        sent = {"User-Agent": USER_AGENT, **headers, **_ACCEPT_GZIP}
        extensions = {"timeout": self._timeouts}
        request = httpx.Request("GET", url, headers=sent, extensions=extensions)
        for _hop in range(_MAX_REDIRECTS + 1):
            response = await self._direct.handle_async_request(request)
            response.request = request
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECTS or not location:
                    return await _answer(response, limit)
                await drain(response)
            finally:
                await response.aclose()
            target = _redirect_target(request, location)
            if target.scheme not in ("http", "https"):
                raise httpx.UnsupportedProtocol(f"redirected to {target.scheme!r}")
            if not _same_origin(target, request.url) and not _is_https_upgrade(request.url, target):
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            request = httpx.Request("GET", target, headers=sent, extensions=extensions)
        raise httpx.TooManyRedirects(f"more than {_MAX_REDIRECTS} redirects", request=request)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()  # closes the pools it was given
        elif self._direct is not None:
            await self._direct.aclose()


def _redirect_target(request: httpx.Request, location: str) -> httpx.URL:
    """Where a redirect leads; an unparseable ``Location`` is a ``RemoteProtocolError`` (a
    transport error: retried), as ``httpx.AsyncClient`` makes it."""
    try:
        return request.url.join(location)
    except httpx.InvalidURL as exc:
        raise httpx.RemoteProtocolError(
            f"Invalid URL in location header: {exc}.", request=request
        ) from None


async def _answer(r: httpx.Response, limit: int) -> tuple[int, dict[str, str], bytes, str]:
    """What ``Transport.get`` returns for the response ``r`` (its body not read yet)."""
    final_url = str(r.request.url)
    if r.status_code != 200:
        await drain(r)
        return r.status_code, dict(r.headers), b"", final_url
    encoding = content_coding(r.headers)
    if encoding not in ("gzip", "identity", ""):
        raise UnexpectedEncoding(f"answered with Content-Encoding {encoding!r}")
    declared = r.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    total = 0
    async for chunk in r.aiter_raw():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return 200, dict(r.headers), b"".join(chunks), final_url
