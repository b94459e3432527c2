"""Parse registry documents in worker processes while the event loop keeps downloading.

A cold check of a thousand npm packages downloads about 50 MB of JSON and turns it into
custody records; in one process the parsing took as long as the downloading, on one core.
The GIL keeps threads from helping (``orjson`` and the parser hold it), so large documents are
parsed in worker processes and come back msgpack-encoded: the form the ledger caches anyway,
which the event loop decodes in a fraction of the parse time.

The workers are ``python -m custody.registries.parse_worker`` over pipes (``parse_worker.py``
has the protocol), not ``multiprocessing``: a spawned ``multiprocessing`` child imports the
parent's main script again (running a caller's unguarded script a second time), and a forked
one copies a process that holds sockets, database connections and threads. Workers start only
once a run has more than a handful of large documents to parse (``custody history`` of one
package never pays for a process start), they ignore Ctrl-C (the parent stops them), and if a
worker fails, parsing goes on in the process itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import deque
from datetime import datetime
from itertools import count

import msgspec

from custody.registries.http import BadDocument
from custody.registries.parse_worker import HEADER, frame, parse_request

log = logging.getLogger(__name__)

MIN_SIZE = 8 * 1024  # bytes: smaller documents cost more to ship to a worker than to parse
INLINE_FIRST = 8  # large documents parsed in-process before the workers are started
MAX_WORKERS = 4

_encoder = msgspec.msgpack.Encoder()
_answer = msgspec.msgpack.Decoder(type=tuple[bool, bytes])


WORKERS_ENV = "CUSTODY_PARSE_WORKERS"


def default_workers() -> int:
    """``CUSTODY_PARSE_WORKERS`` if set (0: parse in-process), else one per core but one (that
    one stays with the event loop: downloading, TLS, the ledger), at most ``MAX_WORKERS``."""
    configured = os.environ.get(WORKERS_ENV, "").strip()
    if configured.isdigit():
        return min(int(configured), 64)
    return max(0, min(MAX_WORKERS, (os.cpu_count() or 1) - 1))


class WorkerGone(Exception):
    """The worker process ended or answered out of protocol."""


class _Worker:
    """One worker process; answers come back in the order requests were sent."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.waiting: deque[asyncio.Future[bytes]] = deque()
        self.alive = True
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "custody.registries.parse_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
                ok, value = _answer.decode(await self.proc.stdout.readexactly(size))
                waiter = self.waiting.popleft()
                if waiter.done():  # its caller was cancelled
                    continue
                if ok:
                    waiter.set_result(value)
                else:
                    waiter.set_exception(BadDocument(value.decode("utf-8", "replace")))
        except (asyncio.IncompleteReadError, msgspec.DecodeError, IndexError, OSError) as exc:
            self._fail(exc)

    def _fail(self, reason: BaseException) -> None:
        self.alive = False
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(WorkerGone(f"{type(reason).__name__}: {reason}"))

    async def parse(self, request: bytes) -> bytes:
        assert self.proc.stdin is not None
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)  # appended and written without an await between: in order
        self.proc.stdin.write(frame(request))
        try:
            await self.proc.stdin.drain()
        except (ConnectionError, OSError) as exc:
            self._fail(exc)
        return await waiter

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class ParsePool:
    """Parser worker processes, started on first use and stopped by ``aclose()``. A reader asks
    ``offloads(size)`` per document and parses in-process when the answer is no."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        if not sys.executable:
            self.workers = 0  # embedded: no interpreter to start
        self._started: list[asyncio.Future[_Worker]] = []
        self._turn = count()
        self._inline_left = INLINE_FIRST
        self._broken = False
        self.offloaded = 0  # documents a worker parsed (tests and benchmarks read it)

    def offloads(self, size: int) -> bool:
        """Should a document of ``size`` bytes go to a worker? (Counts the large documents a
        run parses in-process before the workers are worth starting.)"""
        if self.workers < 1 or self._broken or size < MIN_SIZE:
            return False
        if not self._started and self._inline_left > 0:
            self._inline_left -= 1
            return False
        return True

    async def parse(
        self, kind: str, body: bytes, name: str, registry: str, fetched_at: datetime, limit: int
    ) -> bytes:
        """``parse_worker.parse_request`` in a worker if one is up (in this process if the
        workers failed): ``body`` as sent (gzip or not), at most ``limit`` bytes inflated.
        Returns the encoded history; raises ``BadDocument``."""
        request = (kind, body, name, registry, fetched_at, limit)
        if not self._broken:
            try:
                worker = await self._next_worker()
                blob = await worker.parse(_encoder.encode(request))
            except (WorkerGone, OSError) as exc:
                if not self._broken:
                    log.warning("parsing in this process: a parser worker failed (%s)", exc)
                self._broken = True
            else:
                self.offloaded += 1
                return blob
        return parse_request(*request)

    async def _next_worker(self) -> _Worker:
        if len(self._started) < self.workers:  # started without an await: never too many
            self._started.append(asyncio.ensure_future(_Worker.start()))
        worker = await self._started[next(self._turn) % len(self._started)]
        if not worker.alive:
            raise WorkerGone(f"exit code {worker.proc.returncode}")
        return worker

    async def aclose(self) -> None:
        started, self._started = self._started, []
        workers = await asyncio.gather(*started, return_exceptions=True)
        stops = [w.stop() for w in workers if isinstance(w, _Worker)]
        await asyncio.gather(*stops, return_exceptions=True)
