"""Recovery end to end on a real Verdaccio with the real npm client: a hand-over release of
rb-kit lands in two of three projects (one directly, one through rb-wrap); ``custody check
--record`` inventories them; ``custody where`` finds both; ``custody rollback --write --relock``
pins them back to the last release by the trusted custodian; a real ``npm install`` then
installs that release."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.recovery.npm_env import installed_versions, locked_versions, npm_env, npm_install
from tests.support.clients import custody, npm_lock
from tests.support.publish import publish_npm
from tests.support.servers import Verdaccio

pytestmark = pytest.mark.registry

OLD = {f"1.0.{i}": f"2024-0{i + 1}-10T12:00:00.000Z" for i in range(6)}


@pytest.fixture(scope="module")
def registry(verdaccio: Verdaccio) -> str:
    for i in range(6):
        publish_npm(verdaccio, "rb-kit", f"1.0.{i}", publisher="alice", maintainers=["alice"])
    verdaccio.set_times("rb-kit", OLD)
    publish_npm(
        verdaccio,
        "rb-wrap",
        "1.0.0",
        publisher="bob",
        maintainers=["bob"],
        dependencies={"rb-kit": "^1.0.0"},
    )
    verdaccio.set_times("rb-wrap", {"1.0.0": "2024-03-01T12:00:00.000Z"})
    return verdaccio.url


def _handover(verdaccio: Verdaccio) -> None:
    publish_npm(verdaccio, "rb-kit", "1.0.6", publisher="mallory", maintainers=["alice", "mallory"])


def test_where_and_rollback_of_a_handover(
    registry: str, verdaccio: Verdaccio, tmp_path: Path
) -> None:
    env = npm_env(tmp_path, registry)
    home = Path(env["HOME"])
    a, b, c = (tmp_path / name for name in ("web", "worker", "batch"))
    npm_lock(a, registry, "rb-kit@1.0.5", home=home)
    npm_lock(b, registry, "rb-wrap@1.0.0", home=home)
    npm_lock(c, registry, "rb-kit@1.0.5", home=home)
    for project in (a, b, c):
        init = custody("init", cwd=project, env=env)
        assert init.code == 0, init.stderr
    assert locked_versions(b, "rb-kit") == {"1.0.5"}

    _handover(verdaccio)
    npm_lock(a, registry, "rb-kit@1.0.6", home=home)
    (b / "package-lock.json").unlink()  # a fresh resolution of rb-wrap's ^1.0.0 takes 1.0.6
    npm_lock(b, registry, "rb-wrap@1.0.0", home=home)
    assert locked_versions(a, "rb-kit") == {"1.0.6"}
    assert locked_versions(b, "rb-kit") == {"1.0.6"}

    for project, expected in ((a, 1), (b, 1), (c, 0)):
        checked = custody("check", "--record", "--project", project.name, cwd=project, env=env)
        assert checked.code == expected, checked.stdout + checked.stderr
        assert f"(project {project.name})" in checked.stderr

    found = custody("where", "npm:rb-kit@1.0.6", "--format", "json", cwd=tmp_path, env=env)
    assert found.code == 0, found.stderr
    entries = found.json()["entries"]
    assert sorted(e["project"] for e in entries) == ["web", "worker"]
    by_project = {e["project"]: e for e in entries}
    assert by_project["web"]["direct"] is True and by_project["web"]["paths"] == [["rb-kit"]]
    assert by_project["worker"]["direct"] is False
    assert by_project["worker"]["paths"] == [["rb-wrap", "rb-kit"]]
    assert by_project["web"]["lockfile"] == str((a / "package-lock.json").resolve())

    every = custody("where", "npm:rb-kit", cwd=tmp_path, env=env)
    assert every.code == 0 and "3 lockfile(s) of 3 project(s)" in every.stdout
    ranged = custody("where", "npm:rb-kit@>=1.0.6 <2", "-f", "json", cwd=tmp_path, env=env)
    assert sorted(e["project"] for e in ranged.json()["entries"]) == ["web", "worker"]
    older = custody("where", "npm:rb-kit@<1.0.6", "-f", "json", cwd=tmp_path, env=env)
    assert [e["project"] for e in older.json()["entries"]] == ["batch"]
    bad = custody("where", "npm:rb-kit@not a range!", cwd=tmp_path, env=env)
    assert bad.code == 2 and "not an npm version range" in bad.stderr

    shown = custody("rollback", "npm:rb-kit", cwd=tmp_path, env=env)
    assert shown.code == 0, shown.stdout + shown.stderr
    assert "back to 1.0.5: published by npm:user/alice" in shown.stdout
    assert '+    "rb-kit": "1.0.5"' in shown.stdout
    assert "already locks a trusted rb-kit@1.0.5" in shown.stdout  # batch
    assert locked_versions(a, "rb-kit") == {"1.0.6"}  # printing changes nothing

    rolled = custody(
        "rollback", "npm:rb-kit", "--write", "--relock", "-f", "json", cwd=tmp_path, env=env
    )
    assert rolled.code == 0, rolled.stdout + rolled.stderr
    changes = {Path(ch["lockfile"]).parent.name: ch for ch in rolled.json()["changes"]}
    assert set(changes) == {"web", "worker"}
    for change in changes.values():
        assert change["target"] == "1.0.5" and change["confirmed"] is True
    manifest_a = json.loads((a / "package.json").read_text())
    assert manifest_a["dependencies"]["rb-kit"] == "1.0.5"
    assert manifest_a["overrides"] == {"rb-kit": "1.0.5"}
    assert json.loads((b / "package.json").read_text())["overrides"] == {"rb-kit": "1.0.5"}
    assert locked_versions(a, "rb-kit") == {"1.0.5"}
    assert locked_versions(b, "rb-kit") == {"1.0.5"}

    for project in (a, b):
        shutil.rmtree(project / "node_modules", ignore_errors=True)
        npm_install(project, env)
        assert installed_versions(project, "rb-kit") == {"1.0.5"}
    assert installed_versions(b, "rb-wrap") == {"1.0.0"}

    gone = custody("where", "npm:rb-kit@1.0.6", cwd=tmp_path, env=env)
    assert gone.code == 1 and "in no recorded project" in gone.stdout
    again = custody("rollback", "npm:rb-kit", cwd=tmp_path, env=env)
    assert (
        again.code == 0 and "every recorded project already locks a trusted release" in again.stdout
    )
    for project in (a, b, c):
        assert custody("check", cwd=project, env=env).code == 0
