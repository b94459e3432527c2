"""``custody diff`` end to end on a real Verdaccio, through the real CLI, with no trust file.

``diff-kit``: alice publishes 1.0.0; mallory is added as a maintainer and publishes 1.0.1.
``diff-kit-calm``: alice publishes 1.0.0 and 1.0.1. A lockfile moving from 1.0.0 to 1.0.1 is
held for the first (the replaced release's publisher is the baseline) and passes for the
second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import Result, clean_env, custody, npm_lock
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

from .gitrepo import commit, init_repo

pytestmark = pytest.mark.registry

TIMES = {"1.0.0": "2024-01-10T12:00:00.000Z", "1.0.1": "2024-03-10T12:00:00.000Z"}
REPOSITORY = "git+https://github.com/alice/diff-kit.git"


@pytest.fixture(scope="module")
def registry(verdaccio: Verdaccio) -> str:
    publish_npm(
        verdaccio,
        "diff-kit",
        "1.0.0",
        publisher="alice",
        maintainers=["alice"],
        repository=REPOSITORY,
    )
    publish_npm(
        verdaccio,
        "diff-kit",
        "1.0.1",
        publisher="mallory",
        maintainers=["alice", "mallory"],
        repository=REPOSITORY,
    )
    for version in ("1.0.0", "1.0.1"):
        publish_npm(
            verdaccio,
            "diff-kit-calm",
            version,
            publisher="alice",
            maintainers=["alice"],
            repository=REPOSITORY,
        )
    verdaccio.set_times("diff-kit", TIMES)
    verdaccio.set_times("diff-kit-calm", TIMES)
    return verdaccio.url


def project(tmp_path: Path, registry: str, package: str) -> tuple[Path, dict[str, str]]:
    """A git repository whose committed lockfile locks ``package@1.0.0`` and whose working
    tree locks ``1.0.1``; no custody.toml anywhere."""
    home = tmp_path / "home"
    root = init_repo(tmp_path / "app")
    npm_lock(root, registry, f"{package}@1.0.0", home=home)
    commit(root, "lock 1.0.0")
    npm_lock(root, registry, f"{package}@1.0.1", home=home)
    env = clean_env(
        home,
        CUSTODY_NPM_REGISTRY=registry,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    return root, env


def decision(result: Result, key: str) -> dict[str, Any]:
    report = result.json()
    assert report["schema"] == "custody/report@1" and report["command"] == "diff"
    [found] = [
        d for d in report["decisions"] if f"{d['ecosystem']}:{d['package']}@{d['version']}" == key
    ]
    return found


def test_handover_is_held_without_a_trust_file(registry: str, tmp_path: Path) -> None:
    root, env = project(tmp_path, registry, "diff-kit")
    assert not (root / "custody.toml").exists()
    held = custody(
        "diff", "HEAD:package-lock.json", "package-lock.json", "-f", "json", cwd=root, env=env
    )
    assert held.code == 1, held.stdout + held.stderr
    d = decision(held, "npm:diff-kit@1.0.1")
    assert (d["action"], d["from_version"]) == ("hold", "1.0.0")
    rules = {f["rule"]: f for f in d["findings"]}
    assert "custody.new-publisher" in rules
    assert rules["custody.new-publisher"]["evidence"]["publisher"] == "npm:user/mallory"
    assert "deps.new-package" not in rules
    assert d["locations"][0]["path"] == "package-lock.json" and d["locations"][0]["line"]
    assert held.json()["lockfiles"] == ["HEAD:package-lock.json", "package-lock.json"]

    sarif_path = tmp_path / "custody.sarif"
    comment = custody(
        "diff",
        "--base",
        "HEAD",
        "--format",
        "markdown",
        "--sarif-file",
        str(sarif_path),
        cwd=root,
        env=env,
    )
    assert comment.code == 1, comment.stderr
    assert comment.stdout.startswith("<!-- custody-report verdict=held -->")
    assert "`npm:user/mallory`" in comment.stdout
    assert 'custody approve npm:diff-kit@1.0.1 --reason "..."' in comment.stdout
    sarif = json.loads(sarif_path.read_text())
    results = sarif["runs"][0]["results"]
    [new_publisher] = [r for r in results if r["ruleId"] == "custody.new-publisher"]
    location = new_publisher["locations"][0]["physicalLocation"]
    assert new_publisher["level"] == "error"
    assert location["artifactLocation"]["uri"] == "package-lock.json"
    assert location["region"]["startLine"] == d["locations"][0]["line"]


def test_same_hands_pass_without_a_trust_file(registry: str, tmp_path: Path) -> None:
    root, env = project(tmp_path, registry, "diff-kit-calm")
    calm = custody(
        "diff", "HEAD:package-lock.json", "package-lock.json", "-f", "json", cwd=root, env=env
    )
    assert calm.code == 0, calm.stdout + calm.stderr
    d = decision(calm, "npm:diff-kit-calm@1.0.1")
    assert (d["action"], d["from_version"]) == ("allow", "1.0.0")
    text = custody("diff", "--base", "HEAD", cwd=root, env=env)
    assert text.code == 0, text.stdout + text.stderr
    assert "1 allowed" in text.stdout


def test_a_trust_file_trusting_the_new_publisher_allows_it(registry: str, tmp_path: Path) -> None:
    root, env = project(tmp_path, registry, "diff-kit")
    (root / "custody.toml").write_text(
        '[[trusted."npm:diff-kit"]]\ncustodian = "npm:user/mallory"\n'
    )
    result = custody("diff", "--base", "HEAD", "-f", "json", cwd=root, env=env)
    assert result.code == 0, result.stdout + result.stderr
    assert result.json()["trust_file"].endswith("custody.toml")


def test_an_unreachable_registry_is_exit_3(registry: str, tmp_path: Path) -> None:
    root, env = project(tmp_path, registry, "diff-kit-calm")
    env["CUSTODY_NPM_REGISTRY"] = "http://127.0.0.1:9/"
    result = custody("diff", "--base", "HEAD", "--timeout", "1", cwd=root, env=env)
    assert result.code == 3, result.stdout + result.stderr
    assert result.stdout == ""
