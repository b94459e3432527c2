"""Real registry servers on loopback for the tests: Verdaccio (npm) and devpi-server (PyPI).

Loaded as a pytest plugin by ``tests/conftest.py``. Fixtures (session-scoped):

``verdaccio`` -> :class:`Verdaccio`
    ``.url`` (``http://127.0.0.1:PORT/``), ``.add_user(name, password=None) -> token``,
    ``.token(name)``, ``.auth_headers(name)``, ``.packument(name)``,
    ``.write_npmrc(path, user=None)``, ``.set_times(name, {version: iso})``,
    ``.package_url(name)``, ``.host_key``, ``.root``, ``.log_path``.
    Config: no uplinks (nothing is proxied to any outside registry), storage in a temp dir,
    ``max_body_size`` 512mb, reading open to all, publishing to authenticated users, users in an
    htpasswd file with unlimited self-registration.

``devpi`` -> :class:`Devpi`
    ``.url`` (server root, ``http://127.0.0.1:PORT/``), ``.create_user(name, password)``,
    ``.login(name) -> headers``, ``.create_index("user/index", acl_upload=[...])``,
    ``.set_acl_upload("user/index", [...])``, ``.index_config(...)``,
    ``.upload("user/index", path, user=...)``, ``.project_json("user/index", name)``,
    ``.simple_url("user/index")``, ``.index_url("user/index")``, ``.client(*args)``.
    Started with ``devpi-init --no-root-pypi`` and ``devpi-server --offline-mode
    --enable-core-metadata`` (the latter serves PEP 658 ``.metadata`` files for wheels).

Both servers live for the whole session and are shared by every test: use package and index
names of your own. Each runs in its own process group in a temp directory, is polled over HTTP
until ready (with a deadline; on failure the test fails with the server's log tail) and is
killed with its group at the end of the session. The tools come from ``.tools/``
(``bash scripts/install-test-tools.sh``). When they are missing the tests are skipped, unless
the environment variable ``CI`` is set: then a missing tool is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools"
VERDACCIO_BIN = TOOLS / "node" / "node_modules" / ".bin" / "verdaccio"
DEVPI_BIN = TOOLS / "devpi-venv" / "bin"
INSTALL_HINT = "run `bash scripts/install-test-tools.sh`"

START_DEADLINE_S = 60.0
STOP_GRACE_S = 10.0
START_ATTEMPTS = 3
HTTP_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- processes


def require_tool(path: Path) -> Path:
    """Return ``path`` if it is an installed executable; otherwise skip (or fail under CI)."""
    if path.is_file() and os.access(path, os.X_OK):
        return path
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    message = f"{shown} is not installed: {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so a missing test tool is a failure)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: new process group, and SIGKILL when pytest itself dies."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


@dataclass
class ServerProcess:
    """A server started in its own process group, logging to ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the whole process group; kill it if it does not go in time."""
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=STOP_GRACE_S)
        # Whatever the leader did, make sure nothing of the group is left behind.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_GRACE_S)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


def run_checked(argv: Sequence[str | Path], *, cwd: Path, what: str) -> None:
    """Run a short setup command; fail the test with its output when it fails."""
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{what} failed with exit {done.returncode}:\n{done.stdout}\n{done.stderr}")


def _spawn(name: str, argv: Sequence[str | Path], cwd: Path, log_path: Path) -> ServerProcess:
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [str(a) for a in argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # setsid + PDEATHSIG: no orphans even if pytest is killed
        )
    return ServerProcess(name, popen, log_path)


def _wait_ready(proc: ServerProcess, ready_url: str, deadline: float) -> bool:
    """Poll ``ready_url`` until it answers 200; False if the process exits or time runs out."""
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if client.get(ready_url, headers={"accept": "application/json"}).is_success:
                    return proc.popen.poll() is None
            time.sleep(0.1)
    return False


def start_server(
    name: str,
    make_argv: Callable[[int], Sequence[str | Path]],
    *,
    cwd: Path,
    ready_path: str,
) -> tuple[ServerProcess, int]:
    """Start a server on a free loopback port and wait until ``ready_path`` answers.

    Retries on a fresh port when the process exits early (e.g. a port taken in between);
    fails the test with the log tail when it never becomes ready.
    """
    log_path = cwd / f"{name}.log"
    deadline = time.monotonic() + START_DEADLINE_S
    for _attempt in range(START_ATTEMPTS):
        port = free_port()
        proc = _spawn(name, make_argv(port), cwd, log_path)
        if _wait_ready(proc, f"http://127.0.0.1:{port}{ready_path}", deadline):
            return proc, port
        exited_early = proc.popen.poll() is not None
        proc.stop()
        if not exited_early or time.monotonic() >= deadline:
            break
    pytest.fail(f"{name} did not become ready; log tail ({log_path}):\n{proc.log_tail()}")


@contextlib.contextmanager
def running(proc: ServerProcess) -> Iterator[ServerProcess]:
    try:
        yield proc
    finally:
        proc.stop()


def _raise_for_status(response: httpx.Response, what: str) -> httpx.Response:
    if response.is_error:
        raise AssertionError(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
    return response


# --------------------------------------------------------------------------- Verdaccio

VERDACCIO_CONFIG = """\
# Written by tests/support/servers.py. No uplinks: nothing is proxied to an outside registry.
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    # max_users left unset: unlimited self-registration (-1 would disable it)
uplinks: {{}}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
max_body_size: 512mb
server:
  keepAliveTimeout: 60
