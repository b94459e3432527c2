"""The floor: fetch every packument with httpx at a given concurrency, and nothing else.

Run by ``check_speed.py`` as its own process (so its wall time, like ``custody``'s, includes
starting Python)::

    python benchmarks/_download.py REGISTRY_URL NAMES_FILE CONCURRENCY get|revalidate \
        one|small|direct

``get`` downloads and JSON-parses (orjson) every document; ``revalidate`` sends each document's
``If-None-Match`` (ETags read from the benchmark registry first, untimed) and expects 304s.
``one``: httpx's default transport, one connection pool of CONCURRENCY connections; ``small``:
the same client over the pools custody's client uses (several small pools, see
``custody.registries.transport``); ``direct``: custody's own ``Transport``, which sends requests
straight to those pools without ``httpx.AsyncClient`` (it then inflates the gzip body itself).
Prints one JSON line: ``{"seconds": <time spent fetching>, "requests": n, "bytes": n}``."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote

import httpx
import orjson


def packument_url(registry: str, name: str) -> str:
    return registry + quote(name, safe="@/").replace("/", "%2f")


Get = Callable[[str, dict[str, str]], Awaitable[tuple[int, bytes]]]
"""GET a URL with these headers: (status, body inflated)."""


@contextlib.asynccontextmanager
async def getter(kind: str, concurrency: int) -> AsyncIterator[Get]:
    """``one`` and ``small``: an ``httpx.AsyncClient`` (it inflates gzip itself); ``direct``:
    custody's ``Transport``, whose bodies come back as sent."""
    if kind == "direct":
        from custody.registries.gzipped import gunzip
        from custody.registries.transport import Transport

        direct = Transport(
            concurrency=concurrency, connect_timeout=60.0, read_timeout=60.0, ca_files=()
        )

        async def get_direct(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
            status, answered, body, _url = await direct.get(url, headers, 2**30)
            if "gzip" in answered.get("content-encoding", ""):
                body = gunzip(body, 2**30)
            return status, body

        try:
            yield get_direct
        finally:
            await direct.aclose()
        return
    pools = None
    if kind == "small":
        from custody.registries.transport import SmallPools

        pools = SmallPools(concurrency, ssl.create_default_context)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        limits=limits, timeout=60.0, trust_env=False, transport=pools
    ) as client:

        async def get_with_client(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
            response = await client.get(url, headers=headers)
            return response.status_code, response.content

        yield get_with_client


async def run(
    registry: str, names: list[str], concurrency: int, mode: str, kind: str
) -> dict[str, float]:
    etags: dict[str, str] = {}
    if mode == "revalidate":
        async with httpx.AsyncClient(trust_env=False) as client:
            etags = (await client.get(registry + "-/bench/etags")).json()
    semaphore = asyncio.Semaphore(concurrency)
    pending = iter(names)
    total_bytes = 0
    requests = 0
    async with getter(kind, concurrency) as get:

        async def worker() -> None:
            nonlocal total_bytes, requests
            for name in pending:
                headers = {"Accept": "application/json"}
                if mode == "revalidate":
                    headers["If-None-Match"] = etags[name]
                async with semaphore:
                    status, body = await get(packument_url(registry, name), headers)
                requests += 1
                expected = 304 if mode == "revalidate" else 200
                if status != expected:
                    raise SystemExit(f"{name}: expected {expected}, got {status}")
                if mode == "get":
                    total_bytes += len(body)
                    orjson.loads(body)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(64, len(names)))))
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "requests": requests, "bytes": total_bytes}


def main() -> None:
    registry, names_file, concurrency, mode, pools = sys.argv[1:6]
    with open(names_file, encoding="utf-8") as fh:
        names = [n for n in fh.read().splitlines() if n]
    result = asyncio.run(run(registry, names, int(concurrency), mode, pools))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
