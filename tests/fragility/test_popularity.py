"""Popularity readers: recorded answers in the public services' real formats, served by a local
HTTP server through the configured URL templates and cached in the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from custody.ledger import open_ledger
from custody.model import Ecosystem
from custody.popularity import PopularitySettings, load_popularity, parse_popularity
from custody.registries.documents import BadDocument

RESPONSES = Path(__file__).parent / "responses"


def _doc(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((RESPONSES / name).read_text())
    return loaded


@pytest.mark.parametrize(
    ("name", "weekly", "dependents"),
    [
        ("npm-point-last-week.json", 28390432, None),
        ("npm-point-last-month.json", round(12900 * 7 / 30), None),
        ("npm-range-last-week.json", 38720000, None),
        ("pypistats-recent.json", 82011023, None),
        ("pypistats-overall.json", 700 + 600 + 500 + 400 + 300 + 800 + 900, None),
        ("dependents.json", None, 68902),
    ],
)
def test_real_formats_are_read(name: str, weekly: int | None, dependents: int | None) -> None:
    parsed = parse_popularity(_doc(name))
    assert parsed is not None
    got_weekly, got_dependents = parsed
    if name == "npm-range-last-week.json":
        assert got_weekly == sum(d["downloads"] for d in _doc(name)["downloads"])  # type: ignore[union-attr,index]
    else:
        assert got_weekly == weekly
    assert got_dependents == dependents


def test_unknown_package_and_garbage() -> None:
    assert parse_popularity(_doc("npm-not-found.json")) is None
    with pytest.raises(BadDocument):
        parse_popularity({"hello": "world"})
    with pytest.raises(BadDocument):
        parse_popularity([1, 2])


def _serve(httpserver: HTTPServer, path: str, name: str, status: int = 200) -> None:
    httpserver.expect_request(path).respond_with_data(
        (RESPONSES / name).read_bytes(), status=status, content_type="application/json"
    )


def test_endpoints_from_templates_cached_in_the_ledger(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    _serve(httpserver, "/downloads/point/last-week/express", "npm-point-last-week.json")
    _serve(httpserver, "/downloads/point/last-week/@babel/core", "npm-range-last-week.json")
    _serve(httpserver, "/downloads/point/last-week/no-such-package-xyz", "npm-not-found.json", 404)
    _serve(httpserver, "/api/packages/requests/recent", "pypistats-recent.json")
    _serve(httpserver, "/api/packages/tiny-lib/recent", "pypistats-overall.json")
    settings = PopularitySettings.from_env(
        {
            "CUSTODY_POPULARITY_NPM_URL": httpserver.url_for(
                "/downloads/point/last-week/{package}"
            ),
            "CUSTODY_POPULARITY_PYPI_URL": httpserver.url_for("/api/packages/{package}/recent"),
        }
    )
    packages = [
        (Ecosystem.NPM, "express"),
        (Ecosystem.NPM, "@babel/core"),
        (Ecosystem.NPM, "no-such-package-xyz"),
        (Ecosystem.PYPI, "requests"),
        (Ecosystem.PYPI, "Tiny_Lib"),  # PEP 503 normalised into the URL
    ]
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}") as ledger:
        result = load_popularity(packages, settings, ledger)
        assert result.weekly(Ecosystem.NPM, "express") == 28390432
        assert result.weekly(Ecosystem.NPM, "@babel/core") == 38720000
        assert result.weekly(Ecosystem.PYPI, "requests") == 82011023
        assert result.weekly(Ecosystem.PYPI, "Tiny_Lib") == 4200
        assert result.weekly(Ecosystem.NPM, "no-such-package-xyz") is None
        assert result.found[(Ecosystem.NPM, "express")].source == httpserver.url_for("/").rstrip(
            "/"
        )
        assert any("does not know 1 package" in n for n in result.notes)
        asked = len(httpserver.log)
        assert asked == 5
        again = load_popularity(packages, settings, ledger)  # a day's cache: no request at all
        assert again.found == result.found
        assert len(httpserver.log) == asked


def test_without_configuration_it_says_fan_in_only() -> None:
    result = load_popularity([(Ecosystem.NPM, "express")], PopularitySettings.from_env({}), None)
    assert result.found == {}
    assert result.notes == (
        "no npm popularity endpoint configured (CUSTODY_POPULARITY_NPM_URL): blast radius from "
        "fan-in within your projects only",
    )


def test_an_unreachable_endpoint_falls_back_and_says_so(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/down/express").respond_with_response(Response("oops", status=503))
    settings = PopularitySettings(urls={Ecosystem.NPM: httpserver.url_for("/down/{package}")})
    result = load_popularity(
        [(Ecosystem.NPM, "express"), (Ecosystem.NPM, "left-pad")], settings, None
    )
    assert result.found == {}
    [note] = result.notes
    assert "unreachable (HTTP 5" in note and "fan-in" in note


def test_the_cli_uses_popularity_and_tiers(httpserver: HTTPServer, tmp_path: Path) -> None:
    """custody fragile with an endpoint: downloads join the criticality and the tier."""
    from tests.support.clients import clean_env, custody

    lock = (
        Path(__file__).resolve().parents[1]
        / "fixtures"
        / "lockfiles"
        / "npm-v3"
        / "package-lock.json"
    )
    # a registry with just the packages of the fixture lockfile, all by one maintainer
    from tests.fragility.packuments import serve

    docs = {}
    for name, version in [
        ("event-stream", "3.3.5"),
        ("duplexer", "0.1.2"),
        ("from", "0.1.7"),
        ("is-number", "7.0.0"),
        ("left-pad", "1.3.0"),
        ("map-stream", "0.1.0"),
        ("pause-stream", "0.0.11"),
        ("split", "0.3.3"),
        ("stream-combiner", "0.0.4"),
        ("through", "2.3.8"),
    ]:
        docs[name] = json.dumps(
            {
                "name": name,
                "dist-tags": {"latest": version},
                "maintainers": [{"name": "solo"}],
                "time": {
                    "created": "2015-01-01T00:00:00Z",
                    "modified": "2016-01-01T00:00:00Z",
                    version: "2016-01-01T00:00:00Z",
                },
                "versions": {
                    version: {
                        "name": name,
                        "version": version,
                        "_npmUser": {"name": "solo"},
                        "maintainers": [{"name": "solo"}],
                    }
                },
            }
        ).encode()
    httpserver.expect_request("/pop/event-stream").respond_with_json(
        {
            "downloads": 2_000_000,
            "start": "2024-05-13",
            "end": "2024-05-19",
            "package": "event-stream",
        }
    )
    httpserver.expect_request("/pop/left-pad").respond_with_json(
        {"downloads": 12, "start": "2024-05-13", "end": "2024-05-19", "package": "left-pad"}
    )
    registry = serve(httpserver, docs)  # after the popularity answers: it takes every path
    env = clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=registry,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        CUSTODY_POPULARITY_NPM_URL=httpserver.url_for("/pop/{package}"),
    )
    result = custody(
        "fragile", str(lock), "-f", "json", "--as-of", "2020-01-01", cwd=tmp_path, env=env
    )
    assert result.code == 0, result.stderr
    by_name = {p["package"]: p for p in result.json()["packages"]}
    assert by_name["event-stream"]["tier"] == "critical"
    assert by_name["event-stream"]["blast"]["weekly_downloads"] == 2_000_000
    assert "2,000,000 downloads/week" in by_name["event-stream"]["criticality_basis"]
    assert by_name["left-pad"]["tier"] == "low"
    assert by_name["through"]["tier"] == "normal"  # the endpoint does not know it: fan-in only
    assert by_name["event-stream"]["rank"] < by_name["left-pad"]["rank"]
