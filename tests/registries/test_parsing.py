"""Parser workers: the same histories as parsing in-process, errors carried back, and a failed
worker never loses a document (parsing goes on in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import logging
import subprocess
import sys
import termios
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import orjson
import pytest

from custody.registries.derived import decode_history
from custody.registries.documents import BadDocument
from custody.registries.npm_packument import NPM_PARSER_VERSION, parse_packument_body
from custody.registries.parse_worker import MAGIC, PIPE_BYTES, frame, hello
from custody.registries.parsing import INLINE_FIRST, MAX_FAILURES, MIN_SIZE, ParsePool
from tests.support.stopping import stopped_and_continued

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


def assert_parsed_as_in_process(bodies: list[bytes], blobs: list[bytes]) -> None:
    """Each blob (``pkg-<index>``) decodes to what parsing its body in this process gives."""
    for i, (body, blob) in enumerate(zip(bodies, blobs, strict=True)):
        expected = parse_packument_body(body, f"pkg-{i}", REGISTRY, WHEN)
        assert decode_history(blob, NPM_PARSER_VERSION, NPM_PARSER_VERSION) == expected


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

    assert_parsed_as_in_process(bodies, asyncio.run(go()))


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


def test_workers_come_back_after_a_failure_until_too_many_failures() -> None:
    """A long-running proxy must not parse on its event loop for the rest of its life because
    one worker died: after ``retry_s`` new workers start; after ``MAX_FAILURES``, no more."""
    body = packument("pkg", 5)

    async def parse(pool: ParsePool) -> None:
        blob = await pool.parse("npm-packument", body, "pkg", REGISTRY, WHEN, 10**6)
        assert decode_history(blob, NPM_PARSER_VERSION, NPM_PARSER_VERSION) is not None

    async def go() -> None:
        pool = ParsePool(workers=1, retry_s=0.2)
        killed: set[int] = set()
        try:
            for failure in range(1, MAX_FAILURES + 1):
                await parse(pool)
                assert pool.offloaded == failure  # a (new) worker parsed it
                worker = await pool._started[0]
                assert worker.proc.pid not in killed
                killed.add(worker.proc.pid)
                worker.proc.kill()
                await worker.proc.wait()
                await parse(pool)  # the dead worker fails it: parsed here instead
                assert pool.failures == failure and pool.offloaded == failure
                assert not pool.offloads(10 * MIN_SIZE)
                await asyncio.sleep(0.3)
            assert not pool.offloads(10 * MIN_SIZE)  # for good now
            await parse(pool)
            assert pool.offloaded == MAX_FAILURES
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_offloading_waits_for_enough_large_documents_and_a_ready_worker() -> None:
    """The ``INLINE_FIRST``-th large document starts the worker; documents are parsed
    in-process until it has said it is ready, then they go to it."""

    async def go() -> None:
        pool = ParsePool(workers=1)
        try:
            assert not pool.offloads(MIN_SIZE - 1)
            decisions = [pool.offloads(MIN_SIZE) for _ in range(INLINE_FIRST)]
            assert decisions == [False] * INLINE_FIRST
            assert len(pool._started) == 1  # the last of them started it
            worker = await pool._started[0]
            assert not worker.ready and not pool.offloads(MIN_SIZE)  # not ready yet
            deadline = time.monotonic() + 30
            while not worker.ready and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert worker.ready and pool.offloads(MIN_SIZE)
        finally:
            await pool.aclose()

    asyncio.run(go())
    assert not ParsePool(workers=0).offloads(10 * MIN_SIZE)


def test_start_starts_the_workers_before_any_document() -> None:
    async def go() -> None:
        pool = ParsePool(workers=2)
        try:
            pool.start()
            pool.start()  # idempotent
            assert len(pool._started) == 2
            body = packument("pkg", 5)
            await pool.parse("npm-packument", body, "pkg", REGISTRY, WHEN, 10**6)
            assert pool.offloaded == 1
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_the_worker_stops_when_its_input_ends() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "custody.registries.parse_worker"],
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == hello()  # its greeting, then nothing


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="pipe sizes are Linux's")
def test_a_worker_writes_answers_ahead_of_a_busy_parent() -> None:
    """A parent busy downloading reads answers late. With the default 64 KiB pipe the worker
    sat blocked in ``write`` meanwhile (half its time in the benchmark); it widens its pipes so
    that several answers (here about 250 KB) wait in the pipe while it parses the next."""
    requests = [
        frame(msgspec.msgpack.encode((seq, "npm-packument", packument(f"p{seq}", 300),
                                      f"p{seq}", REGISTRY, WHEN, 1 << 24)))
        for seq in range(4)
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "custody.registries.parse_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def send() -> None:  # blocks while the worker, blocked itself, reads no more requests
        with contextlib.suppress(OSError):
            stdin.write(b"".join(requests))
            stdin.close()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        waiting = 0
        deadline = time.monotonic() + 30
        while waiting < 200_000 and time.monotonic() < deadline:
            time.sleep(0.05)
            raw = fcntl.ioctl(stdout.fileno(), termios.FIONREAD, b"\0\0\0\0")
            waiting = int.from_bytes(raw, "little")
        assert waiting >= 200_000, f"only {waiting} bytes written before the parent read"
        assert fcntl.fcntl(stdout.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES
    finally:
        proc.kill()
        proc.wait(timeout=60)
        sender.join(timeout=60)
        stdout.close()


def test_the_number_of_workers_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODY_PARSE_WORKERS", "0")
    assert ParsePool().workers == 0
    monkeypatch.setenv("CUSTODY_PARSE_WORKERS", "3")
    assert ParsePool().workers == 3
    monkeypatch.setenv("CUSTODY_PARSE_WORKERS", "many")  # not a number: the default
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert ParsePool().workers == 1


# A stand-in for the worker: reads one request with the real framing, then misbehaves as told.
FAKE_WORKER = """
import os, struct, sys, time
import msgspec
from custody.fdio import read_exactly, write_all
from custody.registries.parse_worker import frame, hello, read_frame
how = sys.argv[1]
if how != "mute":
    write_all(1, hello())
