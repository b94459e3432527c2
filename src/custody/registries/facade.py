"""Fetch every package history a run needs, concurrently, before any signal.

Typical use::

    settings = resolve_settings(project_dir, args.npm_registry, args.pypi_index, os.environ)
    async with make_readers(settings, ledger.cache, offline=args.offline) as regs:
        histories, missing = await fetch_histories(regs.readers, packages, progress)
        history = await regs.readers[Ecosystem.PYPI].enrich(history, ["1.2.3"])

Leaving the ``async with`` block writes the new cache entries in one batch and closes the
shared HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from custody.errors import InputError, PackageNotFound
from custody.model import Ecosystem, PackageHistory
from custody.registries.base import RegistryReader, ResponseCache
from custody.registries.config import RegistrySettings
from custody.registries.http import HttpOptions, RegistryClient
from custody.registries.npm import NpmReader
from custody.registries.parsing import INLINE_FIRST, ParsePool, cancel_and_wait

if TYPE_CHECKING:
    import httpx


PackageKey = tuple[Ecosystem, str]
CANCEL_S = 10.0
"""Seconds the fetches of a run get to end once cancelled (a registry failed, Ctrl-C)."""
log = logging.getLogger(__name__)


@dataclass
class Registries:
    """The readers of one run and the client they share."""

    readers: dict[Ecosystem, RegistryReader]
    client: RegistryClient
    parser: ParsePool

    @property
    def stale_urls(self) -> set[str]:
        """Responses served from an old cache copy because the registry failed (``allow_stale``)."""
        return self.client.stale_urls

    def flush(self) -> int:
        return self.client.flush()

    async def aclose(self) -> None:
        try:
            self.client.flush()
        finally:
            try:
                await self.parser.aclose()
            finally:
                await self.client.aclose()

    async def __aenter__(self) -> Registries:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def make_readers(
    settings: RegistrySettings,
    cache: ResponseCache | None,
    *,
    concurrency: int = 16,
    offline: bool = False,
    max_age: float | None = None,
    allow_stale: bool = False,
    options: HttpOptions | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    parallel_parse: bool = False,
) -> Registries:
    """Readers for every configured ecosystem, sharing one client. ``options`` overrides the
    HTTP defaults wholesale (then ``concurrency``/``offline``/``max_age`` are ignored).
    ``parallel_parse``: large documents are parsed in worker processes (``parsing.py``); for
    runs that fetch many packages at once."""
    opts = options or HttpOptions(
        concurrency=concurrency, offline=offline, max_age=max_age, ca_files=settings.ca_files
    )
    client = RegistryClient(cache, opts, transport=transport)
    parser = ParsePool() if parallel_parse else ParsePool(workers=0)
    readers: dict[Ecosystem, RegistryReader] = {}
    if settings.npm is not None:
        readers[Ecosystem.NPM] = NpmReader(
            settings.npm, client, allow_stale=allow_stale, parser=parser
        )
    if settings.pypi is not None:
        from custody.registries.pypi import PypiReader  # packaging's parsers: only for PyPI

        readers[Ecosystem.PYPI] = PypiReader(settings.pypi, client, allow_stale=allow_stale)
    return Registries(readers=readers, client=client, parser=parser)


def _preload(readers: Mapping[Ecosystem, RegistryReader], packages: list[PackageKey]) -> None:
    """One ``cache.load`` per client for every URL the run will read."""
    by_client: dict[int, tuple[RegistryClient, list[str]]] = {}
    for eco, name in packages:
        reader = readers[eco]
        client = getattr(reader, "client", None)
        if isinstance(client, RegistryClient):
            by_client.setdefault(id(client), (client, []))[1].extend(reader.cache_urls(name))
    for client, urls in by_client.values():
        client.preload(urls)


async def fetch_histories(
    readers: Mapping[Ecosystem, RegistryReader],
    packages: Iterable[tuple[Ecosystem, str]],
    progress: Callable[[int, int], None] | None = None,
    *,
    limit: int = 64,
    keep: bool = False,
) -> tuple[dict[PackageKey, PackageHistory], dict[PackageKey, PackageNotFound]]:
    """Every package's history, concurrently (``limit`` packages in flight; the client bounds
    requests). Unknown packages land in the second dict; ``RegistryUnavailable`` propagates and
    cancels the rest. ``progress(done, total)`` is called after each package. ``keep``: the
    histories live until the process ends (a one-shot command), see ``collector_paused``."""
    todo = list(dict.fromkeys(packages))
    for eco, _name in todo:
        if eco not in readers:
            raise InputError(f"no {eco.value} registry configured for {eco.value} packages")
    _preload(readers, todo)
    _start_parsers(readers, todo)
    histories: dict[PackageKey, PackageHistory] = {}
    missing: dict[PackageKey, PackageNotFound] = {}
    total = len(todo)
    done = 0
    pending = iter(todo)

    async def worker() -> None:
        nonlocal done
        for key in pending:  # one shared iterator: each package is taken once
            try:
                histories[key] = await readers[key[0]].history(key[1])
            except PackageNotFound as exc:
                missing[key] = exc
            done += 1
            if progress is not None:
                progress(done, total)

    tasks = [asyncio.create_task(worker()) for _ in range(min(limit, total))]
    try:
        with collector_paused(freeze=keep):
            await asyncio.gather(*tasks)
    except BaseException:
        # Bounded, and cancelled again while running: a task whose cancellation was lost
        # (asyncio.wait_for on Python 3.11) must not keep the failed run from ending.
        if not await cancel_and_wait(tasks, CANCEL_S):
            log.warning("fetches still running %g s after they were cancelled", CANCEL_S)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the error that ended the run is raised below
        raise
    return histories, missing


def _start_parsers(readers: Mapping[Ecosystem, RegistryReader], packages: list[PackageKey]) -> None:
    """Start a reader's parser workers before its first download when at least
    ``INLINE_FIRST`` of its packages have no cache entry at all (each will be downloaded whole
    and parsed): the workers then start while the first answers are on their way."""
    for eco, reader in readers.items():
        parser = getattr(reader, "parser", None)
        client = getattr(reader, "client", None)
        if not isinstance(parser, ParsePool) or not isinstance(client, RegistryClient):
            continue
        urls = [url for e, name in packages if e is eco for url in reader.cache_urls(name)]
        if parser.workers > 0 and client.uncached(urls) >= INLINE_FIRST:
            parser.start()


@contextlib.contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """Fetching builds about a million objects that live for the whole run (every release of
    every package); the cyclic garbage collector would walk them again and again while they are
    made, a third of the time it takes to decode cached histories. It runs again afterwards.

    ``freeze``: for a process that ends with its run. Everything made while paused moves to the
    collector's permanent generation (``gc.freeze``), so the first collections afterwards do not
    walk the million objects twice more (0.15 s of a warm check). Cyclic garbage made while
    paused is then never collected, which a long-running process must not accumulate."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
