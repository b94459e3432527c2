"""``custody init`` end to end on packuments we shape ourselves (pytest-httpserver): releases
published through npm trusted publishing (OIDC), with and without attestations, and the
baseline's ``since`` for an older major line of the same author."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from custody.model import Custodian
from custody.trust import load_trust_file
from tests.support.clients import Result, clean_env, custody

CI = {
    "name": "GitHub Actions",
    "email": "npm-oidc-no-reply@github.com",
    "trustedPublisher": {"id": "github", "oidcConfigId": "oidc:abc"},
}


def _user(name: str) -> dict[str, str]:
    return {"name": name, "email": f"{name}@example.com"}


def _manifest(
    server: HTTPServer, name: str, version: str, npm_user: dict[str, Any], *, attest: bool = False
) -> dict[str, Any]:
    dist: dict[str, Any] = {
        "tarball": server.url_for(f"/{name}/-/{name}-{version}.tgz"),
        "shasum": "0" * 40,
    }
    if attest:
        dist["attestations"] = {
            "url": server.url_for(f"/-/npm/v1/attestations/{name}@{version}"),
            "provenance": {"predicateType": "https://slsa.dev/provenance/v1"},
        }
    return {
        "name": name,
        "version": version,
        "_npmUser": npm_user,
        "maintainers": [_user("alice")],
        "dist": dist,
    }


def _serve(
    server: HTTPServer,
    name: str,
    versions: list[tuple[str, str, dict[str, Any]]],
    *,
    attest: bool = False,
) -> None:
    """``versions``: (version, publish date, ``_npmUser``); trusted publishes carry
    attestations when ``attest``."""
    times = {v: f"{day}T00:00:00.000Z" for v, day, _ in versions}
    manifests = {
        v: _manifest(server, name, v, who, attest=attest and "trustedPublisher" in who)
        for v, _, who in versions
    }
    doc = {
        "name": name,
        "dist-tags": {"latest": versions[-1][0]},
        "maintainers": [_user("alice")],
        "time": {"created": min(times.values()), "modified": max(times.values()), **times},
        "versions": manifests,
    }
    server.expect_request(f"/{name}").respond_with_json(doc)
    for version in times:  # no bundles served: the provenance stays unverified
        server.expect_request(f"/-/npm/v1/attestations/{name}@{version}").respond_with_json(
            {"error": "not found"}, status=404
        )


def _lock(project: Path, server: HTTPServer, name: str, version: str) -> None:
    project.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {name: version}},
            f"node_modules/{name}": {
                "version": version,
                "resolved": server.url_for(f"/{name}/-/{name}-{version}.tgz"),
            },
        },
    }
    (project / "package-lock.json").write_text(json.dumps(doc, indent=1))


def _env(server: HTTPServer, tmp_path: Path) -> dict[str, str]:
    return clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=server.url_for("/"),
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )


def _check(project: Path, env: dict[str, str]) -> Result:
    return custody("check", "--no-content", "--format", "json", cwd=project, env=env)


@pytest.mark.parametrize("attest", [False, True], ids=["trusted-publishing", "with-attestations"])
def test_init_at_a_trusted_publish(httpserver: HTTPServer, tmp_path: Path, attest: bool) -> None:
    """The publisher npm records for a trusted publish is the CI system ("GitHub Actions"):
    init trusts ``npm:trusted-publisher/github`` for the package, exits 0, and the file loads
    again; the next trusted publish passes."""
    name = "tp-kit"
    _serve(
        httpserver,
        name,
        [
            ("1.0.0", "2024-01-01", _user("alice")),
            ("1.1.0", "2024-03-01", CI),
            ("1.1.1", "2024-04-01", CI),
        ],
        attest=attest,
    )
    project = tmp_path / "app"
    env = _env(httpserver, tmp_path)
    _lock(project, httpserver, name, "1.1.0")

    init = custody("init", cwd=project, env=env)
    assert init.code == 0, init.stderr
    trust = load_trust_file(project / "custody.toml")
    entries = {e.custodian: e for e in trust.trusted[f"npm:{name}"]}
    assert set(entries) == {"npm:trusted-publisher/github", "npm:user/alice"}
    assert entries["npm:trusted-publisher/github"].since is not None
    assert entries["npm:trusted-publisher/github"].since.date().isoformat() == "2024-03-01"
    assert not any("GitHub Actions" in c for c in entries)
    before = entries["npm:user/alice"].since  # from its first trusted publish on, not before
    assert trust.trusting(f"npm:{name}", Custodian("npm:trusted-publisher/github"), before) is None

    assert _check(project, env).code == 0
    asked = {r.path for r, _ in httpserver.log if "/attestations/" in r.path}
    assert bool(asked) is attest
    _lock(project, httpserver, name, "1.1.1")
    after = _check(project, env)
    assert after.code == 0, after.stdout + after.stderr
    [decision] = after.json()["decisions"]
    assert "custody.new-publisher" not in {f["rule"] for f in decision["findings"]}


def test_init_at_a_newer_major_trusts_the_same_author_on_an_older_one(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Init at 2.0.0 (alice since 2018); pinning alice's 1.0.0 later (a nested ^1 dependency,
    a rollback) is not a new publisher."""
    name = "two-major"
    _serve(
        httpserver,
        name,
        [
            ("1.0.0", "2018-01-01", _user("alice")),
            ("1.1.0", "2018-06-01", _user("alice")),
            ("2.0.0", "2020-01-01", _user("alice")),
        ],
    )
    project = tmp_path / "app"
    env = _env(httpserver, tmp_path)
    _lock(project, httpserver, name, "2.0.0")
    init = custody("init", cwd=project, env=env)
    assert init.code == 0, init.stderr
    [entry] = load_trust_file(project / "custody.toml").trusted[f"npm:{name}"]
    assert entry.custodian == "npm:user/alice" and entry.until is None
    assert entry.since is not None and entry.since.date().isoformat() == "2018-01-01"

    for version in ("1.0.0", "1.1.0"):
        _lock(project, httpserver, name, version)
        checked = _check(project, env)
        assert checked.code == 0, checked.stdout + checked.stderr
        [decision] = checked.json()["decisions"]
        assert "custody.new-publisher" not in {f["rule"] for f in decision["findings"]}


