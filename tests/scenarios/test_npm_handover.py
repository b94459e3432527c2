"""The stream-kit hand-over on a real Verdaccio: alice publishes 1.0.0-1.0.5, mallory is added
as a maintainer and publishes 1.0.6. The gate holds 1.0.6 until someone approves it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.clients import clean_env, custody, npm_lock
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = pytest.mark.registry

OLD_TIMES = {f"1.0.{i}": f"2024-0{i + 1}-10T12:00:00.000Z" for i in range(6)}
HANDOVER_TIME = "2024-08-10T12:00:00.000Z"


@pytest.fixture(scope="module")
def stream_kit(verdaccio: Verdaccio) -> str:
    for i in range(6):
        publish_npm(
            verdaccio,
            "stream-kit",
            f"1.0.{i}",
            publisher="alice",
            maintainers=["alice"],
            repository="git+https://github.com/alice/stream-kit.git",
        )
    verdaccio.set_times("stream-kit", OLD_TIMES)
    publish_npm(
        verdaccio,
        "stream-kit",
        "1.0.6",
        publisher="mallory",
        maintainers=["alice", "mallory"],
        repository="git+https://github.com/alice/stream-kit.git",
    )
    # older than the cooldown: these tests are about custody, not age (release.too-new)
    verdaccio.set_times("stream-kit", {"1.0.6": HANDOVER_TIME})
    return verdaccio.url


def _findings(report: dict, key: str) -> dict[str, dict]:
    [decision] = [
        d for d in report["decisions"] if f"{d['ecosystem']}:{d['package']}@{d['version']}" == key
    ]
    return decision


def test_handover_is_held_until_approved(stream_kit: str, tmp_path: Path) -> None:
    project = tmp_path / "app"
    env = clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=stream_kit,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    npm_lock(project, stream_kit, "stream-kit@1.0.5", home=tmp_path / "home")

    init = custody("init", cwd=project, env=env)
    assert init.code == 0, init.stderr
    trust = (project / "custody.toml").read_text()
    assert "npm:user/alice" in trust and "mallory" not in trust

    baseline = custody("check", "--format", "json", cwd=project, env=env)
    assert baseline.code == 0, baseline.stdout + baseline.stderr

    npm_lock(project, stream_kit, "stream-kit@1.0.6", home=tmp_path / "home")
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    report = held.json()
    assert report["schema"] == "custody/report@1"
    decision = _findings(report, "npm:stream-kit@1.0.6")
    assert decision["action"] == "hold"
    assert decision["from_version"] == "1.0.5"
    rules = {f["rule"]: f for f in decision["findings"]}
    assert {"custody.new-publisher", "custody.new-maintainer"} <= set(rules)
    assert rules["custody.new-publisher"]["evidence"]["publisher"] == "npm:user/mallory"
    assert rules["custody.new-publisher"]["severity"] in ("high", "critical")
    assert decision["locations"][0]["path"].endswith("package-lock.json")

    text = custody("check", cwd=project, env=env)
    assert text.code == 1
    assert "HOLD" in text.stdout and "custody approve npm:stream-kit@1.0.6" in text.stdout

    approved = custody(
        "approve",
        "npm:stream-kit@1.0.6",
        "--reason",
        "mallory is the announced new maintainer",
        "--by",
        "reviewer@example.com",
        cwd=project,
        env=env,
    )
    assert approved.code == 0, approved.stderr
    after = custody("check", "--format", "json", cwd=project, env=env)
    assert after.code == 0, after.stdout + after.stderr
    assert _findings(after.json(), "npm:stream-kit@1.0.6")["approved_by"] == "reviewer@example.com"


def test_trusting_the_new_custodian_allows_the_release(stream_kit: str, tmp_path: Path) -> None:
    project = tmp_path / "app"
    env = clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=stream_kit,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    npm_lock(project, stream_kit, "stream-kit@1.0.5", home=tmp_path / "home")
    assert custody("init", cwd=project, env=env).code == 0
    npm_lock(project, stream_kit, "stream-kit@1.0.6", home=tmp_path / "home")
    assert custody("check", cwd=project, env=env).code == 1
    trusted = custody(
        "trust", "npm:stream-kit", "--custodian", "npm:user/mallory", cwd=project, env=env
    )
    assert trusted.code == 0, trusted.stderr
    assert custody("check", cwd=project, env=env).code == 0


def test_as_of_before_the_handover_sees_no_new_release(stream_kit: str, tmp_path: Path) -> None:
    """--as-of: evaluated as the world looked in mid-2024, 1.0.6 did not exist yet."""
    project = tmp_path / "app"
    env = clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=stream_kit,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    npm_lock(project, stream_kit, "stream-kit@1.0.5", home=tmp_path / "home")
    assert custody("init", cwd=project, env=env).code == 0
    history = custody(
        "history",
        "npm:stream-kit",
        "--format",
        "json",
        "--as-of",
        "2024-07-01",
        cwd=project,
        env=env,
    )
    assert history.code == 0, history.stderr
    versions = [e["version"] for e in history.json()["events"] if e["kind"] == "publish"]
    assert versions == [f"1.0.{i}" for i in range(6)]
    full = custody("history", "npm:stream-kit", cwd=project, env=env)
    assert "1.0.6 published by npm:user/mallory" in full.stdout
    assert "maintainer added: npm:user/mallory" in full.stdout
