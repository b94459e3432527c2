"""How fast is ``custody check`` on a thousand npm packages, next to merely downloading them?

    .venv/bin/python benchmarks/check_speed.py [--packages 1000] [--concurrency 16] [--postgres]

Builds, under ``benchmarks/.work/`` (gitignored, rebuilt every run):

- ``--packages`` packuments made from the real npm documents in ``../shared/fixtures`` (the
  originals first, then clones renamed ``bench-NNNN-<name>``), served on 127.0.0.1 by
  ``_registry.py`` (uvicorn + Starlette, ETag / 304, gzip);
- a ``package-lock.json`` (v3) locking every package at its ``latest`` version.

Then measures, each as its own process (wall time and peak RSS of that process alone, from
``os.wait4``): Python start-up, the bare download floor (``_download.py``), ``custody init``,
and ``custody check`` cold, warm (revalidation: 304s) and warm with ``--max-age 3600`` (no
requests), on SQLite and, with ``--postgres``, on PostgreSQL. See ``benchmarks/README.md``.
Loopback only; the registry is stopped (with its process group) on every exit."""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "npm-packuments"
WORK = BENCH / ".work"
PYTHON = sys.executable
CUSTODY = [PYTHON, "-m", "custody"]
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
STEP_TIMEOUT_S = 300.0


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Locked:
    name: str
    version: str
    resolved: str
    integrity: str | None
    size: int  # bytes of the (uncompressed) packument


def _clone_name(name: str, index: int) -> str:
    scope, _, base = name.rpartition("/")
    return f"{scope}/bench-{index:04d}-{base}" if scope else f"bench-{index:04d}-{base}"


def _tarball(registry: str, name: str, version: str) -> str:
    return f"{registry}{name}/-/{name.rpartition('/')[2]}-{version}.tgz"


def _integrity(dist: dict[str, Any]) -> str | None:
    if isinstance(dist.get("integrity"), str):
        return str(dist["integrity"])
    shasum = dist.get("shasum")
    if isinstance(shasum, str) and len(shasum) == 40:
        return "sha1-" + base64.b64encode(bytes.fromhex(shasum)).decode()
    return None


def build_packuments(count: int, registry: str, out: Path) -> list[Locked]:
    """Write ``count`` packuments (and their gzipped twins) under ``out``; return what to lock.

    The fixtures are shuffled with a fixed seed, so a smaller ``count`` is still a fair sample
    of their sizes; beyond the 269 originals each is cloned under new names."""
    sources = sorted(FIXTURES.rglob("*.json"))
    random.Random(0).shuffle(sources)
    base = registry.rstrip("/").encode()
    locked: list[Locked] = []
    for index in range(count):
        raw = sources[index % len(sources)].read_bytes().replace(b"{REGISTRY}", base)
        doc = orjson.loads(raw)
        name = doc["name"]
        if index >= len(sources):
            name = _clone_name(doc["name"], index)
            doc["name"] = doc["_id"] = name
            for version, manifest in doc["versions"].items():
                manifest["name"] = name
                manifest["_id"] = f"{name}@{version}"
                manifest.setdefault("dist", {})["tarball"] = _tarball(registry, name, version)
        body = orjson.dumps(doc)
        path = out / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(body, 6, mtime=0))
        version = doc["dist-tags"]["latest"]
        dist = doc["versions"][version].get("dist", {})
        locked.append(
            Locked(
                name,
                version,
                dist.get("tarball") or _tarball(registry, name, version),
                _integrity(dist),
                len(body),
            )
        )
    return locked


