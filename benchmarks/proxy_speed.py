"""How fast is ``custody proxy`` on cached metadata and tarballs, next to Verdaccio?

    .venv/bin/python benchmarks/proxy_speed.py [--duration 5] [--connections 16] [--versions 60]

Everything on loopback, bounded in time, in one run:

1. **upstream**: a Verdaccio (from ``.tools/``) holding ``bench-kit``: ``--versions`` releases
   published by alice (backdated past the cooldown), each with a 48 KB tarball of random bytes
   (about the median npm tarball); the packument is about 1.5 KB per version.
2. **verdaccio proxy**: a second Verdaccio whose uplink is the first (``cache: true``, default
   ``maxage``): what teams run today as a caching npm proxy.
3. **custody proxy**: ``custody proxy`` in front of the first Verdaccio (SQLite ledger, a trust
   file trusting alice, ``--max-age 60``), every version judged and allowed.

Each target is warmed (one request per URL), then loaded with ``wrk`` (Debian package ``wrk``;
without it, a small httpx async load generator) for ``--duration`` seconds per row: the full
packument (``Accept: application/json``), the abbreviated one npm installs from
(``application/vnd.npm.install-v1+json``), and a tarball; once with ``--connections`` open
connections (throughput) and once with one (latency without queueing). "added p50" is the
p50 with one connection minus the upstream's own. A measurement, not a test: nothing fails when
a target is missed. The machine's two CPUs are shared by the load generator and the server,
so compare rows within one run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work" / "proxy_speed"
sys.path.insert(0, str(REPO))

from tests.support.publish import publish_npm  # noqa: E402
from tests.support.servers import (  # noqa: E402
    VERDACCIO_CONFIG,
    ServerProcess,
    Verdaccio,
    start_server,
    start_verdaccio,
)

NAME = "bench-kit"
ABBREVIATED = "application/vnd.npm.install-v1+json"
TRUST = f'[[trusted."npm:{NAME}"]]\ncustodian = "npm:user/alice"\n'
CACHING_PROXY_CONFIG = VERDACCIO_CONFIG.replace(
    "uplinks: {{}}",
    "uplinks:\n  upstream:\n    url: {upstream}\n    cache: true\n    maxage: 10m",
).replace("    unpublish: $authenticated\n", "    unpublish: $authenticated\n    proxy: upstream\n")


@dataclass
class Row:
    target: str
    what: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# --------------------------------------------------------------------------- servers


def start_caching_verdaccio(root: Path, upstream: str) -> Iterator[str]:
    from tests.support.servers import VERDACCIO_BIN, require_tool, running

    binary = require_tool(VERDACCIO_BIN)
    config = root / "config.yaml"
    config.write_text(
        CACHING_PROXY_CONFIG.format(
            storage=root / "storage", htpasswd=root / "htpasswd", upstream=upstream
        )
    )

    def argv(port: int) -> list[str | Path]:
        return [binary, "--config", config, "--listen", f"127.0.0.1:{port}"]

    proc, port = start_server("verdaccio-proxy", argv, cwd=root, ready_path="/-/ping")
    with running(proc):
        yield f"http://127.0.0.1:{port}/"


def start_custody(root: Path, upstream: str) -> tuple[ServerProcess, str]:
    (root / "custody.toml").write_text(TRUST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTODY_", "NPM_CONFIG_"))}
    env["CUSTODY_CACHE_DIR"] = str(root / "cache")

    def argv(port: int) -> list[str | Path]:
        return [
            sys.executable, "-m", "custody", "proxy", "--listen", f"127.0.0.1:{port}",
            "--npm-upstream", upstream, "--no-pypi", "--trust-file", root / "custody.toml",
            "--database", f"sqlite:///{root / 'ledger.sqlite3'}", "--max-age", "60",
            "--cache-dir", root / "artifacts", "--audit-log", root / "audit.jsonl",
        ]  # fmt: skip

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        proc, port = start_server("custody-proxy", argv, cwd=root, ready_path="/healthz")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return proc, f"http://127.0.0.1:{port}/npm/"


def publish(verdaccio: Verdaccio, versions: int) -> None:
    times = {}
    for i in range(versions):
        version = f"1.{i // 10}.{i % 10}"
        files = {"index.js": b"module.exports = 1;\n", "blob.bin": os.urandom(48 * 1024)}
        publish_npm(verdaccio, NAME, version, publisher="alice", maintainers=["alice"], files=files)
        times[version] = f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z"
    verdaccio.set_times(NAME, times)


# --------------------------------------------------------------------------- load


def wrk(url: str, accept: str, connections: int, duration: float) -> Row:
    argv = [
        "wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{duration:g}s",
        "-H", f"Accept: {accept}", "-H", "Accept-Encoding: identity", url,
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    count = int(errors.group(1)) if errors else 0
    if socket_errors:
        count += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return Row("", "", connections, float(rps.group(1)) if rps else 0.0, ms("50"), ms("99"), count)


async def _httpx_load(url: str, accept: str, connections: int, duration: float) -> Row:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(url, headers={"Accept": accept})
                latencies.append(time.perf_counter() - started)
                errors += response.status_code >= 400

        await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 2 else [0.0] * 99
    return Row("", "", connections, len(latencies) / duration, q[49] * 1e3, q[98] * 1e3, errors)


def load(url: str, accept: str, connections: int, duration: float) -> Row:
    if shutil.which("wrk"):
        return wrk(url, accept, connections, duration)
    return asyncio.run(_httpx_load(url, accept, connections, duration))


# --------------------------------------------------------------------------- report


def print_table(rows: list[Row], targets: list[str], connections: int) -> None:
    print()
    head = ["what", "target", f"req/s (c={connections})", "p50 ms", "p99 ms"]
    head += ["p50 ms (c=1)", "p99 ms (c=1)", "added p50 (c=1)"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(head) - 2))
    for what in dict.fromkeys(r.what for r in rows):
        mine = [r for r in rows if r.what == what]
        base = next(r for r in mine if r.connections == 1 and r.target == targets[0])
        for label in targets:
            many = next(r for r in mine if r.target == label and r.connections != 1)
            one = next(r for r in mine if r.target == label and r.connections == 1)
            added = "-" if label == targets[0] else f"{one.p50_ms - base.p50_ms:+.2f}"
            cells = [what, label, f"{many.rps:.0f}", f"{many.p50_ms:.2f}", f"{many.p99_ms:.2f}"]
            cells += [f"{one.p50_ms:.2f}", f"{one.p99_ms:.2f}", added]
            print("| " + " | ".join(cells) + " |")


def print_sync_cost(sqlite_path: Path, postgres: str | None) -> None:
    """What reading the approvals marker would add to a request if it were read per request
    (the proxy polls it every --sync-interval instead)."""
    import uuid

    from custody.ledger import open_ledger

    targets: list[tuple[str, str, str | None]] = [("sqlite", f"sqlite:///{sqlite_path}", None)]
    if postgres:
        targets.append(("postgresql", postgres, f"custody_bench_{uuid.uuid4().hex[:8]}"))
    for label, url, schema in targets:
        ledger = open_ledger(url, schema=schema)
        try:
            for _ in range(50):
                ledger.proxy_state_marker()
            started = time.perf_counter()
            for _ in range(1000):
                ledger.proxy_state_marker()
            per = (time.perf_counter() - started) / 1000 * 1e6
        finally:
            ledger.close()
            if schema:
                import psycopg

                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        print(f"approvals marker query ({label}): {per:.0f} us per read")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per row")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--versions", type=int, default=60)
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/test",
        help="also time the approvals marker query on this PostgreSQL (a scratch schema)",
    )
    args = parser.parse_args()
    if args.duration > 60 or args.connections > 256:
        parser.error("keep it bounded: --duration <= 60, --connections <= 256")
    shutil.rmtree(WORK, ignore_errors=True)
    for part in ("upstream", "caching", "custody"):
        (WORK / part).mkdir(parents=True)
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; "
          f"load generator: {'wrk' if shutil.which('wrk') else 'httpx'}", flush=True)  # fmt: skip

    with contextlib.ExitStack() as stack:
        upstream_gen = start_verdaccio(WORK / "upstream")
        upstream = next(upstream_gen)
        stack.callback(upstream_gen.close)
        publish(upstream, args.versions)
        caching_gen = start_caching_verdaccio(WORK / "caching", upstream.url)
        caching = next(caching_gen)
        stack.callback(caching_gen.close)
        proc, custody = start_custody(WORK / "custody", upstream.url)
        stack.callback(proc.stop)

        last = f"1.{(args.versions - 1) // 10}.{(args.versions - 1) % 10}"
        targets = {
            "verdaccio (upstream)": upstream.url,
            "verdaccio proxy": caching,
            "custody proxy": custody,
        }
        urls: dict[str, dict[str, tuple[str, str]]] = {}
        with httpx.Client(trust_env=False, timeout=60) as client:
            for label, base in targets.items():
                doc = client.get(f"{base}{NAME}", headers={"Accept": "application/json"})
                assert doc.status_code == 200, (label, doc.status_code, doc.text[:300])
                tarball = doc.json()["versions"][last]["dist"]["tarball"]
                size = len(doc.content)
                for _ in range(3):  # warm: metadata, abbreviated metadata, tarball
                    client.get(f"{base}{NAME}", headers={"Accept": ABBREVIATED})
                    assert client.get(tarball).status_code == 200
                urls[label] = {
                    "packument (full)": (f"{base}{NAME}", "application/json"),
                    "packument (abbreviated)": (f"{base}{NAME}", ABBREVIATED),
                    "tarball (48 KB)": (tarball, "*/*"),
                }
        print(f"packument: {args.versions} versions, {size / 1024:.0f} KB full", flush=True)

        rows: list[Row] = []
        for what in ("packument (full)", "packument (abbreviated)", "tarball (48 KB)"):
            for connections in (args.connections, 1):
                for label in targets:
                    url, accept = urls[label][what]
                    row = load(url, accept, connections, args.duration)
                    row.target, row.what = label, what
                    rows.append(row)
                    print(
                        f"  {what:<24} {label:<21} c={connections:<3} {row.rps:>8.0f} req/s  "
                        f"p50 {row.p50_ms:6.2f} ms  p99 {row.p99_ms:7.2f} ms  errors {row.errors}",
                        flush=True,
                    )
        audit = WORK / "custody" / "audit.jsonl"
        lines = len(audit.read_text().splitlines()) if audit.exists() else 0

    print_table(rows, list(targets), args.connections)
    print(f"\ncustody audit log lines written during the run: {lines}")
    print_sync_cost(WORK / "custody" / "ledger.sqlite3", args.postgres)
    print(json.dumps([r.__dict__ for r in rows]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
