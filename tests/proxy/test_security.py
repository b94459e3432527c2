"""Crafted names and paths are refused, and the proxy contacts nothing but its upstream: a
canary server named in every crafted request must never be asked anything."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer

from tests.proxy.helpers import Proxy, running_proxy
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = pytest.mark.registry

KIT = "cp-secure-kit"


@pytest.fixture(scope="module")
def proxy(verdaccio: Verdaccio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    publish_npm(verdaccio, KIT, "1.0.0", publisher="alice", maintainers=["alice"])
    verdaccio.set_times(KIT, {"1.0.0": "2024-01-01T00:00:00.000Z"})
    with running_proxy(tmp_path_factory.mktemp("proxy"), npm=verdaccio.url) as running:
        yield running


def raw(
    proxy: Proxy, target: str, *, host: str | None = None, extra: str = ""
) -> tuple[int, bytes]:
    """Send a request line exactly as written (no client normalises it) and read the status."""
    port = int(proxy.url.rsplit(":", 1)[1])
    head = f"GET {target} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n{extra}"
    head += "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


@pytest.mark.parametrize(
    "target",
    [
        "/npm/..%2f..%2fetc%2fpasswd",
        "/npm/%2e%2e/%2e%2e/etc/passwd",
        "/npm/@scope/../x",
        "/npm/@scope%2f..%2fx",
        "/npm/@scope/x/../../y",
        "/npm/x%00y",
        "/npm/x%0d%0aSet-Cookie:%20a=b",
        "/npm/.hidden",
        "/npm/_private",
        "/npm/a%252fb",
        "/npm/cp-secure-kit/-/..%2f..%2fcustody.toml",
        "/npm/cp-secure-kit/-/x.tgz%00.json",
        "/npm/cp-secure-kit/-/%2e%2e",
        "/npm/cp-secure-kit/..%2f1.0.0",
        "/pypi/simple/..%2f..%2fetc/",
        "/pypi/simple/%2e%2e/",
        "/pypi/simple/-bad-/",
        "/pypi/files/cp-secure-kit/..%2f..%2fsecret",
        "/pypi/files/cp-secure-kit/%2e%2e",
    ],
)
def test_traversal_and_invalid_names_are_refused(proxy: Proxy, target: str) -> None:
    status, _body = raw(proxy, target)
    assert status in (400, 404), target


def test_absolute_urls_never_reach_another_host(proxy: Proxy, httpserver: HTTPServer) -> None:
    canary = httpserver.url_for("/")
    host = canary.split("://", 1)[1].rstrip("/")
    for target in (
        f"{canary}npm/{KIT}",
        f"http://{host}/npm/{KIT}",
        f"/npm/http:%2f%2f{host}%2fx",
        f"/npm/{KIT}/-/http:%2f%2f{host}%2fx.tgz",
        f"/npm//{host}/x",
        f"/pypi/simple/http:%2f%2f{host}/",
    ):
        status, _ = raw(proxy, target)
        assert status in (400, 404), target
    # a Host header naming the canary only changes nothing, or is refused
    status, body = raw(proxy, f"/npm/{KIT}", host=host)
    assert status == 200 and host.encode() in body  # links follow the Host the client used
    status, _ = raw(proxy, f"/npm/{KIT}", host='evil"><script>')
    assert status == 400
    unknown = httpx.get(f"{proxy.npm}{KIT}/-/other-9.9.9.tgz", trust_env=False)
    assert unknown.status_code == 404
    assert len(httpserver.log) == 0


def test_oversized_requests_are_refused(proxy: Proxy) -> None:
    status, _ = raw(proxy, "/npm/" + "a" * 5000)
    assert status == 414
    status, _ = raw(proxy, "/npm/x", extra="X-Big: " + "b" * 20000 + "\r\n")
    assert status == 431
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"PUT /npm/{KIT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900000000\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 413")
    too_long_name = httpx.get(f"{proxy.npm}{'n' * 215}", trust_env=False)
    assert too_long_name.status_code == 400


def test_admin_api_needs_the_token(proxy: Proxy, tmp_path: Path, verdaccio: Verdaccio) -> None:
    with proxy.http() as client:
        body = {"package": f"npm:{KIT}", "version": "1.0.0", "reason": "x", "by": "y"}
        assert client.post("/-/custody/approve", json=body).status_code == 401
        bad = {"Authorization": "Bearer wrong-token-wrong-token"}
        assert client.post("/-/custody/approve", json=body, headers=bad).status_code == 401
        good = {"Authorization": "Bearer test-admin-token-0123456789"}
        invalid = {**body, "package": "npm:../../etc"}
        assert client.post("/-/custody/approve", json=invalid, headers=good).status_code == 400
        assert client.post("/-/custody/approve", content=b"[1]", headers=good).status_code == 400
        empty = {**body, "reason": "  "}
        assert client.post("/-/custody/approve", json=empty, headers=good).status_code == 400
    with running_proxy(tmp_path, npm=verdaccio.url, admin_token=None) as off, off.http() as c:
        response = c.get("/-/custody/holds", headers=good)
        assert response.status_code == 403 and "disabled" in response.json()["error"]