web:
  enable: false
log: {{ type: stdout, format: pretty, level: warn }}
"""


@dataclass
class Verdaccio:
    """A running Verdaccio: an npm registry with no uplinks."""

    url: str
    """Registry root with a trailing slash, e.g. ``http://127.0.0.1:4873/``."""
    root: Path
    """Temp directory holding config, storage, htpasswd and the log."""
    log_path: Path
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def host_key(self) -> str:
        """The ``.npmrc`` key prefix for this registry, e.g. ``//127.0.0.1:4873/``."""
        return "//" + self.url.split("://", 1)[1]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT_S, trust_env=False)

    def add_user(self, name: str, password: str | None = None) -> str:
        """Create user ``name`` (or log in if it exists) and return its bearer token."""
        if name in self.tokens:
            return self.tokens[name]
        password = password or f"pw-{name}-secret"
        url = f"-/user/org.couchdb.user:{quote(name, safe='')}"
        body = {"name": name, "password": password, "email": f"{name}@example.com"}
        with self.http() as client:
            response = client.put(url, json=body)
            if response.status_code == 409:  # already registered: log in with basic auth
                response = client.put(url, json=body, auth=(name, password))
        _raise_for_status(response, f"verdaccio add_user {name}")
        token: str = response.json()["token"]
        self.passwords[name] = password
        self.tokens[name] = token
        return token

    def token(self, name: str) -> str:
        """The bearer token of ``name``, creating the user when needed."""
        return self.add_user(name)

    def auth_headers(self, name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(name)}"}

    def package_url(self, name: str) -> str:
        """URL of a package document; scoped names keep ``@`` and escape the slash."""
        return self.url + quote(name, safe="@")

    def packument(self, name: str) -> dict[str, Any]:
        """The full packument as any npm client would read it."""
        with self.http() as client:
            response = client.get(self.package_url(name), headers={"accept": "application/json"})
        doc: dict[str, Any] = _raise_for_status(response, f"GET {name}").json()
        return doc

    def set_times(self, name: str, times: Mapping[str, str]) -> None:
        """Backdate ``time`` entries (``{"1.0.0": "2018-09-09T00:00:00.000Z", ...}``).

        Verdaccio ignores ``time`` in publish requests and stamps its own clock, so a test that
        needs a history (``--as-of``, age rules) rewrites the stored document; reads see it at once.
        """
        stored = self.root / "storage" / name / "package.json"
        document = json.loads(stored.read_text())
        document["time"].update(times)
        stored.write_text(json.dumps(document, indent=2))

    def write_npmrc(self, path: Path, user: str | None = None) -> Path:
        """Write an npm userconfig that points at this registry (with ``user``'s token)."""
        lines = [f"registry={self.url}", "audit=false", "fund=false", "update-notifier=false"]
        if user is not None:
            lines.append(f"{self.host_key}:_authToken={self.token(user)}")
        path.write_text("\n".join(lines) + "\n")
        return path


def start_verdaccio(root: Path) -> Iterator[Verdaccio]:
    binary = require_tool(VERDACCIO_BIN)
    config = root / "config.yaml"
    config.write_text(VERDACCIO_CONFIG.format(storage=root / "storage", htpasswd=root / "htpasswd"))

    def argv(port: int) -> list[str | Path]:
        return [binary, "--config", config, "--listen", f"127.0.0.1:{port}"]

    proc, port = start_server("verdaccio", argv, cwd=root, ready_path="/-/ping")
    with running(proc):
        yield Verdaccio(url=f"http://127.0.0.1:{port}/", root=root, log_path=proc.log_path)


@pytest.fixture(scope="session")
def verdaccio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verdaccio]:
    """A Verdaccio npm registry on loopback for the whole session."""
    yield from start_verdaccio(tmp_path_factory.mktemp("verdaccio"))


# --------------------------------------------------------------------------- devpi


def _devpi_result(response: httpx.Response, what: str) -> dict[str, Any]:
    """The ``result`` member of a devpi JSON answer."""
    result: dict[str, Any] = _raise_for_status(response, what).json()["result"]
    return result