payload = read_frame(0)
seq = msgspec.msgpack.decode(payload)[0]
answer = lambda s: frame(msgspec.msgpack.encode([s, True, b"not a history"]))
if how == "bad-magic":
    write_all(1, b"\\x00\\x00" + answer(seq)[2:])
elif how == "wrong-seq":
    write_all(1, answer(seq + 1))
elif how == "huge":
    write_all(1, answer(seq)[:2] + struct.pack(">I", 2**31))
elif how == "silent":
    pass
time.sleep(60)
"""


def _parse_with(argv: list[str], stall_s: float = 30.0) -> tuple[bytes, ParsePool]:
    body = packument("pkg", 5)

    async def go() -> tuple[bytes, ParsePool]:
        pool = ParsePool(workers=1, argv=argv, stall_s=stall_s)
        try:
            blob = await asyncio.wait_for(
                pool.parse("npm-packument", body, "pkg", REGISTRY, WHEN, 10**6), timeout=30
            )
            return blob, pool
        finally:
            await pool.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("how", ["bad-magic", "wrong-seq", "huge", "silent", "mute"])
def test_a_worker_out_of_step_or_silent_means_parsing_in_process(
    how: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker whose answer stream lost bytes (no magic where a frame should start), answers
    the wrong request, announces an answer larger than any document, stops answering, or never
    says it is ready, is stopped; the document is parsed in-process, never waited for forever."""
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="custody.registries.parsing"):
        blob, pool = _parse_with([sys.executable, str(script), how], stall_s=1.0)
    expected = parse_packument_body(packument("pkg", 5), "pkg", REGISTRY, WHEN)
    assert decode_history(blob, NPM_PARSER_VERSION, NPM_PARSER_VERSION) == expected
    assert pool.offloaded == 0
    assert "a parser worker failed" in caplog.text
    assert time.monotonic() - started < 25  # the stall limit, not the fake worker's sleep


