"""A check trusts a packument the registry called fresh (no request), except when the cached
copy does not know a locked version: then it asks the registry again, and sees the release."""

from __future__ import annotations

from pathlib import Path

import orjson
from pytest_httpserver import HTTPServer

from custody.engine import FetchOptions, fetch
from custody.ledger import open_ledger
from custody.model import Ecosystem, LockedDependency
from custody.registries.config import resolve_settings


def packument(versions: list[str]) -> bytes:
    return orjson.dumps(
        {
            "name": "pkg",
            "versions": {
                v: {"name": "pkg", "version": v, "_npmUser": {"name": "alice"}} for v in versions
            },
            "time": {"created": "2020-01-01T00:00:00Z"}
            | {v: f"2020-01-0{i + 1}T00:00:00Z" for i, v in enumerate(versions)},
        }
    )


def locked(version: str) -> LockedDependency:
    return LockedDependency(Ecosystem.NPM, "pkg", version, direct=True)


def test_a_fresh_copy_that_lacks_the_locked_version_is_revalidated(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    headers = {"Cache-Control": "public, max-age=300"}
    httpserver.expect_oneshot_request("/pkg").respond_with_data(
        packument(["1.0.0"]), headers={**headers, "ETag": '"one"'}
    )
    httpserver.expect_request("/pkg").respond_with_data(
        packument(["1.0.0", "1.0.1"]), headers={**headers, "ETag": '"two"'}
    )
    settings = resolve_settings(
        tmp_path, httpserver.url_for("/"), None, {}, ecosystems={Ecosystem.NPM}
    )
    options = FetchOptions(content=False, attempts=1)
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        first = fetch([locked("1.0.0")], settings, ledger, options)
        assert [r.version for r in first.histories[(Ecosystem.NPM, "pkg")].releases] == ["1.0.0"]
        again = fetch([locked("1.0.0")], settings, ledger, options)  # fresh: no request
        assert len(httpserver.log) == 1
        assert again.histories == first.histories
        moved = fetch([locked("1.0.1")], settings, ledger, options)
    assert len(httpserver.log) == 2
    assert httpserver.log[-1][0].headers["If-None-Match"] == '"one"'
    history = moved.histories[(Ecosystem.NPM, "pkg")]
    assert [r.version for r in history.releases] == ["1.0.0", "1.0.1"]


def test_a_version_the_registry_does_not_have_costs_one_question_per_run(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A just-downloaded packument is as current as the registry makes it: no second request in
    the same run for a locked version it lacks; a later run asks once (then holds it as
    release.unpublished)."""
    httpserver.expect_request("/pkg").respond_with_data(
        packument(["1.0.0"]), headers={"Cache-Control": "max-age=300", "ETag": '"one"'}
    )
    settings = resolve_settings(
        tmp_path, httpserver.url_for("/"), None, {}, ecosystems={Ecosystem.NPM}
    )
    options = FetchOptions(content=False, attempts=1)
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        fetch([locked("9.9.9")], settings, ledger, options)
        assert len(httpserver.log) == 1
        fetch([locked("9.9.9")], settings, ledger, options)
        assert len(httpserver.log) == 2
