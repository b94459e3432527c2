"""The ASGI application: routes, request limits, metrics, health.

URL layout (see docs/proxy.md):

- ``/npm/...``: an npm registry (``npm config set registry http://HOST:PORT/npm/``)
- ``/pypi/simple/...``: a PEP 503/691 index (``pip install --index-url
  http://HOST:PORT/pypi/simple/``), files under ``/pypi/files/...``
- ``/-/custody/...``: the admin API (bearer token)
- ``/healthz``, ``/metrics``"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from custody.proxy import admin, npm_routes, pypi_routes
from custody.proxy.config import ProxyConfig
from custody.proxy.state import ProxyState, state_of
from custody.proxy.web import json_response

log = logging.getLogger("custody.proxy")

MAX_TARGET = 4096  # bytes of path and query
MAX_HEADERS = 16 * 1024  # bytes of all request headers
ALL_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _plain(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message}) + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Pure ASGI middleware: refuse what no route should see (oversized targets and bodies,
    control characters), and count every answer by route template, method and status."""

    def __init__(self, app: ASGIApp, state: ProxyState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = [500]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        refused = self._refuse(scope)
        try:
            if refused is not None:
                scope["custody.route"] = "refused"
                status_holder[0] = refused[0]
                await _plain(send, *refused)
            else:
                try:
                    await self.app(scope, self._limited(scope, receive), counting_send)
                except _BodyTooLarge:
                    status_holder[0] = 413
                    await _plain(send, 413, "request body too large")
        finally:
            route = scope.get("custody.route", "other")
            metrics = self.state.metrics
            metrics.requests.labels(route, scope.get("method", "?"), str(status_holder[0])).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - started)

    def _refuse(self, scope: Scope) -> tuple[int, str] | None:
        raw: bytes = scope.get("raw_path") or b""
        query: bytes = scope.get("query_string") or b""
        if len(raw) + len(query) > MAX_TARGET:
            return 414, f"request target longer than {MAX_TARGET} bytes"
        headers = scope.get("headers") or []
        if sum(len(k) + len(v) for k, v in headers) > MAX_HEADERS:
            return 431, f"request headers larger than {MAX_HEADERS} bytes"
        path: str = scope.get("path", "")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            return 400, "control characters in the path"
        if not path.startswith("/"):
            return 400, "the request target must be a path"
        length = dict(headers).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "invalid Content-Length"
            if int(length) > self.state.config.max_body_bytes:
                return 413, f"request body larger than {self.state.config.max_body_bytes} bytes"
        return None

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.state.config.max_body_bytes
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        return limited


class _BodyTooLarge(Exception):
    pass


async def health(request: Request) -> Response:
    request.scope["custody.route"] = "healthz"
    state = state_of(request)
    trust = state.trust
    problems = []
    if state.sync_error:
        problems.append(f"ledger: {state.sync_error}")
    if trust.error:
        problems.append(f"trust file: {trust.error}")
    body = {
        "status": "ok" if not problems else "degraded",
        "problems": problems,
        "trust_file": str(trust.path) if trust.path else None,
        "trust_version": trust.current.version,
        "ledger": state.ledger.url_for_display,
        "reviews": state.reviews.last_id,
        "packages_in_memory": state.store.packages(),
        "upstreams": {
            "npm": state.config.npm.registry if state.config.npm else None,
            "pypi": state.config.pypi.index_url if state.config.pypi else None,
        },
        "uptime_s": round(time.time() - state.started, 1),
    }
    return json_response(503 if state.sync_error else 200, body)


async def metrics(request: Request) -> Response:
    request.scope["custody.route"] = "metrics"
    state = state_of(request)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def root(request: Request) -> Response:
    request.scope["custody.route"] = "root"
    return json_response(
        200,
        {
            "custody": "registry firewall",
            "npm": "/npm/",
            "pypi": "/pypi/simple/",
            "admin": "/-/custody/holds",
            "health": "/healthz",
            "metrics": "/metrics",
        },
    )


async def pypi_simple_redirect(request: Request) -> Response:
    return RedirectResponse(str(request.scope.get("root_path", "")) + "/pypi/simple/", 301)


def create_app(config: ProxyConfig, state: ProxyState | None = None) -> Starlette:
    """The proxy as an ASGI app. ``state`` defaults to ``ProxyState.open(config)`` (opens the
    ledger, loads the trust file: raises ``InputError`` when either is unusable)."""
    proxy = state or ProxyState.open(config)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await proxy.start()
        try:
            yield
        finally:
            await proxy.close()

    routes = [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/healthz", health, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/-/custody/holds", admin.holds, methods=["GET"]),
        Route("/-/custody/reviews", admin.reviews, methods=["GET"]),
        Route("/-/custody/approve", admin.approve, methods=["POST"]),
        Route("/-/custody/deny", admin.deny, methods=["POST"]),
        Route("/npm", npm_routes.dispatch, methods=ALL_METHODS),
        Route("/npm/{rest:path}", npm_routes.dispatch, methods=ALL_METHODS),
        Route("/pypi/simple", pypi_simple_redirect, methods=["GET", "HEAD"]),
        Route("/pypi/simple/", pypi_routes.index, methods=["GET", "HEAD"]),
        Route("/pypi/simple/{name}", pypi_routes.project, methods=["GET", "HEAD"]),
        Route("/pypi/simple/{name}/", pypi_routes.project, methods=["GET", "HEAD"]),
        Route("/pypi/files/{name}/{filename}", pypi_routes.file, methods=["GET", "HEAD"]),
        Route("/pypi", pypi_routes.upload, methods=["POST", "PUT"]),
        Route("/pypi/", pypi_routes.upload, methods=["POST", "PUT"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(Guard, state=proxy)])
    app.state.proxy = proxy
    return app