def test_a_publisher_the_trust_file_cannot_hold_is_named_with_its_package(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A publisher name no trust file can hold (white space, from a registry that allows it):
    init stops with exit 2, naming the package, and writes nothing."""
    name = "odd-kit"
    bot = _user("Build Bot")
    _serve(
        httpserver,
        name,
        [("1.0.0", "2024-01-01", bot)],
    )
    project = tmp_path / "app"
    _lock(project, httpserver, name, "1.0.0")
    init = custody("init", cwd=project, env=_env(httpserver, tmp_path))
    assert init.code == 2
    assert f"npm:{name}" in init.stderr and "npm:user/Build Bot" in init.stderr
    assert not (project / "custody.toml").exists()


def test_custody_trust_takes_a_trusted_publisher(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A package moves to trusted publishing after init: the move is held until someone trusts
    ``npm:trusted-publisher/github`` for it with ``custody trust``."""
    name = "moving-kit"
    _serve(
        httpserver,
        name,
        [
            ("1.0.0", "2024-01-01", _user("alice")),
            ("1.1.0", "2024-03-01", CI),
        ],
    )
    project = tmp_path / "app"
    env = _env(httpserver, tmp_path)
    _lock(project, httpserver, name, "1.0.0")
    assert custody("init", cwd=project, env=env).code == 0
    _lock(project, httpserver, name, "1.1.0")
    held = _check(project, env)
    assert held.code == 1, held.stdout + held.stderr
    [decision] = held.json()["decisions"]
    rules = {f["rule"]: f for f in decision["findings"]}
    assert rules["custody.new-publisher"]["evidence"]["publisher"] == "npm:trusted-publisher/github"

    pattern = custody(
        "trust", f"npm:{name}", "--custodian", "npm:trusted-publisher/*", cwd=project, env=env
    )
    assert pattern.code == 2 and "not allowed" in pattern.stderr
    trusted = custody(
        "trust", f"npm:{name}", "--custodian", "npm:trusted-publisher/github", cwd=project, env=env
    )
    assert trusted.code == 0, trusted.stderr
    after = _check(project, env)
    assert after.code == 0, after.stdout + after.stderr
