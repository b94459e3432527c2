"""The shared client against a real loopback HTTP server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.registries.base import CachedResponse
from custody.registries.http import (
    BadDocument,
    HttpOptions,
    RegistryClient,
    ResponseTooLarge,
)
from custody.registries.http import Response as RegistryResponse
from custody.registries.tls import ssl_context

from .conftest import FAST, MemoryCache, run

REGISTRY = "http://registry.example/"


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _response in server.log if request.path == path]


def as_json(resp: RegistryResponse) -> object:
    try:
        return orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"garbage: {exc}") from None


async def fetch(
    url: str,
    cache: MemoryCache | None = None,
    options: HttpOptions = FAST,
    **kw: object,
) -> tuple[RegistryResponse, object, RegistryClient]:
    client = RegistryClient(cache, options)
    try:
        resp, value = await client.get(
            url,
            registry=REGISTRY,
            what="pkg",
            decode=as_json,
            **kw,  # type: ignore[arg-type]
        )
        return resp, value, client
    finally:
        client.flush()
        await client.aclose()


def test_retries_a_500_then_succeeds(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/pkg").respond_with_data("boom", status=500)
    httpserver.expect_request("/pkg").respond_with_json({"ok": 1})
    resp, value, client = run(fetch(httpserver.url_for("/pkg")))
    assert value == {"ok": 1}
    assert client.requests == 2
    assert not resp.not_modified


def test_gives_up_after_three_attempts_naming_the_registry(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pkg").respond_with_data("boom", status=503)
    with pytest.raises(RegistryUnavailable) as info:
        run(fetch(httpserver.url_for("/pkg")))
    assert info.value.registry == REGISTRY
    assert "HTTP 503" in info.value.reason
    assert "3 attempt" in info.value.reason
    assert len(requests_to(httpserver, "/pkg")) == 3
    assert info.value.exit_code == 3


def test_garbage_json_is_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/pkg").respond_with_data("{not json", status=200)
    httpserver.expect_request("/pkg").respond_with_json({"ok": 2})
    _resp, value, _client = run(fetch(httpserver.url_for("/pkg")))
    assert value == {"ok": 2}


def test_garbage_forever_is_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pkg").respond_with_data("<html>oops", status=200)
    with pytest.raises(RegistryUnavailable, match="garbage"):
        run(fetch(httpserver.url_for("/pkg")))


@pytest.mark.parametrize("status", [404, 410])
def test_not_found(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/pkg").respond_with_data("", status=status)
    with pytest.raises(PackageNotFound) as info:
        run(fetch(httpserver.url_for("/pkg")))
    assert info.value.package == "pkg"
    assert len(requests_to(httpserver, "/pkg")) == 1


def test_401_fails_at_once_without_leaking_the_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pkg").respond_with_data("no", status=401)
    with pytest.raises(RegistryUnavailable) as info:
        run(fetch(httpserver.url_for("/pkg"), auth="Bearer s3cret-token"))
    assert "401" in str(info.value)
    assert "s3cret" not in str(info.value)
    sent = requests_to(httpserver, "/pkg")
    assert len(sent) == 1
    assert sent[0].headers["Authorization"] == "Bearer s3cret-token"


def test_429_honours_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/pkg").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_request("/pkg").respond_with_json({"ok": 3})
    _resp, value, _client = run(fetch(httpserver.url_for("/pkg")))
    assert value == {"ok": 3}


def test_timeout_is_retried_then_unavailable(httpserver: HTTPServer) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(0.5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    options = dataclasses.replace(FAST, read_timeout=0.2, attempts=2)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="timed out"):
        run(fetch(httpserver.url_for("/slow"), options=options))
    assert time.monotonic() - started < 5
    time.sleep(1.0)  # let the single-threaded server finish the abandoned requests


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RegistryUnavailable, match="ConnectError"):
        run(fetch(f"http://127.0.0.1:{port}/pkg"))


def test_oversized_answer_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data("x" * 5000)
    options = dataclasses.replace(FAST, max_body=1000)
    with pytest.raises(ResponseTooLarge):
        run(fetch(httpserver.url_for("/big"), options=options))
    assert len(requests_to(httpserver, "/big")) == 1


def test_etag_revalidation_reuses_the_cached_body(
    httpserver: HTTPServer, memory_cache: MemoryCache
) -> None:
    url = httpserver.url_for("/pkg")
    httpserver.expect_request("/pkg", headers={"If-None-Match": '"v1"'}).respond_with_data(
        "", status=304, headers={"ETag": '"v1"'}
    )
    httpserver.expect_request("/pkg").respond_with_json(
        {"ok": 4}, headers={"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    )
    first, value, _ = run(fetch(url, memory_cache))
    assert value == {"ok": 4} and not first.not_modified
    assert memory_cache.entries[url].etag == '"v1"'
    assert len(memory_cache.store_calls) == 1

    second, value, client = run(fetch(url, memory_cache))
    assert value == {"ok": 4}
    assert second.not_modified and not second.stale
    assert second.fetched_at >= first.fetched_at
    assert client.requests == 1
    request = requests_to(httpserver, "/pkg")[-1]
    assert request.headers["If-Modified-Since"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert memory_cache.entries[url].fetched_at == second.fetched_at  # refreshed


def cached_entry(url: str, body: bytes, age: timedelta) -> CachedResponse:
    return CachedResponse(
        url=url, status=200, body=body, fetched_at=datetime.now(UTC) - age, etag='"e"'
    )


def test_offline_mode_never_sends_a_request(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/pkg")
    cache = MemoryCache()
    cache.entries[url] = cached_entry(url, b'{"cached": true}', timedelta(days=30))
    options = dataclasses.replace(FAST, offline=True)
    resp, value, client = run(fetch(url, cache, options))
    assert value == {"cached": True} and resp.not_modified
    assert client.requests == 0
    with pytest.raises(RegistryUnavailable, match="offline"):
        run(fetch(httpserver.url_for("/other"), cache, options))
    assert httpserver.log == []


def test_max_age_trusts_young_entries(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/pkg")
    httpserver.expect_request("/pkg").respond_with_json({"fresh": True})
    cache = MemoryCache()
    cache.entries[url] = cached_entry(url, b'{"cached": true}', timedelta(seconds=5))
    options = dataclasses.replace(FAST, max_age=60)
    _resp, value, _ = run(fetch(url, cache, options))
    assert value == {"cached": True}
    cache.entries[url] = cached_entry(url, b'{"cached": true}', timedelta(seconds=120))
    _resp, value, _ = run(fetch(url, cache, options))
    assert value == {"fresh": True}


def test_stale_copy_only_when_asked(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/pkg")
    httpserver.expect_request("/pkg").respond_with_data("down", status=502)
    cache = MemoryCache()
    cache.entries[url] = cached_entry(url, b'{"cached": true}', timedelta(days=2))
    with pytest.raises(RegistryUnavailable):
        run(fetch(url, cache))
    resp, value, client = run(fetch(url, cache, allow_stale=True))
    assert value == {"cached": True}
    assert resp.stale
    assert client.stale_urls == {url}


def test_new_entries_are_stored_in_one_batch(httpserver: HTTPServer) -> None:
    for name in ("a", "b", "c"):
        httpserver.expect_request(f"/{name}").respond_with_json({"name": name})
    cache = MemoryCache()

    async def scenario() -> None:
        client = RegistryClient(cache, FAST)
        try:
            client.preload(httpserver.url_for(f"/{n}") for n in "abc")
            for name in "abc":
                await client.get(
                    httpserver.url_for(f"/{name}"), registry=REGISTRY, what=name, decode=as_json
                )
            assert cache.store_calls == []
            assert client.flush() == 3
            assert client.flush() == 0
        finally:
            await client.aclose()

    run(scenario())
    assert len(cache.store_calls) == 1 and len(cache.store_calls[0]) == 3
    assert len(cache.load_calls) == 1  # one preload for all three


def test_cached_404_answers_offline(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("", status=404)
    cache = MemoryCache()
    url = httpserver.url_for("/gone")
    with pytest.raises(PackageNotFound):
        run(fetch(url, cache))
    with pytest.raises(PackageNotFound):
        run(fetch(url, cache, dataclasses.replace(FAST, offline=True)))


def derived_entry(url: str, body: bytes, etag: str = '"e"') -> CachedResponse:
    return CachedResponse(
        url=url,
        status=200,
        body=body,
        fetched_at=datetime.now(UTC) - timedelta(days=1),
        etag=etag,
        derived=b"parsed:" + body,
        derived_version="v1",
    )


def test_304_with_a_derived_blob_reads_no_body_and_only_touches(
    httpserver: HTTPServer,
) -> None:
    url = httpserver.url_for("/pkg")
    httpserver.expect_request("/pkg", headers={"If-None-Match": '"e"'}).respond_with_data(
        "", status=304
    )
    cache = MemoryCache()
    cache.entries[url] = derived_entry(url, b'{"cached": true}')

    def from_derived(resp: RegistryResponse) -> bytes:
        assert resp.derived is not None
        return resp.derived

    async def scenario() -> tuple[RegistryResponse, bytes, RegistryClient]:
        client = RegistryClient(cache, FAST)
        try:
            client.preload([url])
            resp, value = await client.get(url, registry=REGISTRY, what="p", decode=from_derived)
            return resp, value, client
        finally:
            client.flush()
            await client.aclose()

    resp, value, client = run(scenario())
    assert value == b'parsed:{"cached": true}'
    assert resp.not_modified and client.requests == 1
    assert len(cache.load_calls) == 1  # the preload only: the body was never read back
    assert cache.store_calls == []  # nothing rewritten...
    assert cache.touch_calls == [{url: resp.fetched_at}]  # ...only confirmed
    assert cache.entries[url].fetched_at == resp.fetched_at
    assert cache.entries[url].body == b'{"cached": true}'


def test_a_left_out_body_is_loaded_when_the_caller_reads_it(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/pkg")
    httpserver.expect_request("/pkg").respond_with_data("", status=304)
    cache = MemoryCache()
    cache.entries[url] = derived_entry(url, b'{"cached": true}')
    _resp, value, client = run(fetch(url, cache))
    assert value == {"cached": True}
    assert len(cache.load_calls) == 2  # preload without bodies, then this body
    assert client.lookup(url) == cache.entries[url]  # kept: no third load
    assert len(cache.load_calls) == 2


def test_a_left_out_body_that_changed_meanwhile_is_fetched_again(
    httpserver: HTTPServer,
) -> None:
    url = httpserver.url_for("/pkg")
    httpserver.expect_request("/pkg", headers={"If-None-Match": '"old"'}).respond_with_data(
        "", status=304
    )
    httpserver.expect_request("/pkg").respond_with_json({"fresh": True}, headers={"ETag": '"n"'})
    cache = MemoryCache()
    cache.entries[url] = derived_entry(url, b'{"old": true}', etag='"old"')

    async def scenario() -> object:
        client = RegistryClient(cache, FAST)
        try:
            client.preload([url])
            # another process replaces the entry between the preload and the decode
            cache.entries[url] = derived_entry(url, b'{"other": true}', etag='"other"')
            _resp, value = await client.get(url, registry=REGISTRY, what="pkg", decode=as_json)
            return value
        finally:
            client.flush()
            await client.aclose()

    assert run(scenario()) == {"fresh": True}
    assert cache.entries[url].etag == '"n"' and cache.entries[url].derived is None


def test_304s_and_error_answers_keep_the_connection() -> None:
    """httpcore drops a connection whose answer was not read to the end: unread 304s would make
    every revalidation pay for a new connection. (pytest-httpserver closes every connection,
    so this test runs its own keep-alive server.)"""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                if head.startswith(b"GET /gone "):
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
                else:
                    writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        cache = MemoryCache()
        for name in "abc":
            cache.entries[base + name] = cached_entry(base + name, b"{}", timedelta(days=1))
        client = RegistryClient(cache, dataclasses.replace(FAST, concurrency=1))
        try:
            for name in ("a", "gone", "b", "c"):
                with contextlib.suppress(PackageNotFound):
                    await client.get(base + name, registry=REGISTRY, what=name, decode=as_json)
        finally:
            await client.aclose()
            server.close()
            await server.wait_closed()

    run(scenario())
    assert connections == 1


def test_ssl_contexts_are_shared_until_a_ca_bundle_changes(tmp_path: Path) -> None:
    import certifi

    bundle = tmp_path / "corp-ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    first = ssl_context((str(bundle),))
    assert ssl_context((str(bundle),)) is first
    assert ssl_context(()) is not first
    bundle.write_bytes(bundle.read_bytes() + b"\n")
    assert ssl_context((str(bundle),)) is not first


@pytest.mark.parametrize("cached", [True, False])
def test_a_304_to_a_request_without_validators_is_garbage(
    httpserver: HTTPServer, cached: bool
) -> None:
    """Only a conditional request can be answered "not modified": a 304 to any other confirms
    nothing, and must not pass an old copy off as current."""
    url = httpserver.url_for("/pkg")
    httpserver.expect_request("/pkg").respond_with_data("", status=304)
    cache = MemoryCache()
    if cached:  # a copy without validators: nothing to send If-None-Match with
        old = dataclasses.replace(cached_entry(url, b'{"old": true}', timedelta(days=1)), etag=None)
        cache.entries[url] = old
    with pytest.raises(RegistryUnavailable, match="304") as info:
        run(fetch(url, cache))
    assert info.value.registry == REGISTRY
    assert len(requests_to(httpserver, "/pkg")) == 3
    assert cache.touch_calls == [] and cache.store_calls == []
