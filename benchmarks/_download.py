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
import ssl
import sys
import time
from urllib.parse import quote

import httpx
import orjson


def packument_url(registry: str, name: str) -> str:
    return registry + quote(name, safe="@/").replace("/", "%2f")


def transport(kind: str, concurrency: int) -> httpx.AsyncBaseTransport | None:
    if kind == "one":
        return None
    from custody.registries.transport import SmallPools

    return SmallPools(concurrency, ssl.create_default_context())


async def run(
    registry: str, names: list[str], concurrency: int, mode: str, pools: str
) -> dict[str, float]:
    if pools == "direct":
        return await run_direct(registry, names, concurrency, mode)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        limits=limits, timeout=60.0, trust_env=False, transport=transport(pools, concurrency)
    ) as client:
        etags: dict[str, str] = {}
        if mode == "revalidate":
            etags = (await client.get(registry + "-/bench/etags")).json()
        semaphore = asyncio.Semaphore(concurrency)
        pending = iter(names)
        total_bytes = 0
        requests = 0

        async def worker() -> None:
            nonlocal total_bytes, requests
            for name in pending:
                headers = {"Accept": "application/json"}
                if mode == "revalidate":
                    headers["If-None-Match"] = etags[name]
                async with semaphore:
                    response = await client.get(packument_url(registry, name), headers=headers)
                requests += 1
                if mode == "revalidate":
                    if response.status_code != 304:
                        raise SystemExit(f"{name}: expected 304, got {response.status_code}")
                    continue
                response.raise_for_status()
                total_bytes += len(response.content)
                orjson.loads(response.content)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(64, len(names)))))
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "requests": requests, "bytes": total_bytes}


async def run_direct(
    registry: str, names: list[str], concurrency: int, mode: str
) -> dict[str, float]:
    from custody.registries.gzipped import gunzip
    from custody.registries.transport import Transport

    etags: dict[str, str] = {}
    if mode == "revalidate":
        async with httpx.AsyncClient(trust_env=False) as client:
            etags = (await client.get(registry + "-/bench/etags")).json()
    transport = Transport(
        concurrency=concurrency, connect_timeout=60.0, read_timeout=60.0, ca_files=()
    )
    semaphore = asyncio.Semaphore(concurrency)
    pending = iter(names)
    total_bytes = 0
    requests = 0

    async def worker() -> None:
        nonlocal total_bytes, requests
        for name in pending:
            headers = {"Accept": "application/json"}
            if mode == "revalidate":
                headers["If-None-Match"] = etags[name]
            async with semaphore:
                status, answered, body, _url = await transport.get(
                    packument_url(registry, name), headers, 2**30
                )
            requests += 1
            if mode == "revalidate":
                if status != 304:
                    raise SystemExit(f"{name}: expected 304, got {status}")
                continue
            if status != 200:
                raise SystemExit(f"{name}: HTTP {status}")
            if "gzip" in answered.get("content-encoding", ""):
                body = gunzip(body, 2**30)
            total_bytes += len(body)
            orjson.loads(body)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(64, len(names)))))
        seconds = time.perf_counter() - start
    finally:
        await transport.aclose()
    return {"seconds": seconds, "requests": requests, "bytes": total_bytes}


def main() -> None:
    registry, names_file, concurrency, mode, pools = sys.argv[1:6]
    with open(names_file, encoding="utf-8") as fh:
        names = [n for n in fh.read().splitlines() if n]
    result = asyncio.run(run(registry, names, int(concurrency), mode, pools))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
