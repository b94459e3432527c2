"""The same hand-over on a real devpi: alice owns the index and uploads 1.0.0; between two runs
mallory is given upload rights (an owner role change only Custody's observations can see) and
uploads 1.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from custody.trust import TrustFileEditor
from tests.support.clients import clean_env, custody
from tests.support.publish import publish_pypi
from tests.support.servers import Devpi

pytestmark = pytest.mark.registry


def test_owner_change_between_runs_is_held(devpi: Devpi, tmp_path: Path) -> None:
    devpi.create_user("alice")
    devpi.create_user("mallory")
    index = "alice/handover"
    devpi.create_index(index, acl_upload=["alice"])
    publish_pypi(devpi, index, "stream-kit", "1.0.0", uploader="alice")

    project = tmp_path / "app"
    project.mkdir()
    env = clean_env(
        tmp_path / "home",
        CUSTODY_PYPI_INDEX=devpi.simple_url(index),
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    (project / "requirements.txt").write_text("stream-kit==1.0.0\n")
    init = custody("init", cwd=project, env=env)
    assert init.code == 0, init.stderr
    assert "pypi:user/alice" in (project / "custody.toml").read_text()
    # devpi stamps uploads with its own clock: no cooldown, this test is about custody
    editor = TrustFileEditor.open(project / "custody.toml")
    editor.set_policy("cooldown", "0")
    editor.save()
    assert custody("check", cwd=project, env=env).code == 0

    devpi.set_acl_upload(index, ["alice", "mallory"])
    publish_pypi(
        devpi,
        index,
        "stream-kit",
        "1.0.1",
        uploader="mallory",
        requires_dist=["flatmap-stream>=0.1"],
    )
    (project / "requirements.txt").write_text("stream-kit==1.0.1\n")

    held = custody("check", "--format", "json", cwd=project, env=env)
    assert held.code == 1, held.stdout + held.stderr
    [decision] = held.json()["decisions"]
    assert decision["package"] == "stream-kit" and decision["action"] == "hold"
    rules = {f["rule"]: f for f in decision["findings"]}
    assert rules["custody.new-publisher"]["evidence"]["publisher"] == "pypi:user/mallory"
    owner = rules["custody.new-maintainer"]
    assert owner["evidence"]["maintainer"] == "pypi:user/mallory"
    assert owner["evidence"]["source"] == "ledger observations"

    history = custody("history", "pypi:stream-kit", cwd=project, env=env)
    assert "Custody first saw owner pypi:user/mallory" in history.stdout

    assert (
        custody(
            "approve",
            "pypi:stream-kit@1.0.1",
            "--reason",
            "checked",
            "--by",
            "r@example.com",
            cwd=project,
            env=env,
        ).code
        == 0
    )
    assert custody("check", cwd=project, env=env).code == 0