def test_a_worker_stopped_and_continued_loses_no_document() -> None:
    """SIGSTOP / SIGCONT (Ctrl-Z and fg, a debugger, a cgroup freezer) while a worker writes
    large answers into a full pipe: every history still arrives intact and nothing hangs.
    (Before answers were written with ``fdio.write_all``, ``sys.stdout.buffer`` lost bytes
    here and the parent waited forever for a length read from the middle of an answer.)"""
    bodies = [packument(f"pkg-{i}", 400) for i in range(60)]

    async def go() -> list[bytes]:
        pool = ParsePool(workers=1)
        try:
            first = await pool.parse("npm-packument", bodies[0], "pkg-0", REGISTRY, WHEN, 10**8)
            worker = await pool._started[0]
            with stopped_and_continued(worker.proc.pid):
                rest = await asyncio.wait_for(
                    asyncio.gather(
                        *(
                            pool.parse("npm-packument", b, f"pkg-{i}", REGISTRY, WHEN, 10**8)
                            for i, b in enumerate(bodies)
                            if i
                        )
                    ),
                    timeout=60,
                )
            return [first, *rest]
        finally:
            await pool.aclose()

    assert_parsed_as_in_process(bodies, asyncio.run(go()))


def test_an_idle_worker_is_not_a_stalled_one() -> None:
    """The stall clock runs only while a request waits: a worker idle for longer than the
    stall limit still answers the next request."""
    body = packument("pkg", 5)

    async def go() -> ParsePool:
        pool = ParsePool(workers=1, stall_s=0.5)
        try:
            await pool.parse("npm-packument", body, "pkg", REGISTRY, WHEN, 10**6)
            await asyncio.sleep(1.2)
            await pool.parse("npm-packument", body, "pkg", REGISTRY, WHEN, 10**6)
            return pool
        finally:
            await pool.aclose()

    assert asyncio.run(go()).offloaded == 2


def test_frames_start_with_the_magic() -> None:
    from custody.registries.parse_worker import frame

    assert frame(b"abc")[:2] == MAGIC


def test_a_pool_without_workers_parses_in_process() -> None:
    body = packument("pkg-0", 3)

    async def go() -> bytes:
        pool = ParsePool(workers=0)
        try:
            return await pool.parse("npm-packument", body, "pkg-0", REGISTRY, WHEN, 10**6)
        finally:
            await pool.aclose()

    assert_parsed_as_in_process([body], [asyncio.run(go())])


class _FakeProcess:
    """Just enough of ``asyncio.subprocess.Process`` for a ``_Worker``: the test writes what
    the worker says (``stdout``) and decides when it exits (``exit``)."""

    def __init__(self) -> None:
        self.stdout = asyncio.StreamReader()
        self.stdin = _FakeStdin()
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.returncode: int | None = None
        self.pid = 0

    def exit(self) -> None:
        self.returncode = 0
        if not self.exited.done():
            self.exited.set_result(0)

    async def wait(self) -> int:
        return await self.exited

    def kill(self) -> None:
        self.stdout.feed_eof()
        self.exit()


