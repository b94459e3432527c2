"""Cache-Control freshness: a fresh cache entry answers without a request (RFC 9111), for no
longer than the registry said (less ``Age``) and never beyond the cap; ``max_age`` overrides
it; ``revalidate`` forces a request; gzip bodies are kept as sent."""

from __future__ import annotations

import dataclasses
import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pytest_httpserver import HTTPServer

from custody.errors import RegistryUnavailable
from custody.registries.http import (
    HttpOptions,
    RegistryClient,
    ResponseTooLarge,
    freshness_lifetime,
)

from .conftest import FAST, MemoryCache, run
from .test_http import REGISTRY, as_json, fetch, requests_to

HONOR = dataclasses.replace(FAST, honor_cache_control=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"cache-control": "public, max-age=300"}, 300.0),
        ({"cache-control": "max-age=300", "age": "120"}, 180.0),
        ({"cache-control": "max-age=60", "age": "600"}, 0.0),
        ({"cache-control": "max-age=300, no-cache"}, 0.0),
        ({"cache-control": "no-store"}, 0.0),
        ({"cache-control": "max-age=soon"}, 0.0),
        ({"cache-control": 'max-age="30"'}, 30.0),
        ({"cache-control": "public"}, None),
    ],
)
def test_freshness_lifetime(headers: dict[str, str], expected: float | None) -> None:
    assert freshness_lifetime(headers) == expected


def serve(server: HTTPServer, cache_control: str | None) -> None:
    headers = {"ETag": '"v1"'}
    if cache_control is not None:
        headers["Cache-Control"] = cache_control
    server.expect_request("/pkg").respond_with_data(
        orjson.dumps({"v": 1}), headers=headers, content_type="application/json"
    )


def twice(url: str, cache: MemoryCache, options: HttpOptions) -> int:
    """Requests the second of two fetches sent."""
    run(fetch(url, cache, options))
    _resp, value, client = run(fetch(url, cache, options))
    assert value == {"v": 1}
    return client.requests


def test_a_fresh_entry_answers_without_a_request(httpserver: HTTPServer) -> None:
    serve(httpserver, "public, max-age=300")
    cache = MemoryCache()
    assert twice(httpserver.url_for("/pkg"), cache, HONOR) == 0
    assert cache.entries[httpserver.url_for("/pkg")].fresh_for == 300.0


def test_without_honouring_cache_control_every_run_revalidates(httpserver: HTTPServer) -> None:
    serve(httpserver, "public, max-age=300")
    assert twice(httpserver.url_for("/pkg"), MemoryCache(), FAST) == 1


@pytest.mark.parametrize("cache_control", [None, "no-cache", "max-age=0"])
def test_no_freshness_means_revalidation(httpserver: HTTPServer, cache_control: str) -> None:
    serve(httpserver, cache_control)
    assert twice(httpserver.url_for("/pkg"), MemoryCache(), HONOR) == 1


def test_an_entry_older_than_its_lifetime_is_revalidated(httpserver: HTTPServer) -> None:
    serve(httpserver, "max-age=300")
    url = httpserver.url_for("/pkg")
    cache = MemoryCache()
    run(fetch(url, cache, HONOR))
    aged = datetime.now(UTC) - timedelta(seconds=301)
    cache.entries[url] = dataclasses.replace(cache.entries[url], fetched_at=aged)
    _resp, _value, client = run(fetch(url, cache, HONOR))
    assert client.requests == 1
    assert requests_to(httpserver, "/pkg")[-1].headers["If-None-Match"] == '"v1"'
    assert cache.entries[url].fetched_at > aged  # the 304 renewed it


def test_the_registry_cannot_make_an_entry_fresh_for_longer_than_the_cap(
    httpserver: HTTPServer,
) -> None:
    serve(httpserver, "max-age=31536000")
    url = httpserver.url_for("/pkg")
    cache = MemoryCache()
    capped = dataclasses.replace(HONOR, freshness_cap=60.0)
    run(fetch(url, cache, capped))
    aged = datetime.now(UTC) - timedelta(seconds=61)
    cache.entries[url] = dataclasses.replace(cache.entries[url], fetched_at=aged)
    assert run(fetch(url, cache, capped))[2].requests == 1


def test_max_age_overrides_the_registry(httpserver: HTTPServer) -> None:
    serve(httpserver, "max-age=300")
    assert (
        twice(httpserver.url_for("/pkg"), MemoryCache(), dataclasses.replace(HONOR, max_age=0)) == 1
    )


