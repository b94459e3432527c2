"""Change review on a real Verdaccio, through the real CLI: a hand-over patch that adds a
brand-new dependency, a worm-like publish burst, and a known-malicious release.

Times are backdated with ``Verdaccio.set_times`` where a test is not about age, so that the
cooldown (``release.too-new``) does not hide what each test checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.signals.osv_records import mal
from tests.support.clients import Result, clean_env, custody, npm_lock
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = pytest.mark.registry

BURST = [f"burst-{c}" for c in "abcdef"]


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _env(tmp_path: Path, registry: str) -> dict[str, str]:
    return clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=registry,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )


def _decisions(result: Result) -> dict[str, dict[str, Any]]:
    return {d["package"]: d for d in result.json()["decisions"]}


def _rules(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["rule"]: f for f in decision["findings"]}


# -- a hand-over patch that adds a brand-new dependency ------------------------------------------

HANDOVER_AT = datetime.now(UTC) - timedelta(days=4)


@pytest.fixture(scope="module")
def patchy(verdaccio: Verdaccio) -> str:
    """pat publishes patchy 1.0.0-1.0.3 through 2024; four days ago "quill" publishes a
    brand-new package, patchy-stream, is made a maintainer of patchy and publishes 1.0.4, a
    patch that depends on it."""
    for i in range(4):
        publish_npm(verdaccio, "patchy", f"1.0.{i}", publisher="pat", maintainers=["pat"])
    verdaccio.set_times("patchy", {f"1.0.{i}": f"2024-0{i + 1}-15T09:00:00.000Z" for i in range(4)})
    publish_npm(verdaccio, "patchy-stream", "0.1.0", publisher="quill", maintainers=["quill"])
    verdaccio.set_times("patchy-stream", {"0.1.0": _iso(HANDOVER_AT - timedelta(hours=1))})
    publish_npm(
        verdaccio,
        "patchy",
        "1.0.4",
        publisher="quill",
        maintainers=["pat", "quill"],
        dependencies={"patchy-stream": "^0.1.0"},
    )
    verdaccio.set_times("patchy", {"1.0.4": _iso(HANDOVER_AT)})
    return verdaccio.url


def test_handover_patch_adding_a_brand_new_dependency_is_held(patchy: str, tmp_path: Path) -> None:
    project, env = tmp_path / "app", _env(tmp_path, patchy)
    npm_lock(project, patchy, "patchy@1.0.3", home=tmp_path / "home")
    assert custody("init", cwd=project, env=env).code == 0
    first = custody("check", cwd=project, env=env)
    assert first.code == 0, first.stdout + first.stderr  # locked releases older than the cooldown

    lock = npm_lock(project, patchy, "patchy@1.0.4", home=tmp_path / "home")
    assert "node_modules/patchy-stream" in lock["packages"]
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    decisions = _decisions(held)

    parent = decisions["patchy"]
    assert parent["action"] == "hold" and parent["from_version"] == "1.0.3"
    rules = _rules(parent)
    assert {"custody.new-publisher", "deps.added-in-patch"} <= set(rules)
    assert "release.too-new" not in rules  # four days old
    added = rules["deps.added-in-patch"]
    assert added["evidence"]["bump"] == "patch"
    assert added["severity"] in ("high", "critical")
    [dep] = added["evidence"]["added"]
    assert dep["name"] == "patchy-stream" and dep["new_to_tree"] is True

    child = decisions["patchy-stream"]
    assert child["action"] == "hold"
    new = _rules(child)["deps.new-package"]
    assert new["severity"] == "critical"
    assert new["evidence"]["parent_takeover"][0]["publisher"] == "npm:user/quill"
    assert new["evidence"]["releases"] == 1

    # --as-of an hour after the hand-over: the patch was also too new then
    as_of = _iso(HANDOVER_AT + timedelta(hours=1))
    then = custody("check", "--format", "json", "--as-of", as_of, cwd=project, env=env)
    assert then.code == 1
    too_new = _rules(_decisions(then)["patchy"])["release.too-new"]
    assert too_new["severity"] == "medium"
    assert too_new["evidence"]["cooldown_hours"] == 48.0
    assert 0.9 < too_new["evidence"]["age_hours"] < 1.1


# -- a burst across several packages of one publisher --------------------------------------------


@pytest.fixture(scope="module")
def burst(verdaccio: Verdaccio) -> str:
    """victim's six packages, each released on its own in 2024; then all six republished
    within a minute."""
    for i, name in enumerate(BURST):
        publish_npm(verdaccio, name, "1.0.0", publisher="victim", maintainers=["victim"])
        verdaccio.set_times(name, {"1.0.0": f"2024-0{i + 1}-20T10:00:00.000Z"})
    return verdaccio.url


def test_a_publish_burst_is_held(burst: str, verdaccio: Verdaccio, tmp_path: Path) -> None:
    project, env = tmp_path / "app", _env(tmp_path, burst)
    npm_lock(project, burst, *(f"{n}@1.0.0" for n in BURST), home=tmp_path / "home")
    assert custody("init", cwd=project, env=env).code == 0
    first = custody("check", "--format", "json", cwd=project, env=env)
    assert first.code == 0, first.stdout

    for name in BURST:  # the worm: every package of its victim, within seconds
        publish_npm(
            verdaccio,
            name,
            "1.0.1",
            publisher="victim",
            maintainers=["victim"],
            scripts={"postinstall": "node bundle.js"},
        )
    npm_lock(project, burst, *(f"{n}@1.0.1" for n in BURST), home=tmp_path / "home")
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    for name, decision in _decisions(held).items():
        assert decision["action"] == "hold", name
        finding = _rules(decision)["custody.publish-burst"]
        assert finding["severity"] == "critical"  # a first burst that adds install scripts
        evidence = finding["evidence"]
        assert evidence["publisher"] == "npm:user/victim"
        assert evidence["count"] == len(BURST)
        assert {p["package"] for p in evidence["packages"]} == set(BURST)
        assert evidence["added_install_scripts"] == ["postinstall"]


# -- a known-malicious release --------------------------------------------------------------------


def test_a_known_malicious_release_is_blocked(verdaccio: Verdaccio, tmp_path: Path) -> None:
    for i in range(3):
        publish_npm(
            verdaccio, "tainted-kit", f"2.0.{i}", publisher="tainter", maintainers=["tainter"]
        )
    verdaccio.set_times(
        "tainted-kit", {f"2.0.{i}": f"2024-0{i + 2}-01T00:00:00.000Z" for i in range(3)}
    )
    project, env = tmp_path / "app", _env(tmp_path, verdaccio.url)
    npm_lock(project, verdaccio.url, "tainted-kit@2.0.2", home=tmp_path / "home")
    assert custody("init", cwd=project, env=env).code == 0
    assert custody("check", cwd=project, env=env).code == 0

    records = tmp_path / "osv" / "malicious" / "npm" / "tainted-kit"
    records.mkdir(parents=True)
    record = mal(
        "MAL-2024-4242", "npm", "tainted-kit", versions=["2.0.2"], published="2024-03-05T00:00:00Z"
    )
    (records / "MAL-2024-4242.json").write_text(json.dumps(record))
    imported = custody("db", "update", "--from", str(tmp_path / "osv"), cwd=project, env=env)
    assert imported.code == 0, imported.stderr
    assert "1 malicious-package records" in imported.stderr

    blocked = custody("check", "--format", "json", cwd=project, env=env)
    assert blocked.code == 1, blocked.stdout + blocked.stderr
    decision = _decisions(blocked)["tainted-kit"]
    assert decision["action"] == "block"
    finding = _rules(decision)["known.malicious"]
    assert finding["evidence"]["id"] == "MAL-2024-4242"
    assert finding["evidence"]["matched"] == "version"
    # an approval cannot let a known-malicious release through
    custody(
        "approve", "npm:tainted-kit@2.0.2", "--reason", "x", "--by", "r@e.com", cwd=project, env=env
    )
    assert (
        _decisions(custody("check", "--format", "json", cwd=project, env=env))["tainted-kit"][
            "action"
        ]
        == "block"
    )
    # the release before it is not named
    npm_lock(project, verdaccio.url, "tainted-kit@2.0.1", home=tmp_path / "home")
    assert custody("check", cwd=project, env=env).code == 0
