"""PyPI recovery on a real devpi: a hash-checking requirements.txt moved to a release uploaded by
a new account is pinned back by ``custody rollback --write`` (with the trusted release's
hashes from the index) and a real, isolated ``pip install`` installs the trusted release."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.clients import clean_env, custody
from tests.support.publish import PypiRelease, publish_pypi
from tests.support.servers import Devpi

pytestmark = pytest.mark.registry


def _pin(release: PypiRelease) -> str:
    files = [release.wheel] + ([release.sdist] if release.sdist else [])
    hashes = sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)
    return (
        f"{release.name}=={release.version} \\\n"
        + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes)
        + "\n"
    )


def test_rollback_of_a_requirements_lock(devpi: Devpi, tmp_path: Path) -> None:
    devpi.create_user("rbalice")
    devpi.create_user("rbmallory")
    index = "rbalice/recovery"
    devpi.create_index(index, acl_upload=["rbalice"])
    good = publish_pypi(devpi, index, "rb-py", "1.0.0", uploader="rbalice")

    project = tmp_path / "svc"
    project.mkdir()
    env = clean_env(
        tmp_path / "home",
        CUSTODY_PYPI_INDEX=devpi.simple_url(index),
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    requirements = project / "requirements.txt"
    requirements.write_text("# pinned\n" + _pin(good) + "    # via svc\n")
    assert custody("init", cwd=project, env=env).code == 0

    devpi.set_acl_upload(index, ["rbalice", "rbmallory"])
    bad = publish_pypi(devpi, index, "rb-py", "1.0.1", uploader="rbmallory")
    requirements.write_text("# pinned\n" + _pin(bad) + "    # via svc\n")
    checked = custody("check", "--record", "-f", "json", cwd=project, env=env)
    [decision] = checked.json()["decisions"]
    assert decision["action"] == "hold", checked.stdout
    found = custody("where", "pypi:RB_py@>1.0.0", "-f", "json", cwd=tmp_path, env=env)
    assert [e["version"] for e in found.json()["entries"]] == ["1.0.1"]

    rolled = custody("rollback", "pypi:rb-py", "--write", cwd=tmp_path, env=env)
    assert rolled.code == 0, rolled.stdout + rolled.stderr
    assert "back to 1.0.0: published by pypi:user/rbalice" in rolled.stdout
    assert "confirmed" in rolled.stdout
    assert requirements.read_text() == "# pinned\n" + _pin(good) + "    # via svc\n"

    target = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "--index-url",
            devpi.simple_url(index),
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],
        env={**env, "PIP_CONFIG_FILE": "/dev/null"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in target.glob("rb_py-*.dist-info")] == ["rb_py-1.0.0.dist-info"]
    assert custody("where", "pypi:rb-py@1.0.1", cwd=tmp_path, env=env).code == 1
