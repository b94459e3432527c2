"""Lockfile injection on real registries, through the real CLI: a package-lock.json entry that
says ``lock-kit@2.1.3`` but whose ``resolved`` is the 2.0.0 tarball (npm installs 2.0.0), or
whose ``integrity`` is another release's digest, is held (``lockfile.source-mismatch``,
``lockfile.integrity-mismatch``); the lockfile npm itself writes against the same Verdaccio
(unscoped and scoped packages) passes. The same for a requirements.txt ``--hash`` on devpi."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from custody.trust import TrustFileEditor
from tests.support.clients import Result, clean_env, custody, npm_lock
from tests.support.publish import publish_npm, publish_pypi
from tests.support.servers import Devpi, Verdaccio

pytestmark = pytest.mark.registry

TIMES = {"2.0.0": "2024-02-01T12:00:00.000Z", "2.1.3": "2024-05-01T12:00:00.000Z"}
SCOPED = "@lockscope/kit"


@pytest.fixture(scope="module")
def registry(verdaccio: Verdaccio) -> str:
    """lock-kit 2.0.0 and 2.1.3, @lockscope/kit 1.0.0 and 1.0.1, all by alice, older than the
    cooldown (these tests are about the lockfile, not age)."""
    for name, versions in (("lock-kit", ("2.0.0", "2.1.3")), (SCOPED, ("1.0.0", "1.0.1"))):
        for version in versions:
            publish_npm(
                verdaccio,
                name,
                version,
                publisher="alice",
                maintainers=["alice"],
                files={"index.js": f"module.exports = {version!r};\n".encode()},
            )
    verdaccio.set_times("lock-kit", TIMES)
    verdaccio.set_times(
        SCOPED, {"1.0.0": "2024-02-01T12:00:00.000Z", "1.0.1": "2024-05-01T12:00:00.000Z"}
    )
    return verdaccio.url


def _project(tmp_path: Path, registry: str) -> tuple[Path, dict[str, str], dict[str, Any]]:
    """A project locked by npm at lock-kit@2.1.3 and @lockscope/kit@1.0.1, with custody.toml
    written by ``custody init``; also returns 2.0.0's own lockfile entry."""
    home = tmp_path / "home"
    env = clean_env(
        home,
        CUSTODY_NPM_REGISTRY=registry,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    other = npm_lock(tmp_path / "old", registry, "lock-kit@2.0.0", home=home)
    old_entry = other["packages"]["node_modules/lock-kit"]
    project = tmp_path / "app"
    npm_lock(project, registry, "lock-kit@2.1.3", f"{SCOPED}@1.0.1", home=home)
    init = custody("init", cwd=project, env=env)
    assert init.code == 0, init.stdout + init.stderr
    return project, env, old_entry


def _edit_entry(project: Path, **fields: str) -> None:
    path = project / "package-lock.json"
    lock = json.loads(path.read_text())
    lock["packages"]["node_modules/lock-kit"].update(fields)
    path.write_text(json.dumps(lock, indent=2) + "\n")


def _decision(result: Result, package: str) -> dict[str, Any]:
    [decision] = [d for d in result.json()["decisions"] if d["package"] == package]
    return decision


def _rules(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["rule"]: f for f in decision["findings"]}


def test_the_lockfile_npm_writes_passes(registry: str, tmp_path: Path) -> None:
    """No false positive on the tarball URLs Verdaccio serves and npm writes (scoped too)."""
    project, env, _old = _project(tmp_path, registry)
    lock = json.loads((project / "package-lock.json").read_text())
    scoped = lock["packages"][f"node_modules/{SCOPED}"]
    assert scoped["resolved"].startswith(registry) and scoped["integrity"].startswith("sha512-")
    clean = custody("check", "--format", "json", cwd=project, env=env)
    assert clean.code == 0, clean.stdout + clean.stderr
    for decision in clean.json()["decisions"]:
        assert not any(f["rule"].startswith("lockfile.") for f in decision["findings"])


def test_resolved_pointing_at_another_versions_tarball_is_held(
    registry: str, tmp_path: Path
) -> None:
    """The bug hunt's injection: version 2.1.3, the 2.0.0 tarball and its integrity (what
    ``npm ci`` would install without complaint)."""
    project, env, old = _project(tmp_path, registry)
    _edit_entry(project, resolved=old["resolved"], integrity=old["integrity"])
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    decision = _decision(held, "lock-kit")
    assert decision["version"] == "2.1.3" and decision["action"] == "hold"
    rules = _rules(decision)
    source = rules["lockfile.source-mismatch"]
    assert source["severity"] == "high"
    assert source["evidence"]["reason"] == "other-version"
    assert source["evidence"]["resolved"] == old["resolved"]
    assert source["evidence"]["expected"].endswith("/lock-kit/-/lock-kit-2.1.3.tgz")
    assert rules["lockfile.integrity-mismatch"]["severity"] == "critical"
    assert _decision(held, SCOPED)["action"] == "allow"

    text = custody("check", cwd=project, env=env)
    assert text.code == 1 and "lockfile.source-mismatch" in text.stdout


def test_resolved_alone_pointing_at_another_host_is_held(registry: str, tmp_path: Path) -> None:
    project, env, _old = _project(tmp_path, registry)
    _edit_entry(project, resolved="https://evil.example.invalid/lock-kit-2.1.3.tgz")
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    rules = _rules(_decision(held, "lock-kit"))
    assert set(rules) >= {"lockfile.source-mismatch"}
    assert "lockfile.integrity-mismatch" not in rules


def test_a_swapped_integrity_is_held(registry: str, tmp_path: Path) -> None:
    project, env, old = _project(tmp_path, registry)
    _edit_entry(project, integrity=old["integrity"])
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    decision = _decision(held, "lock-kit")
    rules = _rules(decision)
    assert "lockfile.source-mismatch" not in rules
    finding = rules["lockfile.integrity-mismatch"]
    assert finding["severity"] == "critical"
    assert finding["evidence"]["integrity"] == old["integrity"]
    assert finding["evidence"]["algorithm"] == "sha512"


def test_a_requirements_hash_of_no_file_of_the_release_is_held(
    devpi: Devpi, tmp_path: Path
) -> None:
    """PyPI: a ``--hash`` of any of the release's files (wheel or sdist) passes; the hash of
    another release's file is held."""
    devpi.create_user("lockie")
    index = "lockie/lockfile"
    devpi.create_index(index, acl_upload=["lockie"])
    good = publish_pypi(devpi, index, "lock-kit", "2.1.3", uploader="lockie")
    old = publish_pypi(devpi, index, "lock-kit", "2.0.0", uploader="lockie")
    assert good.sdist is not None and old.sdist is not None

    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    project = tmp_path / "app"
    project.mkdir()
    env = clean_env(
        tmp_path / "home",
        CUSTODY_PYPI_INDEX=devpi.simple_url(index),
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    requirements = project / "requirements.txt"
    requirements.write_text(f"lock-kit==2.1.3 --hash=sha256:{sha256(good.wheel)}\n")
    assert custody("init", cwd=project, env=env).code == 0
    editor = TrustFileEditor.open(project / "custody.toml")
    editor.set_policy("cooldown", "0")  # devpi stamps uploads with its own clock
    editor.save()
    assert custody("check", cwd=project, env=env).code == 0
    requirements.write_text(f"lock-kit==2.1.3 --hash=sha256:{sha256(good.sdist)}\n")
    passed = custody("check", cwd=project, env=env)
    assert passed.code == 0, passed.stdout + passed.stderr

    requirements.write_text(f"lock-kit==2.1.3 --hash=sha256:{sha256(old.wheel)}\n")
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    finding = _rules(_decision(held, "lock-kit"))["lockfile.integrity-mismatch"]
    assert finding["evidence"]["locked"] == f"sha256:{sha256(old.wheel)}"
    assert finding["evidence"]["compared_artifacts"] == 2


def test_a_trusted_package_taken_from_git_is_held(registry: str, tmp_path: Path) -> None:
    """The entry of a package the trust file knows is rewritten to come from git: npm would
    install whatever that repository holds, and a git entry has no registry custody to judge.
    Held, not a run warning; the JSON still validates (the version says where it comes from)."""
    project, env, _old = _project(tmp_path, registry)
    _edit_entry(project, resolved="git+https://example.invalid/evil/lock-kit.git#deadbeef")
    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    decision = _decision(held, "lock-kit")
    assert decision["action"] == "hold" and decision["version"] == "(git)"
    [finding] = decision["findings"]
    assert finding["rule"] == "lockfile.source-mismatch"
    assert finding["evidence"]["reason"] == "not-a-registry-url"
