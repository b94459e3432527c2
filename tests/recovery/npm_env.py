"""Shared helpers for the recovery tests: isolated npm configuration and real installs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.clients import clean_env


def npm_env(tmp: Path, registry: str) -> dict[str, str]:
    """An environment where both custody and the npm it runs use the loopback registry, with
    their own userconfig and cache (the machine's npm configuration never applies)."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    npmrc = home / "npmrc"
    npmrc.write_text(f"registry={registry}\naudit=false\nfund=false\nupdate-notifier=false\n")
    return clean_env(
        home,
        CUSTODY_NPM_REGISTRY=registry,
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp / 'ledger.sqlite3'}",
        npm_config_registry=registry,
        npm_config_userconfig=str(npmrc),
        npm_config_cache=str(home / "npm-cache"),
    )


def npm_install(project: Path, env: dict[str, str]) -> None:
    """A real ``npm install`` (downloads and extracts the tarballs into node_modules)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def locked_versions(project: Path, name: str) -> set[str]:
    """Every version of ``name`` in the lockfile, wherever npm placed it in the tree."""
    lock = json.loads((project / "package-lock.json").read_text())
    return {
        entry["version"]
        for key, entry in lock["packages"].items()
        if key == f"node_modules/{name}" or key.endswith(f"/node_modules/{name}")
    }


def installed_versions(project: Path, name: str) -> set[str]:
    """Every copy of ``name`` npm extracted into node_modules."""
    return {
        json.loads(p.read_text())["version"]
        for p in project.glob(f"node_modules/**/node_modules/{name}/package.json")
    } | {
        json.loads(p.read_text())["version"]
        for p in project.glob(f"node_modules/{name}/package.json")
    }
