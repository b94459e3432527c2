"""A read-only npm registry for the benchmark: uvicorn + Starlette serving pre-built packuments.

Run by ``check_speed.py`` as its own process::

    python benchmarks/_registry.py DOCS_DIR PORT [LATENCY_MS]

``DOCS_DIR`` holds ``<name>.json`` (scoped: ``@scope/<name>.json``) and, beside each, the same
bytes gzipped (``<name>.json.gz``). Every body is loaded into memory at start-up, so a request
costs no disk read, JSON work or compression: the server is kept out of the measurement.

Like the public registry it sends a strong ``ETag``, answers ``If-None-Match`` with 304 and
serves ``Content-Encoding: gzip`` to clients that accept it. Extra endpoints: ``/-/ping``
(readiness), ``/-/bench/stats`` (request counts by status since the last ``?reset=1``) and
``/-/bench/etags`` (every document's ETag, for the bare revalidation floor).

Tarballs (``<name>/-/<basename>-<version>.tgz``) are the synthetic ones of ``_tarballs.py``,
rebuilt on request (the packuments publish their digests) and counted as ``tgz``.

``LATENCY_MS`` (default 0) delays every packument and tarball answer by that many milliseconds
(an ``asyncio.sleep``, no CPU): a registry that far away, one round trip per request on a
kept-alive connection. Loopback answers in microseconds, so without it a run is bound by the CPU
that client and server share, which is not what a user's check against a remote registry is."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import uvicorn
from _tarballs import parse_tarball_path, tarball
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass(frozen=True, slots=True)
class Document:
    plain: bytes
    gzipped: bytes
    etag: str


def load_documents(root: Path) -> dict[str, Document]:
    docs: dict[str, Document] = {}
    for path in sorted(root.rglob("*.json")):
        name = path.relative_to(root).as_posix()[: -len(".json")]
        plain = path.read_bytes()
        gzipped = path.with_name(path.name + ".gz").read_bytes()
        docs[name] = Document(plain, gzipped, f'"{hashlib.sha1(plain).hexdigest()}"')
    return docs


def _matches(if_none_match: str, etag: str) -> bool:
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def make_app(docs: dict[str, Document], latency_s: float = 0.0) -> Starlette:
    counts: Counter[str] = Counter()

    async def packument(request: Request) -> Response:
        if latency_s:
            await asyncio.sleep(latency_s)
        # raw_path keeps npm's ``@scope%2fname`` form; both it and ``@scope/name`` resolve.
        raw = request.scope.get("raw_path") or request.url.path.encode()
        name = unquote(raw.decode("latin-1").split("?", 1)[0].lstrip("/"))
        if name.endswith(".tgz"):
            return tgz(name)
        doc = docs.get(name)
        if doc is None:
            counts["404"] += 1
            return JSONResponse({"error": "not found"}, status_code=404)
        headers = {"ETag": doc.etag, "Cache-Control": "max-age=300", "Vary": "Accept-Encoding"}
        inm = request.headers.get("if-none-match")
        if inm and _matches(inm, doc.etag):
            counts["304"] += 1
            return Response(status_code=304, headers=headers)
        counts["200"] += 1
        if "gzip" in request.headers.get("accept-encoding", ""):
            counts["bytes"] += len(doc.gzipped)
            headers["Content-Encoding"] = "gzip"
            return Response(doc.gzipped, media_type="application/json", headers=headers)
        counts["bytes"] += len(doc.plain)
        return Response(doc.plain, media_type="application/json", headers=headers)

    def tgz(path: str) -> Response:
        parsed = parse_tarball_path(path)
        if parsed is None or parsed[0] not in docs:
            counts["404"] += 1
            return JSONResponse({"error": "not found"}, status_code=404)
        data = tarball(*parsed)
        counts["tgz"] += 1
        counts["bytes"] += len(data)
        return Response(data, media_type="application/octet-stream")

    async def ping(request: Request) -> Response:
        return JSONResponse({})

    async def stats(request: Request) -> Response:
        body = dict(counts)
        if request.query_params.get("reset"):
            counts.clear()
        return JSONResponse(body)

    async def etags(request: Request) -> Response:
        return JSONResponse({name: doc.etag for name, doc in docs.items()})

    return Starlette(
        routes=[
            Route("/-/ping", ping),
            Route("/-/bench/stats", stats),
            Route("/-/bench/etags", etags),
            Route("/{name:path}", packument),
        ]
    )


def main() -> None:
    root, port = Path(sys.argv[1]), int(sys.argv[2])
    latency_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    app = make_app(load_documents(root), latency_ms / 1000)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=60,
    )


if __name__ == "__main__":
    main()
