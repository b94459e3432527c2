"""Content review through the real CLI on a real Verdaccio: the same account that always
published a package appends a minified, encoded blob to index.js (chalk/debug 2025), or adds a
preinstall script (ua-parser-js). ``custody diff`` downloads both tarballs, compares their files
without running anything and holds the release."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import clean_env, custody, npm_lock
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = pytest.mark.registry

INDEX = (
    b"'use strict';\nmodule.exports = function pad(s, n) {\n  return String(s).padStart(n);\n};\n"
)
PAYLOAD = base64.b64encode(bytes(range(256)) * 12).decode()
APPENDED = (
    INDEX
    + (
        ";(function(){var _0x1a=['" + PAYLOAD + "'];var b=Buffer.from(_0x1a[0],'base64')"
        ".toString();eval(b)})();\n"
    ).encode()
)


def _publish(verdaccio: Verdaccio, name: str, second: dict[str, Any]) -> None:
    publish_npm(
        verdaccio,
        name,
        "2.0.0",
        publisher="carol",
        maintainers=["carol"],
        files={"index.js": INDEX},
    )
    publish_npm(verdaccio, name, "2.0.1", publisher="carol", maintainers=["carol"], **second)
    verdaccio.set_times(
        name, {"2.0.0": "2024-03-01T10:00:00.000Z", "2.0.1": "2024-06-01T10:00:00.000Z"}
    )


def _env(verdaccio: Verdaccio, tmp_path: Path) -> dict[str, str]:
    return clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=verdaccio.url,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}",
        CUSTODY_CACHE_DIR=str(tmp_path / "cache"),
    )


def _diff(verdaccio: Verdaccio, tmp_path: Path, name: str) -> dict[str, Any]:
    home = tmp_path / "home"
    env = _env(verdaccio, tmp_path)
    project = tmp_path / "app"
    npm_lock(project, verdaccio.url, f"{name}@2.0.0", home=home)
    (tmp_path / "old-lock.json").write_text((project / "package-lock.json").read_text())
    npm_lock(project, verdaccio.url, f"{name}@2.0.1", home=home)
    result = custody(
        "diff",
        str(tmp_path / "old-lock.json"),
        "package-lock.json",
        "--format",
        "json",
        cwd=project,
        env=env,
    )
    assert result.code == 1, result.stdout + result.stderr
    [decision] = [d for d in result.json()["decisions"] if d["package"] == name]
    assert decision["action"] == "hold" and decision["from_version"] == "2.0.0"
    return {f["rule"]: f for f in decision["findings"]}


def test_appended_obfuscated_code_is_held(verdaccio: Verdaccio, tmp_path: Path) -> None:
    _publish(verdaccio, "cr-pad", {"files": {"index.js": APPENDED}})
    rules = _diff(verdaccio, tmp_path, "cr-pad")
    finding = rules["content.obfuscated"]
    assert finding["severity"] in ("high", "critical")
    assert "index.js" in finding["message"]
    assert "custody.new-publisher" not in rules  # same account: only the files tell


def test_added_preinstall_is_held(verdaccio: Verdaccio, tmp_path: Path) -> None:
    _publish(
        verdaccio,
        "cr-hook",
        {"files": {"index.js": INDEX}, "scripts": {"preinstall": "node setup.js"}},
    )
    rules = _diff(verdaccio, tmp_path, "cr-hook")
    assert rules["scripts.install-added"]["severity"] in ("high", "critical")
    assert "node setup.js" in rules["scripts.install-added"]["message"]


def test_check_reviews_the_files_of_a_recent_release_without_findings(
    verdaccio: Verdaccio, tmp_path: Path
) -> None:
    """``custody check``: the trusted account's release three days ago (past the cooldown)
    changes nothing but index.js. No custody, dependency or script finding, so only its files
    can tell: a release that recent has them compared anyway (``engine.RECENT_REVIEW``)."""
    from datetime import UTC, datetime, timedelta

    name = "cr-recent"
    publish_npm(
        verdaccio,
        name,
        "2.0.0",
        publisher="carol",
        maintainers=["carol"],
        files={"index.js": INDEX},
    )
    publish_npm(
        verdaccio, name, "2.0.1", publisher="carol", maintainers=["carol"],
        files={"index.js": APPENDED},
    )  # fmt: skip
    now = datetime.now(UTC)
    stamp = "{:%Y-%m-%dT%H:%M:%S.000Z}".format
    verdaccio.set_times(
        name,
        {"2.0.0": stamp(now - timedelta(days=100)), "2.0.1": stamp(now - timedelta(days=3))},
    )
    home = tmp_path / "home"
    env = _env(verdaccio, tmp_path)
    project = tmp_path / "app"
    npm_lock(project, verdaccio.url, f"{name}@2.0.1", home=home)
    (project / "custody.toml").write_text(
        f'[[trusted."npm:{name}"]]\ncustodian = "npm:user/carol"\n'
    )
    result = custody("check", "--format", "json", cwd=project, env=env)
    assert result.code == 1, result.stdout + result.stderr
    [decision] = [d for d in result.json()["decisions"] if d["package"] == name]
    rules = {f["rule"] for f in decision["findings"]}
    assert "content.obfuscated" in rules and "custody.new-publisher" not in rules
