"""The transport's direct path: requests go to the connection pools without ``httpx.AsyncClient``,
so following redirects and choosing the proxy path are Custody's own work and tested here."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest
from pytest_httpserver import HTTPServer

from custody.errors import RegistryUnavailable
from custody.registries.transport import (
    SmallPools,
    Transport,
    _is_https_upgrade,
    proxies_configured,
)

from .conftest import run
from .test_http import fetch, requests_to

TOKEN = "Bearer s3cret-token"


@pytest.fixture
def other_server() -> Iterator[HTTPServer]:
    """A second registry on another port: another origin."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def transport() -> Transport:
    return Transport(concurrency=2, connect_timeout=2.0, read_timeout=2.0, ca_files=())


def test_requests_skip_the_httpx_client_unless_a_proxy_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert transport()._direct is not None
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    assert transport()._direct is None  # httpx applies the proxy and NO_PROXY
    mock = httpx.MockTransport(lambda _request: httpx.Response(200))
    monkeypatch.delenv("https_proxy")
    assert (
        Transport(
            concurrency=2, connect_timeout=1, read_timeout=1, ca_files=(), transport=mock
        )._direct
        is None
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"NO_PROXY": "localhost", "PATH": "/bin"}, False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, True),
        ({"all_proxy": "socks5://proxy:1080"}, True),
        ({"Http_Proxy": "http://proxy:3128"}, True),
        ({"HTTP_PROXY": "  "}, False),
    ],
)
def test_which_variables_mean_a_proxy(environ: dict[str, str], expected: bool) -> None:
    assert proxies_configured(environ) is expected


def test_a_redirect_on_the_same_origin_keeps_the_credentials(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_json({"moved": True})
    resp, value, _client = run(fetch(httpserver.url_for("/old"), auth=TOKEN))
    assert value == {"moved": True}
    assert resp.final_url == httpserver.url_for("/new")
    assert requests_to(httpserver, "/new")[0].headers["Authorization"] == TOKEN


def test_a_redirect_to_another_origin_drops_the_credentials(
    httpserver: HTTPServer, other_server: HTTPServer
) -> None:
    other_server.expect_request("/pkg").respond_with_json({"elsewhere": True})
    httpserver.expect_request("/pkg").respond_with_data(
        "", status=302, headers={"Location": other_server.url_for("/pkg")}
    )
    resp, value, _client = run(fetch(httpserver.url_for("/pkg"), auth=TOKEN))
    assert value == {"elsewhere": True}
    assert resp.final_url == other_server.url_for("/pkg")
    assert requests_to(httpserver, "/pkg")[0].headers["Authorization"] == TOKEN
    assert "Authorization" not in requests_to(other_server, "/pkg")[0].headers


def test_a_redirect_loop_is_an_unavailable_registry(httpserver: HTTPServer) -> None:
    """Not an unhandled ``TooManyRedirects``: exit code 3, naming the registry."""
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    with pytest.raises(RegistryUnavailable, match="redirects"):
        run(fetch(httpserver.url_for("/loop")))


def test_a_redirect_to_another_scheme_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pkg").respond_with_data(
        "", status=302, headers={"Location": "ftp://127.0.0.1/pkg"}
    )
    with pytest.raises(RegistryUnavailable, match="ftp"):
        run(fetch(httpserver.url_for("/pkg")))


def test_the_direct_path_sends_what_the_client_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pkg").respond_with_json({})

    async def get() -> tuple[int, str]:
        t = transport()
        try:
            status, _headers, _body, final = await t.get(
                httpserver.url_for("/pkg"), {"Accept": "application/json"}, 10_000
            )
            return status, final
        finally:
            await t.aclose()

    assert asyncio.run(get()) == (200, httpserver.url_for("/pkg"))
    sent = requests_to(httpserver, "/pkg")[0].headers
    assert sent["Accept"] == "application/json"
    assert sent["Accept-Encoding"] == "gzip"
    assert sent["User-Agent"].startswith("custody/")
    assert sent["Host"] == httpx.URL(httpserver.url_for("/")).netloc.decode()


def test_an_https_upgrade_on_the_same_host_keeps_the_credentials() -> None:
    assert _is_https_upgrade(httpx.URL("http://r.test/a"), httpx.URL("https://r.test/a"))
    assert not _is_https_upgrade(httpx.URL("http://r.test/a"), httpx.URL("https://x.test/a"))
    assert not _is_https_upgrade(httpx.URL("http://r.test:8080/"), httpx.URL("https://r.test/"))
    assert not _is_https_upgrade(httpx.URL("https://r.test/"), httpx.URL("http://r.test/"))


def test_plain_http_never_waits_for_the_trust_store(httpserver: HTTPServer) -> None:
    """The TLS context is asked for on the first ``https`` request only, once."""
    httpserver.expect_request("/x").respond_with_data("ok")
    asked: list[int] = []

    def verify() -> ssl.SSLContext:
        asked.append(1)
        return ssl.create_default_context()

    async def scenario() -> None:
        pools = SmallPools(4, verify)
        try:
            for _ in range(3):
                response = await pools.handle_async_request(
                    httpx.Request("GET", httpserver.url_for("/x"))
                )
                await response.aread()
                await response.aclose()
            assert asked == []
            closed = f"https://127.0.0.1:{free_port()}/x"  # nothing listens: no TLS happens
            for _ in range(2):
                with pytest.raises(httpx.ConnectError):
                    await pools.handle_async_request(httpx.Request("GET", closed))
            assert asked == [1]
        finally:
            await pools.aclose()

    run(scenario())


async def _redirect_to_garbage(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]
) -> None:
    """Answer every request with a redirect whose ``Location`` cannot be parsed (werkzeug
    refuses to send one)."""
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            seen.append(head)
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n"
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


@pytest.mark.parametrize("path", ["direct", "client"])
def test_an_unparseable_redirect_is_an_unavailable_registry(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Retried, then exit 3 naming the registry, on the direct path as through httpx's client
    (which a proxy variable selects; ``NO_PROXY`` keeps loopback requests off the proxy)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    if path == "client":
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    seen: list[bytes] = []

    async def scenario() -> None:
        server = await asyncio.start_server(
            lambda r, w: _redirect_to_garbage(r, w, seen), "127.0.0.1", 0
        )
        try:
            await fetch(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/pkg")
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises(RegistryUnavailable, match="Invalid URL in location header") as info:
        run(scenario())
    assert info.value.registry == "http://registry.example/"
    assert len(seen) == 3