def write_lockfile(path: Path, locked: Sequence[Locked]) -> None:
    root: dict[str, Any] = {
        "name": "bench-app",
        "version": "1.0.0",
        "dependencies": {p.name: f"^{p.version}" for p in locked},
    }
    packages: dict[str, Any] = {"": root}
    for p in locked:
        entry: dict[str, Any] = {"version": p.version, "resolved": p.resolved}
        if p.integrity:
            entry["integrity"] = p.integrity
        packages[f"node_modules/{p.name}"] = entry
    doc = {
        "name": "bench-app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": packages,
    }
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _own_group_and_die_with_parent() -> None:
    """In the server child before exec: its own process group, SIGKILL if we die."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def registry_server(docs: Path, port: int, log: Path) -> Iterator[str]:
    """Run ``_registry.py`` on ``port`` until the block ends; yields its base URL."""
    url = f"http://127.0.0.1:{port}/"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, str(BENCH / "_registry.py"), str(docs), str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_own_group_and_die_with_parent,
        )
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"the registry exited early:\n{log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url + "-/ping").is_success:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the registry did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def server_stats(registry: str) -> Counter[str]:
    """Requests the registry answered since the last call (and reset the counts)."""
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        return Counter(client.get(registry + "-/bench/stats", params={"reset": "1"}).json())


@dataclass
class Step:
    label: str
    seconds: float
    max_rss_mb: float
    exit_code: int
    stdout: str
    stderr: str
    served: Counter[str] = field(default_factory=Counter)
    inner_seconds: float | None = None  # time the floor spent fetching, without start-up
    note: str = ""


def measure(label: str, argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> Step:
    """Run ``argv`` as its own process: wall time and that process's own peak RSS."""
    out_path, err_path = WORK / "step.out", WORK / "step.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        timer = threading.Timer(STEP_TIMEOUT_S, proc.kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: keep Popen from waiting
    return Step(
        label,
        seconds,
        usage.ru_maxrss / 1024,  # KiB on Linux
        proc.returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env["CUSTODY_CACHE_DIR"] = str(WORK / "cache")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.pop("CI", None)
    return env


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database for the run (the CLI has no schema option), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"custody_bench_{os.getpid()}"
    admin = make_url(admin_url).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- the run


def check_summary(step: Step) -> str:
    """``allow 998, hold 2`` from a ``--format json`` report (or what went wrong)."""
    if step.exit_code not in (0, 1):
        return f"FAILED: {step.stderr.strip()[-300:]}"
    try:
        report = orjson.loads(step.stdout)
    except orjson.JSONDecodeError:
        return "no JSON report"
    actions = Counter(d["action"] for d in report["decisions"])
    return ", ".join(f"{a} {n}" for a, n in sorted(actions.items()))


def run(args: argparse.Namespace) -> list[Step]:
    shutil.rmtree(WORK, ignore_errors=True)
    project = WORK / "project"
    project.mkdir(parents=True)
    env = child_env()
    port = free_port()
    registry_url = f"http://127.0.0.1:{port}/"

    started = time.perf_counter()
    locked = build_packuments(args.packages, registry_url, WORK / "registry")
    lockfile = project / "package-lock.json"
    write_lockfile(lockfile, locked)
    names = WORK / "names.txt"
    names.write_text("\n".join(p.name for p in locked) + "\n")
    total_mb = sum(p.size for p in locked) / 2**20
    print(
        f"built {len(locked)} packuments ({total_mb:.1f} MB of JSON) and a lockfile in "
        f"{time.perf_counter() - started:.1f} s under {WORK.relative_to(REPO)}/",
        flush=True,
    )

    conc = str(args.concurrency)
    trust = project / "custody.toml"
    steps: list[Step] = []

    def step(label: str, argv: Sequence[str], note: str = "") -> Step:
        server_stats(registry)  # reset the counts
        s = measure(label, argv, cwd=project, env=env)
        s.served = server_stats(registry)
        s.note = note
        steps.append(s)
        print(f"  {label}: {s.seconds:.2f} s", flush=True)
        return s

    def floor(label: str, mode: str) -> None:
        s = step(label, [PYTHON, str(BENCH / "_download.py"), registry, str(names), conc, mode])
        if s.exit_code == 0:
            inner = orjson.loads(s.stdout)
            s.inner_seconds = float(inner["seconds"])
            s.note = f"{inner['seconds']:.2f} s fetching, the rest is start-up"
        else:
            s.note = f"FAILED: {s.stderr.strip()[-300:]}"

    def custody(label: str, command: str, database: str, *extra: str) -> None:
        argv = [*CUSTODY, command, str(lockfile), "--trust-file", str(trust)]
        argv += ["--npm-registry", registry, "--database", database, "--concurrency", conc]
        if command == "check":
            argv += ["--format", "json", *extra]
        s = step(label, argv)
        if command == "check":
            s.note = check_summary(s)
        elif s.exit_code != 0:
            s.note = f"FAILED: {s.stderr.strip()[-300:]}"

    def checks(backend: str, database: str) -> None:
        custody(f"check cold ({backend})", "check", database)
        custody(f"check warm ({backend})", "check", database)
        custody(f"check warm --max-age ({backend})", "check", database, "--max-age", "3600")

    with registry_server(WORK / "registry", port, WORK / "registry.log") as registry:
        print(f"registry: uvicorn + Starlette on {registry} (ETag/304, gzip)", flush=True)
        step("python start-up (custody --version)", [*CUSTODY, "--version"])
        floor("bare download + orjson (floor)", "get")
        floor("bare revalidation, 304s (floor)", "revalidate")
        custody("custody init (cold)", "init", f"sqlite:///{WORK / 'init.sqlite3'}")
        if steps[-1].exit_code != 0:
            return steps
        checks("sqlite", f"sqlite:///{WORK / 'check.sqlite3'}")
        if args.postgres:
            with postgres_database(args.postgres_url) as database:
                checks("postgres", database)
    return steps


def print_table(steps: Sequence[Step], packages: int) -> None:
    floor = next((s for s in steps if s.label.startswith("bare download")), None)
    header = f"{'step':<36} {'wall s':>7} {'pkg/s':>7} {'RSS MB':>7} {'x floor':>7} "
    header += f"{'200':>5} {'304':>5} {'exit':>4}  note"
    print()
    print(header)
    print("-" * len(header))
    for s in steps:
        ratio = f"{s.seconds / floor.seconds:.2f}" if floor and floor.seconds else "-"
        print(
            f"{s.label:<36} {s.seconds:>7.2f} {packages / s.seconds:>7.0f} {s.max_rss_mb:>7.0f} "
            f"{ratio:>7} {s.served.get('200', 0):>5} {s.served.get('304', 0):>5} "
            f"{s.exit_code:>4}  {s.note}"
        )
    cold = next((s for s in steps if s.label == "check cold (sqlite)"), None)
    warm = next((s for s in steps if s.label == "check warm (sqlite)"), None)
    print()
    if warm is not None:
        verdict = "met" if warm.seconds < 1.0 else "NOT met"
        print(f"target warm check < 1 s: {warm.seconds:.2f} s, {verdict}")
    if cold is not None and floor is not None:
        ratio = cold.seconds / floor.seconds
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"target cold check <= 1.5 x bare download: {ratio:.2f} x, {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=1000, help="packages (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    parser.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help=f"a server where a scratch database can be created (default {DEFAULT_POSTGRES})",
    )
    args = parser.parse_args()
    if args.packages < 1 or args.concurrency < 1:
        parser.error("--packages and --concurrency must be at least 1")
    if not FIXTURES.is_dir():
        print(f"skipped: the npm packument fixtures are not at {FIXTURES}")
        return 0
    print(f"Custody check speed: {args.packages} npm packages, concurrency {args.concurrency}")
    steps = run(args)
    print_table(steps, args.packages)
    return 0 if all(s.exit_code in (0, 1) for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
