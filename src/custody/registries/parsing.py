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
package never pays for a process start), or when a caller expects many (``start``); documents
are parsed in-process until a worker has said it is ready, so none waits behind a starting
interpreter. Workers ignore Ctrl-C (the parent stops them), and if a worker fails, parsing goes
on in the process itself: for ``RETRY_S``, then with new workers, and for good after
``MAX_FAILURES``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from typing import Any

import msgspec

from custody.registries.documents import BadDocument
from custody.registries.parse_worker import (
    HEADER,
    HELLO_SEQ,
    PIPE_BYTES,
    OutOfStep,
    frame,
    frame_size,
    parse_request,
)

log = logging.getLogger(__name__)

MIN_SIZE = 8 * 1024  # bytes: smaller documents cost more to ship to a worker than to parse
INLINE_FIRST = 8  # large documents parsed in-process before the workers are started
MAX_WORKERS = 4

Request = tuple[str, bytes, str, str, datetime, int]
"""``parse_worker.parse_request``'s arguments: kind, body, name, registry, fetched_at, limit."""

_encoder = msgspec.msgpack.Encoder()
_answer = msgspec.msgpack.Decoder(type=tuple[int, bool, bytes])


WORKERS_ENV = "CUSTODY_PARSE_WORKERS"


def default_workers() -> int:
    """``CUSTODY_PARSE_WORKERS`` if set (0: parse in-process), else one per core but one (that
    one stays with the event loop: downloading, TLS, the ledger), at most ``MAX_WORKERS``."""
    configured = os.environ.get(WORKERS_ENV, "").strip()
    if configured.isdigit():
        return min(int(configured), 64)
    return max(0, min(MAX_WORKERS, (os.cpu_count() or 1) - 1))


class WorkerGone(Exception):
    """The worker process ended, stalled or answered out of protocol."""


WORKER_ARGV = (sys.executable, "-m", "custody.registries.parse_worker")
RETRY_S = 60.0
"""After a worker fails, documents are parsed in-process for this long, then new workers are
started: a long-running proxy gets its workers back instead of parsing on its event loop for
the rest of its life."""
MAX_FAILURES = 3
"""Failures after which a pool parses in-process for good: a worker that keeps failing is not
started again and again."""
STALL_S = 120.0
"""Seconds a worker may go without answering while a request waits (the largest packuments
parse in a few seconds): then it is stopped and its requests are parsed in-process."""
STOP_S = 5.0
"""Seconds a stopping worker gets to end once its input is closed (then it is killed), and
the bound on each other wait while a pool closes: closing never waits forever."""
RECANCEL_S = 0.5
"""While waiting for cancelled tasks to end, each still running is cancelled again this
often: on Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just as the
awaitable it wraps completes, and the task then carries on as if never cancelled."""


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], timeout: float) -> bool:
    """Cancel ``tasks`` and wait for them to end, ``timeout`` seconds at most; True if they all
    did. A task that swallowed its cancellation (see ``RECANCEL_S``) is cancelled again, and
    one that still runs at the deadline is left running: never an unbounded wait."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            return False
        _done, pending = await asyncio.wait(pending, timeout=min(left, RECANCEL_S))
    return True


async def _ends_within(awaitable: Any, timeout: float) -> bool:
    """Await ``awaitable`` for ``timeout`` seconds at most (cancelled if it has not ended then,
    without waiting for the cancellation to take). True if it ended in time."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        return False
    if not task.cancelled():
        task.exception()  # retrieved: an error while stopping is no news
    return True


@dataclass(frozen=True, slots=True)
class _Pending:
    seq: int
    limit: int  # the request's bound on the inflated document; its answer is bounded by it
    answer: asyncio.Future[bytes]

    @property
    def max_answer(self) -> int:
        return 2 * self.limit + (1 << 20)


