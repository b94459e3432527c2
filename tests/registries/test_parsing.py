"""Parser workers: the same histories as parsing in-process, errors carried back, and a failed
worker never loses a document (parsing goes on in-process)."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from custody.registries.derived import decode_history
from custody.registries.http import BadDocument
from custody.registries.npm_packument import NPM_PARSER_VERSION, parse_packument_body
from custody.registries.parsing import INLINE_FIRST, MIN_SIZE, ParsePool

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "npm-packuments"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
REGISTRY = "http://registry.example/"


def packument(name: str, versions: int) -> bytes:
    doc = {
        "name": name,
        "versions": {
            f"1.0.{i}": {
                "name": name,
                "version": f"1.0.{i}",
                "_npmUser": {"name": "alice"},
                "maintainers": [{"name": "alice"}, {"name": "bob"}],
                "dependencies": {"left-pad": "^1.0.0"},
                "dist": {"tarball": f"{REGISTRY}{name}/-/{name}-1.0.{i}.tgz"},
            }
            for i in range(versions)
        },
        "time": {"created": "2020-01-01T00:00:00Z"}
        | {f"1.0.{i}": f"2020-01-{i % 28 + 1:02d}T00:00:00Z" for i in range(versions)},
    }
    return orjson.dumps(doc)


def test_workers_parse_exactly_what_the_process_parses() -> None:
    bodies = [packument(f"pkg-{i}", 60) for i in range(INLINE_FIRST + 4)]
    if FIXTURES.is_dir():
        bodies += [p.read_bytes() for p in sorted(FIXTURES.rglob("*.json"))[:6]]

    async def go() -> list[bytes]:
        pool = ParsePool(workers=1)
        try:
            out = []
            for i, body in enumerate(bodies):
                sent = gzip.compress(body) if i % 2 else body
                out.append(
                    await pool.parse("npm-packument", sent, f"pkg-{i}", REGISTRY, WHEN, 10**8)
                )
            assert pool.offloaded == len(bodies)
            return out
        finally:
            await pool.aclose()

    blobs = asyncio.run(go())
    for i, (body, blob) in enumerate(zip(bodies, blobs, strict=True)):
        expected = parse_packument_body(body, f"pkg-{i}", REGISTRY, WHEN)
        assert decode_history(blob, NPM_PARSER_VERSION, NPM_PARSER_VERSION) == expected


def test_a_refused_document_comes_back_as_bad_document() -> None:
    async def go() -> None:
        pool = ParsePool(workers=1)
        try:
            with pytest.raises(BadDocument, match="invalid packument for broken"):
                await pool.parse("npm-packument", b"{nope", "broken", REGISTRY, WHEN, 10**6)
            bomb = gzip.compress(b" " * 2_000_000)
            with pytest.raises(BadDocument, match="inflates to more than 1 MB"):
                await pool.parse("npm-packument", bomb, "bomb", REGISTRY, WHEN, 2**20)
            # the worker is still there for the next one
            body = packument("fine", 3)
            await pool.parse("npm-packument", body, "fine", REGISTRY, WHEN, 10**6)
            assert pool.offloaded == 1
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_a_killed_worker_means_parsing_in_process() -> None:
    body = packument("pkg", 5)

    async def go() -> None:
        pool = ParsePool(workers=1)
        try:
            await pool.parse("npm-packument", body, "pkg", REGISTRY, WHEN, 10**6)
            worker = await pool._started[0]
            worker.proc.kill()
            await worker.proc.wait()
            blob = await pool.parse("npm-packument", body, "pkg", REGISTRY, WHEN, 10**6)
            assert decode_history(blob, NPM_PARSER_VERSION, NPM_PARSER_VERSION) is not None
            assert pool.offloaded == 1
            assert not pool.offloads(10 * MIN_SIZE)  # broken: no more offloading
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_offloading_waits_for_enough_large_documents() -> None:
    pool = ParsePool(workers=1)
    assert not pool.offloads(MIN_SIZE - 1)
    decisions = [pool.offloads(MIN_SIZE) for _ in range(INLINE_FIRST + 2)]
    assert decisions == [False] * INLINE_FIRST + [True, True]
    assert not ParsePool(workers=0).offloads(10 * MIN_SIZE)


def test_the_worker_stops_when_its_input_ends() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "custody.registries.parse_worker"],
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == b""


def test_the_number_of_workers_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODY_PARSE_WORKERS", "0")
    assert ParsePool().workers == 0
    monkeypatch.setenv("CUSTODY_PARSE_WORKERS", "3")
    assert ParsePool().workers == 3
    monkeypatch.setenv("CUSTODY_PARSE_WORKERS", "many")  # not a number: the default
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert ParsePool().workers == 1