@dataclass
class Devpi:
    """A running devpi-server: a PyPI-style registry with no outside mirror."""

    url: str
    """Server root with a trailing slash, e.g. ``http://127.0.0.1:3141/``."""
    root: Path
    """Temp directory holding the server dir, the client dir and the log."""
    serverdir: Path
    log_path: Path
    passwords: dict[str, str] = field(default_factory=dict)
    _auth: dict[str, dict[str, str]] = field(default_factory=dict)

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=HTTP_TIMEOUT_S,
            trust_env=False,
            headers={"accept": "application/json"},
        )

    def index_url(self, user_index: str) -> str:
        return f"{self.url}{user_index.strip('/')}/"

    def simple_url(self, user_index: str) -> str:
        """The PEP 503/691 simple index, for ``pip --index-url``."""
        return f"{self.index_url(user_index)}+simple/"

    def create_user(self, name: str, password: str | None = None) -> None:
        """Create a devpi user; a no-op when this fixture already created ``name``."""
        if name in self.passwords:
            return
        password = password or f"pw-{name}-secret"
        body = {"password": password, "email": f"{name}@example.com"}
        with self.http() as client:
            _raise_for_status(client.put(name, json=body), f"devpi create_user {name}")
        self.passwords[name] = password

    def login(self, name: str, password: str | None = None) -> dict[str, str]:
        """Log in through ``/+login``; return the ``X-Devpi-Auth`` header for ``name``."""
        if name in self._auth and password is None:
            return self._auth[name]
        password = password or self.passwords[name]
        with self.http() as client:
            response = client.post("+login", json={"user": name, "password": password})
        token = _raise_for_status(response, f"devpi login {name}").json()["result"]["password"]
        header = base64.b64encode(f"{name}:{token}".encode()).decode()
        self._auth[name] = {"x-devpi-auth": header}
        return self._auth[name]

    def create_index(
        self,
        user_index: str,
        *,
        acl_upload: Sequence[str] | None = None,
        bases: Sequence[str] = (),
        volatile: bool = True,
    ) -> dict[str, Any]:
        """Create ``user/index`` as its owner; no ``root/pypi`` base unless asked."""
        user = user_index.split("/", 1)[0]
        body = {
            "bases": list(bases),
            "acl_upload": list(acl_upload or [user]),
            "volatile": volatile,
        }
        with self.http() as client:
            response = client.put(user_index, json=body, headers=self.login(user))
        return _devpi_result(response, f"create {user_index}")

    def set_acl_upload(self, user_index: str, users: Sequence[str]) -> dict[str, Any]:
        """Replace the index's ``acl_upload`` (a PATCH by the index owner)."""
        user = user_index.split("/", 1)[0]
        with self.http() as client:
            response = client.patch(
                user_index, json=[f"acl_upload={','.join(users)}"], headers=self.login(user)
            )
        return _devpi_result(response, f"patch {user_index}")

    def index_config(self, user_index: str) -> dict[str, Any]:
        with self.http() as client:
            return _devpi_result(client.get(user_index), user_index)

    def upload(
        self,
        user_index: str,
        path: Path,
        *,
        user: str,
        metadata: dict[str, str | list[str]] | None = None,
    ) -> None:
        """Upload a distribution file as ``user`` (``:action=file_upload``, like twine)."""
        fields: dict[str, str | list[str]] = {":action": "file_upload", **(metadata or {})}
        with self.http() as client, path.open("rb") as content:
            response = client.post(
                user_index + "/",
                data=fields,
                files={"content": (path.name, content, "application/octet-stream")},
                headers=self.login(user),
            )
        _raise_for_status(response, f"upload {path.name} to {user_index} as {user}")

    def project_json(self, user_index: str, name: str) -> dict[str, Any]:
        """``GET /USER/INDEX/NAME`` as JSON: ``result`` maps version -> version data."""
        with self.http() as client:
            response = client.get(f"{user_index}/{name}")
        doc: dict[str, Any] = _raise_for_status(response, f"{user_index}/{name}").json()
        return doc

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the installed ``devpi`` client against this server with its own client dir."""
        clientdir = self.root / "client"
        argv = [str(DEVPI_BIN / "devpi"), "--clientdir", str(clientdir), *args]
        return subprocess.run(
            argv,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def start_devpi(root: Path) -> Iterator[Devpi]:
    init = require_tool(DEVPI_BIN / "devpi-init")
    server = require_tool(DEVPI_BIN / "devpi-server")
    serverdir = root / "server"
    run_checked([init, "--serverdir", serverdir, "--no-root-pypi"], cwd=root, what="devpi-init")

    def argv(port: int) -> list[str | Path]:
        return [
            server,
            "--serverdir",
            serverdir,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--offline-mode",
            "--enable-core-metadata",
        ]

    proc, port = start_server("devpi", argv, cwd=root, ready_path="/+api")
    with running(proc):
        yield Devpi(
            url=f"http://127.0.0.1:{port}/",
            root=root,
            serverdir=serverdir,
            log_path=proc.log_path,
        )


@pytest.fixture(scope="session")
def devpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devpi]:
    """A devpi-server PyPI registry on loopback for the whole session."""
    yield from start_devpi(tmp_path_factory.mktemp("devpi"))