class _Worker:
    """One worker process; answers come back in the order requests were sent, each carrying
    its request's number."""

    def __init__(self, proc: asyncio.subprocess.Process, stall_s: float) -> None:
        self.proc = proc
        self.stall_s = stall_s
        self.waiting: deque[_Pending] = deque()
        self.alive = True
        self.ready = False  # its hello() came: it reads requests as soon as they are sent
        self.closing = False  # stop() was called: the reader ends instead of waiting
        self._seq = count()
        self._asked = asyncio.Event()  # set when a request is sent
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, argv: Sequence[str], stall_s: float) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=PIPE_BYTES,  # read answers on as they come, not 128 KiB at a time
        )
        return cls(proc, stall_s)

    async def _next_bytes(self, size: int) -> bytes:
        """``size`` bytes of the answer stream, within ``stall_s`` (``TimeoutError``)."""
        assert self.proc.stdout is not None
        return await asyncio.wait_for(self.proc.stdout.readexactly(size), timeout=self.stall_s)

    async def _read(self) -> None:
        """Read answers until the worker fails or is stopped. Whatever ends it (a failure, a
        cancellation, ``stop``), no request is left waiting: each fails with ``WorkerGone``.
        An idle reader ends once ``closing`` is set (``stop`` wakes it): it must end without a
        cancellation, which can be lost (see ``RECANCEL_S``). One with requests waiting reads
        on: their answers come, or the stopped worker's output ends."""
        reason = "stopped"
        try:
            await self._hello()
            while True:
                if not self.waiting:  # idle: the stall clock starts with the next request
                    if self.closing:
                        return
                    self._asked.clear()
                    await self._asked.wait()
                    continue  # a request came, or stop() woke the reader to end it
                pending = self.waiting[0]
                size = frame_size(await self._next_bytes(HEADER.size))
                if size > pending.max_answer:
                    raise OutOfStep(f"an answer of {size} bytes")
                seq, ok, value = _answer.decode(await self._next_bytes(size))
                if seq != pending.seq:
                    raise OutOfStep(f"the answer to request {seq} instead of {pending.seq}")
                self.waiting.popleft()
                if pending.answer.done():  # its caller was cancelled
                    continue
                if ok:
                    pending.answer.set_result(value)
                else:
                    pending.answer.set_exception(BadDocument(value.decode("utf-8", "replace")))
        except TimeoutError:
            reason = f"no answer in {self.stall_s:g} s"
            self._fail(reason)
        except (asyncio.IncompleteReadError, msgspec.DecodeError, OutOfStep, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._fail(reason)
        finally:
            self.alive = False
            self._drop_waiting(reason)

    async def _hello(self) -> None:
        """Wait (``stall_s`` at most) for the frame a worker writes once it has started."""
        size = frame_size(await self._next_bytes(HEADER.size))
        if size > 64:
            raise OutOfStep(f"a greeting of {size} bytes")
        seq, _ok, _value = _answer.decode(await self._next_bytes(size))
        if seq != HELLO_SEQ:
            raise OutOfStep(f"the answer to request {seq} before the greeting")
        self.ready = True

    def _fail(self, reason: str) -> None:
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()  # out of step or stalled: nothing more it says can be trusted
        self._drop_waiting(reason)

    def _drop_waiting(self, reason: str) -> None:
        while self.waiting:
            answer = self.waiting.popleft().answer
            if not answer.done():
                answer.set_exception(WorkerGone(reason))

    async def parse(self, request: Request) -> bytes:
        assert self.proc.stdin is not None
        if not self.alive or self.closing:
            raise WorkerGone(f"exit code {self.proc.returncode}" if not self.alive else "stopped")
        pending = _Pending(next(self._seq), request[5], asyncio.get_running_loop().create_future())
        self.waiting.append(pending)  # appended and written without an await between: in order
        self._asked.set()
        self.proc.stdin.write(frame(_encoder.encode((pending.seq, *request))))
        try:
            await self.proc.stdin.drain()
        except (ConnectionError, OSError) as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        return await pending.answer

    async def stop(self, timeout: float | None = None) -> None:
        """Close the worker's input and let it end (``timeout``, default ``STOP_S``; then kill
        it), end the reader and fail the requests still waiting. Takes three times ``timeout``
        at most: every wait is bounded, none relies on one cancellation being delivered."""
        timeout = STOP_S if timeout is None else timeout
        self.closing = True
        self._asked.set()  # an idle reader wakes up and ends
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if not await _ends_within(self.proc.wait(), timeout):
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            if not await _ends_within(self.proc.wait(), timeout):
                log.warning("a parser worker (pid %s) did not end when killed", self.proc.pid)
        if not await cancel_and_wait([self.reader], timeout):
            log.warning("a parser worker's reader did not end")
        self.alive = False
        self._drop_waiting("stopped")


class ParsePool:
    """Parser worker processes, started on first use and stopped by ``aclose()``. A reader asks
    ``offloads(size)`` per document and parses in-process when the answer is no."""

    def __init__(
        self,
        workers: int | None = None,
        *,
        argv: Sequence[str] = WORKER_ARGV,
        stall_s: float = STALL_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self.workers = default_workers() if workers is None else workers
        if not sys.executable:
            self.workers = 0  # embedded: no interpreter to start
        self._argv = argv
        self._stall_s = stall_s
        self._retry_s = retry_s
        self._started: list[asyncio.Future[_Worker]] = []
        self._stopping: set[asyncio.Future[None]] = set()  # failed workers being reaped
        self._turn = count()
        self._inline_left = INLINE_FIRST
        self.failures = 0  # worker failures so far (tests read it)
        self._in_process_until = 0.0  # time.monotonic(): parse in-process before this
        self.offloaded = 0  # documents a worker parsed (tests and benchmarks read it)

    def _in_process(self) -> bool:
        """After a failure: for ``retry_s``, and for good after ``MAX_FAILURES``."""
        return self.failures >= MAX_FAILURES or time.monotonic() < self._in_process_until

    def offloads(self, size: int) -> bool:
        """Should a document of ``size`` bytes go to a worker? Yes once a worker is ready. The
        ``INLINE_FIRST``-th large document starts the workers (call from the event loop)."""
        if self.workers < 1 or self._in_process() or size < MIN_SIZE:
            return False
        if not self._started:
            self._inline_left -= 1
            if self._inline_left > 0:
                return False
            self.start()
        return bool(self._ready())

    def start(self) -> None:
        """Start the workers now (from the event loop), for a caller that knows many large
        documents are coming: their start-up then overlaps the first downloads."""
        if self._in_process():
            return
        while len(self._started) < self.workers:
            self._started.append(asyncio.ensure_future(_Worker.start(self._argv, self._stall_s)))

    def _ready(self) -> list[_Worker]:
        """The started workers that said they are ready and have not failed."""
        ready = []
        for started in self._started:
            if started.done() and not started.cancelled() and started.exception() is None:
                worker = started.result()
                if worker.ready and worker.alive:
                    ready.append(worker)
        return ready

    async def parse(
        self, kind: str, body: bytes, name: str, registry: str, fetched_at: datetime, limit: int
    ) -> bytes:
        """``parse_worker.parse_request`` in a worker if one is up (in this process if the
        workers failed): ``body`` as sent (gzip or not), at most ``limit`` bytes inflated.
        Returns the encoded history; raises ``BadDocument``."""
        request: Request = (kind, body, name, registry, fetched_at, limit)
        if self.workers > 0 and not self._in_process():
            try:
                worker = await self._next_worker()
                blob = await worker.parse(request)
            except (WorkerGone, OSError) as exc:
                self._failed(exc)
            else:
                self.offloaded += 1
                return blob
        return parse_request(*request)

    def _failed(self, exc: BaseException) -> None:
        """A worker failed (every request waiting on it fails with it: counted once). Parse
        in-process for a while; the failed workers are reaped, the others kept."""
        self._reap_failed()
        if self._in_process():
            return
        self.failures += 1
        self._in_process_until = time.monotonic() + self._retry_s
        when = "for good" if self.failures >= MAX_FAILURES else f"for {self._retry_s:g} s"
        log.warning("parsing in this process %s: a parser worker failed (%s)", when, exc)

    def _reap_failed(self) -> None:
        kept: list[asyncio.Future[_Worker]] = []
        for started in self._started:
            if not started.done():
                kept.append(started)
            elif not started.cancelled() and started.exception() is None:
                worker = started.result()
                if worker.alive:
                    kept.append(started)
                else:
                    stopping = asyncio.ensure_future(worker.stop())
                    self._stopping.add(stopping)
                    stopping.add_done_callback(self._stopping.discard)
        self._started = kept

    async def _next_worker(self) -> _Worker:
        """A ready worker if there is one, else one still starting (its requests wait in the
        pipe until it reads them). Raises ``WorkerGone`` if none could be started.

        The start is waited for, not awaited: a caller cancelled meanwhile (the rest of a run
        cancelled after a registry failed) must not cancel the start itself, which would leave
        a process half started for ``aclose`` to wait on."""
        self.start()
        turn = next(self._turn)
        ready = self._ready()
        if ready:
            return ready[turn % len(ready)]
        if not self._started:
            raise WorkerGone("no worker started")
        started = self._started[turn % len(self._started)]
        await asyncio.wait({started}, timeout=self._stall_s)
        if not started.done():
            raise WorkerGone(f"not started in {self._stall_s:g} s")
        if started.cancelled():
            raise WorkerGone("its start was cancelled")
        return started.result()  # OSError if it could not be started

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop every worker, started or still starting. Bounded (a few times ``timeout``,
        default ``STOP_S``), whatever state the workers are in: a run that failed must end, not
        hang here."""
        timeout = STOP_S if timeout is None else timeout
        started, self._started = self._started, []
        if started:
            await asyncio.wait(started, timeout=timeout)
        stuck = [f for f in started if not f.done()]
        if stuck:
            log.warning("%d parser worker(s) did not start in %g s", len(stuck), timeout)
            await cancel_and_wait(stuck, timeout)
        workers = [
            f.result() for f in started if f.done() and not f.cancelled() and f.exception() is None
        ]
        stops = [asyncio.ensure_future(w.stop(timeout)) for w in workers]
        waiting = [*stops, *self._stopping]
        if waiting:
            _done, late = await asyncio.wait(waiting, timeout=4 * timeout)
            if late:
                await cancel_and_wait(late, timeout)
        for stop in stops:
            if stop.done() and not stop.cancelled():
                stop.exception()  # retrieved: an error while stopping is no news