def test_a_304_renews_the_lifetime(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/pkg")
    httpserver.expect_oneshot_request("/pkg").respond_with_data(
        orjson.dumps({"v": 1}), headers={"ETag": '"v1"'}, content_type="application/json"
    )
    httpserver.expect_request("/pkg").respond_with_data(
        "", status=304, headers={"ETag": '"v1"', "Cache-Control": "max-age=120"}
    )
    cache = MemoryCache()
    run(fetch(url, cache, HONOR))
    assert cache.entries[url].fresh_for is None
    run(fetch(url, cache, HONOR))  # revalidated: no lifetime yet
    assert cache.entries[url].fresh_for == 120.0
    assert cache.touch_calls[-1] == {url: cache.entries[url].fetched_at}
    assert run(fetch(url, cache, HONOR))[2].requests == 0


def test_revalidate_asks_about_a_fresh_entry(httpserver: HTTPServer) -> None:
    serve(httpserver, "max-age=300")
    url = httpserver.url_for("/pkg")
    cache = MemoryCache()
    run(fetch(url, cache, HONOR))

    async def again() -> int:
        client = RegistryClient(cache, HONOR)
        try:
            await client.get(url, registry=REGISTRY, what="pkg", decode=as_json)
            assert client.requests == 0
            assert client.revalidate([url, "http://elsewhere/"]) == {url}
            await client.get(url, registry=REGISTRY, what="pkg", decode=as_json)
            assert client.revalidate([url]) == set()  # just asked: nothing to ask again
            return client.requests
        finally:
            await client.aclose()

    assert run(again()) == 1


def test_a_gzip_body_is_kept_as_sent(httpserver: HTTPServer) -> None:
    body = orjson.dumps({"v": list(range(2000))})
    packed = gzip.compress(body)
    httpserver.expect_request("/pkg").respond_with_data(
        packed, headers={"Content-Encoding": "gzip"}, content_type="application/json"
    )
    cache = MemoryCache()
    resp, value, _client = run(fetch(httpserver.url_for("/pkg"), cache))
    assert value == {"v": list(range(2000))}
    assert resp.gzip_body == packed
    assert requests_to(httpserver, "/pkg")[0].headers["Accept-Encoding"] == "gzip"
    stored = cache.entries[httpserver.url_for("/pkg")]
    assert stored.gzip_body == packed  # stored without inflating and compressing again


def test_a_gzip_bomb_is_refused(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"[" + b"0," * 3_000_000 + b"0]")  # 6 MB inflated, 10 KB sent
    httpserver.expect_request("/pkg").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="application/json"
    )
    small = dataclasses.replace(FAST, max_body=1024 * 1024)
    with pytest.raises(ResponseTooLarge, match="inflates to more than 1 MB"):
        run(fetch(httpserver.url_for("/pkg"), MemoryCache(), small))


def test_a_corrupt_gzip_body_is_retried_then_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pkg").respond_with_data(
        gzip.compress(b'{"v": 1}')[:-6], headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(RegistryUnavailable, match="gzip"):
        run(fetch(httpserver.url_for("/pkg"), MemoryCache()))
    assert len(requests_to(httpserver, "/pkg")) == 3


@pytest.mark.parametrize("coding", ["GZIP", "Gzip", " gzip "])
def test_content_codings_are_case_insensitive(httpserver: HTTPServer, coding: str) -> None:
    body = orjson.dumps({"v": 1})
    packed = gzip.compress(body)
    httpserver.expect_request("/pkg").respond_with_data(
        packed, headers={"Content-Encoding": coding}, content_type="application/json"
    )
    cache = MemoryCache()
    resp, value, _client = run(fetch(httpserver.url_for("/pkg"), cache))
    assert value == {"v": 1} and resp.gzip_body == packed
    assert cache.entries[httpserver.url_for("/pkg")].gzip_body == packed


def test_a_fresh_entry_answers_from_where_a_redirect_led(httpserver: HTTPServer) -> None:
    """Relative links in a body resolve against its final URL: a fresh cache entry must give the
    same one as the answer it keeps."""
    httpserver.expect_request("/pkg").respond_with_data(
        "", status=302, headers={"Location": "/moved/deeper/pkg"}
    )
    serve_at = "/moved/deeper/pkg"
    httpserver.expect_request(serve_at).respond_with_data(
        orjson.dumps({"v": 1}), headers={"Cache-Control": "max-age=300"}
    )
    url = httpserver.url_for("/pkg")
    cache = MemoryCache()
    cold, _value, _client = run(fetch(url, cache, HONOR))
    warm, value, client = run(fetch(url, cache, HONOR))
    assert client.requests == 0 and warm.not_modified and value == {"v": 1}
    assert cold.final_url == warm.final_url == httpserver.url_for(serve_at)
    assert cache.entries[url].final_url == httpserver.url_for(serve_at)
    offline = dataclasses.replace(FAST, offline=True)
    assert run(fetch(url, cache, offline))[0].final_url == httpserver.url_for(serve_at)


def test_an_entry_that_was_not_redirected_keeps_no_second_url(httpserver: HTTPServer) -> None:
    serve(httpserver, "max-age=300")
    cache = MemoryCache()
    run(fetch(httpserver.url_for("/pkg"), cache, HONOR))
    assert cache.entries[httpserver.url_for("/pkg")].final_url is None
