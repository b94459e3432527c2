"""Helpers for the proxy tests: run ``custody proxy`` as a real uvicorn server in a
subprocess, in front of the session's Verdaccio and devpi (or a registry of a test's own), and
the real clients (npm, pip, uv) against it, isolated from this machine's configuration."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import clean_env
from tests.support.servers import REPO, ServerProcess, _die_with_parent, free_port

ADMIN_TOKEN = "test-admin-token-0123456789"
READY_S = 60.0


@dataclass
class Proxy:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    process: ServerProcess
    root: Path
    trust_file: Path | None
    audit_log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def npm(self) -> str:
        return f"{self.url}/npm/"

    @property
    def simple(self) -> str:
        return f"{self.url}/pypi/simple/"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0, trust_env=False)

    def admin(self, verdict: str, package: str, version: str, **extra: str) -> httpx.Response:
        body = {"package": package, "version": version, "reason": "checked", "by": "r@example.com"}
        body.update(extra)
        with self.http() as client:
            return client.post(
                f"/-/custody/{verdict}",
                json=body,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )

    def audit(self, until: Any = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The audit log's lines; with ``until``, wait (the log is written every half second)
        until ``until(lines)`` holds."""

        def read() -> list[dict[str, Any]]:
            if not self.audit_log.exists():
                return []
            text = self.audit_log.read_text()
            return [json.loads(line) for line in text.splitlines() if line]

        if until is None:
            return read()
        lines: list[dict[str, Any]] = []

        def ready() -> bool:
            nonlocal lines
            lines = read()
            return bool(until(lines))

        wait_until(ready, timeout=timeout)
        return lines

    def stop(self) -> None:
        self.process.stop()


def start_proxy(
    root: Path,
    *,
    npm: str | None = None,
    pypi: str | None = None,
    trust: str | None = None,
    database: str | None = None,
    schema: str | None = None,
    args: Sequence[str] = (),
    admin_token: str | None = ADMIN_TOKEN,
) -> Proxy:
    """Start ``python -m custody proxy`` on a free port and wait for ``/healthz``."""
    root.mkdir(parents=True, exist_ok=True)
    trust_path: Path | None = None
    if trust is not None:
        trust_path = root / "custody.toml"
        trust_path.write_text(trust)
    audit = root / "audit.jsonl"
    env = clean_env(root / "home", CUSTODY_CACHE_DIR=str(root / "cache"))
    if admin_token:
        env["CUSTODY_PROXY_ADMIN_TOKEN"] = admin_token
    argv: list[str | Path] = [sys.executable, "-m", "custody", "proxy"]
    argv += ["--database", database or f"sqlite:///{root / 'ledger.sqlite3'}"]
    if schema:
        argv += ["--database-schema", schema]
    argv += ["--npm-upstream", npm] if npm else ["--no-npm"]
    argv += ["--pypi-upstream", pypi] if pypi else ["--no-pypi"]
    if trust_path is not None:
        argv += ["--trust-file", trust_path]
    argv += ["--audit-log", audit, "--cache-dir", root / "artifacts", *args]
    deadline = time.monotonic() + READY_S
    for _attempt in range(3):
        port = free_port()
        log = root / f"proxy-{port}.log"
        proc = _spawn([*argv, "--listen", f"127.0.0.1:{port}"], root, log, env)
        url = f"http://127.0.0.1:{port}"
        if _ready(proc, url, deadline):
            return Proxy(url, proc, root, trust_path, audit, env)
        proc.stop()
        if time.monotonic() > deadline:
            break
    pytest.fail(f"custody proxy did not start:\n{proc.log_tail()}")


def _spawn(argv: Sequence[str | Path], cwd: Path, log: Path, env: dict[str, str]) -> ServerProcess:
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [str(a) for a in argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    return ServerProcess("custody-proxy", popen, log)


def _ready(proc: ServerProcess, url: str, deadline: float) -> bool:
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}/healthz").status_code == 200:
                    return True
            time.sleep(0.1)
    return False


@contextlib.contextmanager
def running_proxy(root: Path, **kw: Any) -> Iterator[Proxy]:
    proxy = start_proxy(root, **kw)
    try:
        yield proxy
    finally:
        proxy.stop()


# -- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _run(
    argv: Sequence[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 300
) -> Run:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def npm(project: Path, registry: str, *args: str, home: Path) -> Run:
    """The real npm against ``registry`` with its own config and cache (nothing from this
    machine)."""
    binary = shutil.which("npm")
    if binary is None:
        pytest.fail("npm is not on PATH")
    project.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    npmrc = home / "npmrc"
    npmrc.write_text(f"registry={registry}\naudit=false\nfund=false\nupdate-notifier=false\n")
    argv = [binary, *args, "--registry", registry, "--userconfig", str(npmrc)]
    argv += ["--cache", str(home / "npm-cache"), "--no-audit", "--no-fund"]
    return _run(argv, cwd=project, env=clean_env(home))


def package_json(project: Path, deps: dict[str, str] | None = None) -> None:
    project.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"name": "app", "version": "1.0.0", "private": True}
    if deps:
        doc["dependencies"] = deps
    (project / "package.json").write_text(json.dumps(doc) + "\n")


def installed_npm_version(project: Path, name: str) -> str:
    doc = json.loads((project / "node_modules" / name / "package.json").read_text())
    version: str = doc["version"]
    return version


def pip(index: str, *args: str, home: Path, cwd: Path) -> Run:
    """pip isolated from this machine's configuration (``--isolated`` and
    ``PIP_CONFIG_FILE=/dev/null``)."""
    env = clean_env(home, PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1")
    argv = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check"]
    argv += [*args, "--index-url", index]
    return _run(argv, cwd=cwd, env=env)


def uv(index: str, *args: str, home: Path, cwd: Path) -> Run:
    """uv with no configuration of this machine (``--no-config``, ``UV_NO_CONFIG=1``)."""
    binary = Path(sys.executable).parent / "uv"
    if not binary.exists():
        found = shutil.which("uv")
        if found is None:
            pytest.skip("uv is not installed in the venv")
        binary = Path(found)
    env = clean_env(home, UV_NO_CONFIG="1", UV_CACHE_DIR=str(home / "uv-cache"))
    argv = [binary, "pip", *args, "--no-config", "--index-url", index]
    return _run(argv, cwd=cwd, env=env)


def wait_until(check: Any, timeout: float = 15.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


__all__ = [
    "ADMIN_TOKEN",
    "REPO",
    "Proxy",
    "Run",
    "installed_npm_version",
    "npm",
    "package_json",
    "pip",
    "running_proxy",
    "start_proxy",
    "uv",
    "wait_until",
]
