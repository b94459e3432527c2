"""fetch_histories / make_readers: many packages, both ecosystems, one cache batch each way."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from custody.errors import InputError, RegistryUnavailable
from custody.model import Ecosystem
from custody.registries.facade import fetch_histories, make_readers
from custody.registries.parsing import INLINE_FIRST
from custody.registries.settings import NpmSettings, PypiSettings, RegistrySettings

from .conftest import FAST, MemoryCache, run


def packument(name: str) -> dict[str, object]:
    return {
        "name": name,
        "time": {"created": "2020-01-01T00:00:00Z", "1.0.0": "2020-01-01T00:00:00Z"},
        "versions": {"1.0.0": {"name": name, "version": "1.0.0", "_npmUser": {"name": "o"}}},
    }


def settings_for(server: HTTPServer) -> RegistrySettings:
    return RegistrySettings(
        npm=NpmSettings(registry=server.url_for("/npm/"), source="test"),
        pypi=PypiSettings(index_url=server.url_for("/simple/"), source="test"),
    )


def test_fetch_histories_batches_cache_and_reports_progress(httpserver: HTTPServer) -> None:
    names = [f"p{i}" for i in range(30)]
    for name in names:
        httpserver.expect_request(f"/npm/{name}").respond_with_json(packument(name))
    httpserver.expect_request("/npm/@s/gone").respond_with_data("", status=404)
    httpserver.expect_request("/simple/py-one/").respond_with_json({"files": []})
    httpserver.expect_request("/pypi/py-one/json").respond_with_data("", status=404)
    cache = MemoryCache()
    progress: list[tuple[int, int]] = []
    packages = [(Ecosystem.NPM, n) for n in names] + [
        (Ecosystem.NPM, "@s/gone"),
        (Ecosystem.PYPI, "py-one"),
        (Ecosystem.NPM, "p0"),  # duplicates are fetched once
    ]

    async def scenario() -> None:
        async with make_readers(settings_for(httpserver), cache, options=FAST) as regs:
            histories, missing = await fetch_histories(
                regs.readers, packages, lambda d, t: progress.append((d, t))
            )
            assert set(histories) == {(Ecosystem.NPM, n) for n in names} | {
                (Ecosystem.PYPI, "py-one")
            }
            assert list(missing) == [(Ecosystem.NPM, "@s/gone")]
            assert cache.store_calls == []  # nothing written before the end

    run(scenario())
    assert progress[-1] == (32, 32) and len(progress) == 32
    assert len(cache.load_calls) == 1  # one preload for every URL of the run
    assert len(cache.store_calls) == 1  # one batch at the end


def test_unavailable_registry_propagates(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/npm/ok").respond_with_json(packument("ok"))
    httpserver.expect_request("/npm/down").respond_with_data("", status=503)

    async def scenario() -> None:
        async with make_readers(settings_for(httpserver), None, options=FAST) as regs:
            await fetch_histories(regs.readers, [(Ecosystem.NPM, "ok"), (Ecosystem.NPM, "down")])

    with pytest.raises(RegistryUnavailable, match="503"):
        run(scenario())


def test_missing_reader_is_an_input_error(httpserver: HTTPServer) -> None:
    settings = RegistrySettings(pypi=PypiSettings(index_url=httpserver.url_for("/s/"), source="t"))

    async def scenario() -> None:
        async with make_readers(settings, None, options=FAST) as regs:
            await fetch_histories(regs.readers, [(Ecosystem.NPM, "x")])

    with pytest.raises(InputError, match="no npm registry"):
        run(scenario())


@pytest.mark.parametrize("keep", [False, True])
def test_fetch_histories_freezes_what_it_built_only_when_kept(
    httpserver: HTTPServer, keep: bool
) -> None:
    """A one-shot command moves the histories out of the collector's sight; a long-running
    process (the proxy, ``watch``) must not, or cyclic garbage would never be collected."""
    import gc

    httpserver.expect_request("/npm/p0").respond_with_json(packument("p0"))
    gc.unfreeze()
    before = gc.get_freeze_count()

    async def scenario() -> None:
        async with make_readers(settings_for(httpserver), MemoryCache(), options=FAST) as regs:
            await fetch_histories(regs.readers, [(Ecosystem.NPM, "p0")], keep=keep)
            assert gc.isenabled()
            assert (gc.get_freeze_count() > before) is keep

    try:
        run(scenario())
    finally:
        gc.unfreeze()


def test_parser_workers_start_up_front_only_for_many_uncached_packages(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``INLINE_FIRST`` packages the cache has never seen start the parser workers before the
    first download; fewer, or packages already cached (a warm run), do not."""
    monkeypatch.setenv("CUSTODY_PARSE_WORKERS", "1")
    names = [f"p{i}" for i in range(INLINE_FIRST)]
    for name in names:
        httpserver.expect_request(f"/npm/{name}").respond_with_json(packument(name))
    packages = [(Ecosystem.NPM, n) for n in names]

    async def starts_workers(cache: MemoryCache, wanted: list[tuple[Ecosystem, str]]) -> bool:
        settings = settings_for(httpserver)
        async with make_readers(settings, cache, options=FAST, parallel_parse=True) as regs:
            await fetch_histories(regs.readers, wanted)
            return bool(regs.parser._started)

    assert not run(starts_workers(MemoryCache(), packages[:-1]))  # one short
    cache = MemoryCache()
    assert run(starts_workers(cache, packages))
    assert not run(starts_workers(cache, packages))  # all cached now