class _FakeStdin:
    def __init__(self) -> None:
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("exits_first", [True, False])
def test_stopping_a_worker_whose_greeting_arrives_meanwhile_ends(
    exits_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hang of ``custody check --offline`` (3 runs in 56): a registry failure cancels the
    run while a parser worker has just started; closing the pool stops the worker, which
    writes its greeting and ends at the same moment. Its reader was cancelled just as the
    greeting arrived, and ``asyncio.wait_for`` (Python 3.11) swallowed the cancellation: the
    reader went on to wait for a request that never came, and ``stop`` waited for the reader
    forever. Whichever comes first, the greeting or the exit, ``stop`` ends at once."""
    from custody.registries import parsing
    from custody.registries.parsing import _Worker

    monkeypatch.setattr(parsing, "STOP_S", 2.0)

    async def go() -> _Worker:
        proc = _FakeProcess()
        worker = _Worker(proc, stall_s=30)  # type: ignore[arg-type]
        for _ in range(3):
            await asyncio.sleep(0)  # the reader waits for the greeting
        stopping = asyncio.ensure_future(worker.stop())
        for _ in range(3):
            await asyncio.sleep(0)  # stop() waits for the process to end
        if exits_first:
            proc.exit()
        proc.stdout.feed_data(hello())
        proc.stdout.feed_eof()
        if not exits_first:
            proc.exit()
        done, _ = await asyncio.wait({stopping}, timeout=10)
        assert done, "stop() hung"
        await stopping
        assert worker.reader.done()
        return worker

    started = time.monotonic()
    worker = asyncio.run(asyncio.wait_for(go(), timeout=30))
    assert not worker.alive
    assert time.monotonic() - started < 8


def test_stopping_a_worker_fails_the_requests_still_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request in flight when its worker is stopped (the run was cancelled while documents
    were being parsed) fails with ``WorkerGone``: nothing awaits an answer forever."""
    from custody.registries import parsing
    from custody.registries.parsing import WorkerGone, _Worker

    monkeypatch.setattr(parsing, "STOP_S", 0.5)

    async def go() -> None:
        proc = _FakeProcess()
        worker = _Worker(proc, stall_s=30)  # type: ignore[arg-type]
        proc.stdout.feed_data(hello())
        for _ in range(100):
            if worker.ready:
                break
            await asyncio.sleep(0)
        assert worker.ready
        asking = asyncio.ensure_future(
            worker.parse(("npm-packument", b"{}", "pkg", REGISTRY, WHEN, 10**6))
        )
        await asyncio.sleep(0)
        stopping = asyncio.ensure_future(worker.stop())  # the fake never exits
        done, _ = await asyncio.wait({stopping, asking}, timeout=10)
        assert done == {stopping, asking}, "stop() or the request hung"
        with pytest.raises(WorkerGone):
            asking.result()

    asyncio.run(asyncio.wait_for(go(), timeout=30))


def test_an_offline_miss_while_workers_start_and_parse_ends_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A registry failure raised while the workers are still starting and documents wait for
    them: the other fetches are cancelled, the pool closes, the failure comes out; within a
    bound, and no worker process is left."""
    from custody.errors import RegistryUnavailable
    from custody.model import Ecosystem
    from custody.registries import parsing
    from custody.registries.facade import fetch_histories

    monkeypatch.setattr(parsing, "STOP_S", 2.0)
    slow_start = [
        sys.executable,
        "-c",
        "import time; time.sleep(0.3); from custody.registries.parse_worker import main; main()",
    ]
    bodies = [packument(f"pkg-{i}", 60) for i in range(12)]

    class Reader:
        def __init__(self, pool: ParsePool) -> None:
            self.pool = pool

        def cache_urls(self, name: str) -> list[str]:
            return []

        async def history(self, name: str) -> bytes:
            if name == "missing":
                await asyncio.sleep(0.05)  # the workers are starting, requests in flight
                raise RegistryUnavailable(REGISTRY, f"offline mode and no cached copy of {name}")
            i = int(name.split("-")[1])
            return await self.pool.parse("npm-packument", bodies[i], name, REGISTRY, WHEN, 10**8)

    async def go() -> list[asyncio.subprocess.Process]:
        pool = ParsePool(workers=2, argv=slow_start)
        pool.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            reader = Reader(pool)
            names = [f"pkg-{i}" for i in range(len(bodies))] + ["missing"]
            with pytest.raises(RegistryUnavailable):
                await fetch_histories(
                    {Ecosystem.NPM: reader},  # type: ignore[dict-item]
                    [(Ecosystem.NPM, n) for n in names],
                )
            procs = [f.result().proc for f in pool._started if f.done() and not f.exception()]
        finally:
            await pool.aclose()
        return procs

    started = time.monotonic()
    procs = asyncio.run(asyncio.wait_for(go(), timeout=40))
    assert time.monotonic() - started < 30
    assert procs and all(p.returncode is not None for p in procs)
