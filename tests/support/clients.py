"""Run the real clients a user would: the ``custody`` CLI, ``npm`` and ``pip``, isolated from
this machine's own configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment minus npm/pip/custody settings of this machine, with a private HOME."""
    drop = ("NPM_CONFIG_", "PIP_", "CUSTODY_", "UV_")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), PIP_CONFIG_FILE=os.devnull, NO_COLOR="1", COLUMNS="200")
    env.update(extra)
    return env


def project_env(project: Path, registry: str = "http://127.0.0.1:9/") -> dict[str, str]:
    """``clean_env`` for a project folder: its npm registry (by default a port nobody answers
    on) and a ledger of its own beside it."""
    return clean_env(
        project.parent / "home",
        CUSTODY_NPM_REGISTRY=registry,
        CUSTODY_DATABASE_URL=f"sqlite:///{project.parent / 'ledger.sqlite3'}",
    )


def custody(*args: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> Result:
    """The real CLI in a subprocess (``python -m custody``), as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "custody", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def npm_lock(project: Path, registry: str, *specs: str, home: Path) -> dict[str, Any]:
    """``npm install --package-lock-only SPEC...`` against ``registry``; returns the lockfile."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH")
    project.mkdir(parents=True, exist_ok=True)
    if not (project / "package.json").exists():
        (project / "package.json").write_text('{"name": "app", "version": "1.0.0"}\n')
    npmrc = home / "npmrc"
    home.mkdir(parents=True, exist_ok=True)
    npmrc.write_text(f"registry={registry}\naudit=false\nfund=false\nupdate-notifier=false\n")
    argv = [npm, "install", "--package-lock-only", "--save-exact", *specs]
    argv += ["--registry", registry, "--userconfig", str(npmrc), "--cache", str(home / "npm-cache")]
    env = clean_env(home)
    done = subprocess.run(
        argv, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"npm failed ({done.returncode}): {done.stderr[-3000:]}")
    lock: dict[str, Any] = json.loads((project / "package-lock.json").read_text())
    return lock
