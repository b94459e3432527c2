"""How fast is ``custody check`` on a thousand npm packages, next to merely downloading them?

    .venv/bin/python benchmarks/check_speed.py [--packages 1000] [--concurrency 16]
        [--repeat 1] [--postgres] [--latency-ms 0]

Builds, under ``benchmarks/.work/check_speed/`` (gitignored, rebuilt every run):

- ``--packages`` packuments made from the real npm documents in ``../shared/fixtures`` (the
  originals, then clones renamed ``bench-NNNN-<name>``), served on 127.0.0.1 by
  ``_registry.py`` (uvicorn + Starlette, ETag / 304, gzip);
- a ``package-lock.json`` (v3) locking every package at its ``latest`` version.

Then measures, each as its own process (wall time; CPU time and peak RSS of that process
alone, from ``os.wait4``): Python start-up, the bare download floors (``_download.py``),
``custody init``, and ``custody check`` cold, warm (every packument still fresh by the
registry's ``Cache-Control: max-age=300``: no requests) and warm with ``--max-age 0`` (every
packument revalidated: 304s), on SQLite and, with ``--postgres``, on PostgreSQL. See
``benchmarks/README.md``. Loopback only (``--latency-ms`` makes the registry answer as if it
were that far away); the registry is stopped (with its process group) on every exit."""

from __future__ import annotations

import argparse
import compileall
import contextlib
import gzip
import hashlib
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _tarballs
import httpx
import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REPO = BENCH.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "npm-packuments"
WORK = BENCH / ".work" / "check_speed"  # only this is wiped: other benchmarks share .work/
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
    integrity: str
    size: int  # bytes of the (uncompressed) packument


def _clone_name(name: str, index: int) -> str:
    scope, _, base = name.rpartition("/")
    return f"{scope}/bench-{index:04d}-{base}" if scope else f"bench-{index:04d}-{base}"


def build_packuments(count: int, registry: str, out: Path) -> list[Locked]:
    """Write ``count`` packuments (and their gzipped twins) under ``out``; return what to lock.

    The fixtures are shuffled with a fixed seed, so a smaller ``count`` is still a fair sample
    of their sizes; beyond the 269 originals each is cloned under new names. Every version's
    ``dist`` points to its synthetic tarball on the local registry (``_tarballs.py``): the
    content review of ``custody check`` downloads those of releases that drew a finding."""
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
            manifest["dist"] = _tarballs.dist(registry, name, version)
        body = orjson.dumps(doc)
        path = out / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(body, 6, mtime=0))
        version = doc["dist-tags"]["latest"]
        dist = doc["versions"][version]["dist"]
        locked.append(Locked(name, version, dist["tarball"], dist["integrity"], len(body)))
    return locked


def write_lockfile(path: Path, locked: Sequence[Locked]) -> None:
    root: dict[str, Any] = {
        "name": "bench-app",
        "version": "1.0.0",
        "dependencies": {p.name: f"^{p.version}" for p in locked},
    }
    packages: dict[str, Any] = {"": root}
    for p in locked:
        packages[f"node_modules/{p.name}"] = {
            "version": p.version,
            "resolved": p.resolved,
            "integrity": p.integrity,
        }
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
def registry_server(docs: Path, port: int, log: Path, latency_ms: float = 0.0) -> Iterator[str]:
    """Run ``_registry.py`` on ``port`` until the block ends; yields its base URL."""
    url = f"http://127.0.0.1:{port}/"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, str(BENCH / "_registry.py"), str(docs), str(port), str(latency_ms)],
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
    cpu_seconds: float  # user + system time of the process
    max_rss_mb: float
    exit_code: int
    stdout: str
    stderr: str
    served: Counter[str] = field(default_factory=Counter)
    note: str = ""


def measure(
    label: str, argv: Sequence[str], *, cwd: Path, env: dict[str, str], work: Path = WORK
) -> Step:
    """Run ``argv`` as its own process: wall time, and that process's own CPU time and peak RSS
    (``os.wait4`` reports them for exactly this child). Its output goes to ``work``."""
    out_path, err_path = work / "step.out", work / "step.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        timer = threading.Timer(STEP_TIMEOUT_S, proc.kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: leave nothing running
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: keep Popen from waiting
    return Step(
        label,
        seconds,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,  # KiB on Linux
        proc.returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


def child_env() -> dict[str, str]:
    """The children run as an installed custody would: with compiled bytecode. (These machines
    set PYTHONDONTWRITEBYTECODE, which makes every run recompile every module: half a second
    that no pip-installed copy pays.)"""
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["CUSTODY_CACHE_DIR"] = str(WORK / "cache" / "default")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.pop("CI", None)
    return env


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres_database(admin_url: str, suffix: str) -> Iterator[str]:
    """A fresh database (the CLI has no schema option), dropped when the block ends."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"custody_bench_{os.getpid()}_{suffix}"
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


class Bench:
    """The inputs of one run and the steps measured so far."""

    def __init__(self, args: argparse.Namespace, registry: str, project: Path) -> None:
        self.args = args
        self.registry = registry
        self.project = project
        self.lockfile = project / "package-lock.json"
        self.trust = project / "custody.toml"
        self.env = child_env()
        self.steps: list[Step] = []

    def best_of(
        self,
        label: str,
        argv: Callable[[int], Sequence[str]],
        env: Callable[[int], dict[str, str]] | None = None,
    ) -> Step:
        """Run ``argv(i)`` ``--repeat`` times; keep the fastest run, or the first failed one."""
        runs: list[Step] = []
        for i in range(self.args.repeat):
            server_stats(self.registry)  # reset the counts
            step = measure(
                label, argv(i), cwd=self.project, env=env(i) if env is not None else self.env
            )
            step.served = server_stats(self.registry)
            runs.append(step)
        failed = [r for r in runs if r.exit_code not in (0, 1)]
        best = failed[0] if failed else min(runs, key=lambda r: r.seconds)
        self.steps.append(best)
        print(f"  {label}: " + ", ".join(f"{r.seconds:.2f}" for r in runs) + " s", flush=True)
        return best

    def floor(self, label: str, mode: str, pools: str) -> None:
        argv = [PYTHON, str(BENCH / "_download.py"), self.registry, str(WORK / "names.txt")]
        argv += [str(self.args.concurrency), mode, pools]
        step = self.best_of(label, lambda _i: argv)
        if step.exit_code == 0:
            step.note = f"{orjson.loads(step.stdout)['seconds']:.2f} s in the fetch loop"
        else:
            step.note = f"FAILED: {step.stderr.strip()[-300:]}"

    def custody(
        self, label: str, command: str, database: Callable[[int], str], *extra: str
    ) -> Step:
        def argv(i: int) -> list[str]:
            trust = self.trust if command == "check" else self.project / f"custody-{i}.toml"
            out = [*CUSTODY, command, str(self.lockfile), "--trust-file", str(trust)]
            out += ["--npm-registry", self.registry, "--database", database(i)]
            out += ["--concurrency", str(self.args.concurrency)]
            return out + (["--format", "json", *extra] if command == "check" else [])

        def env(i: int) -> dict[str, str]:
            """Custody's cache directory (downloaded tarballs) goes with the database: a cold
            run starts without either, a warm one has both."""
            key = hashlib.sha1(database(i).encode()).hexdigest()[:12]
            return {**self.env, "CUSTODY_CACHE_DIR": str(WORK / "cache" / key)}

        step = self.best_of(label, argv, env)
        if command == "check":
            step.note = check_summary(step)
        elif step.exit_code != 0:
            step.note = f"FAILED: {step.stderr.strip()[-300:]}"
        else:
            (self.project / "custody-0.toml").replace(self.trust)
        return step

    def checks(self, backend: str, database: Callable[[int], str]) -> None:
        """Cold (a fresh database each time), then warm (fresh: no requests) and warm with
        --max-age 0 (revalidated: 304s) on the last one."""
        self.custody(f"check cold ({backend})", "check", database)
        last = self.args.repeat - 1

        def warm(_i: int) -> str:
            return database(last)

        self.custody(f"check warm ({backend})", "check", warm)
        self.custody(f"check warm --max-age 0 ({backend})", "check", warm, "--max-age", "0")


def run(args: argparse.Namespace) -> list[Step]:
    shutil.rmtree(WORK, ignore_errors=True)
    project = WORK / "project"
    project.mkdir(parents=True)
    port = free_port()

    started = time.perf_counter()
    locked = build_packuments(args.packages, f"http://127.0.0.1:{port}/", WORK / "registry")
    write_lockfile(project / "package-lock.json", locked)
    (WORK / "names.txt").write_text("\n".join(p.name for p in locked) + "\n")
    total_mb = sum(p.size for p in locked) / 2**20
    print(
        f"built {len(locked)} packuments ({total_mb:.1f} MB of JSON) and a lockfile in "
        f"{time.perf_counter() - started:.1f} s under {WORK.relative_to(REPO)}/",
        flush=True,
    )

    served = registry_server(WORK / "registry", port, WORK / "registry.log", args.latency_ms)
    with served as registry:
        away = f", every answer delayed {args.latency_ms:g} ms" if args.latency_ms else ""
        print(f"registry: uvicorn + Starlette on {registry} (ETag/304, gzip{away})", flush=True)
        bench = Bench(args, registry, project)
        bench.best_of("python start-up (custody --version)", lambda _i: [*CUSTODY, "--version"])
        bench.floor("download, httpx one pool", "get", "one")
        bench.floor("download, httpx small pools", "get", "small")
        bench.floor("download, custody transport", "get", "direct")
        bench.floor("revalidate (304), httpx one pool", "revalidate", "one")
        bench.floor("revalidate (304), httpx small pools", "revalidate", "small")
        bench.floor("revalidate (304), custody transport", "revalidate", "direct")

        def sqlite(name: str) -> Callable[[int], str]:
            return lambda i: f"sqlite:///{WORK / f'{name}-{i}.sqlite3'}"

        init = bench.custody("custody init (cold)", "init", sqlite("init"))
        if init.exit_code == 0:
            bench.checks("sqlite", sqlite("check"))
            if args.postgres:
                with contextlib.ExitStack() as dropped_at_exit:
                    databases: dict[int, str] = {}

                    def postgres(i: int) -> str:
                        if i not in databases:
                            fresh = postgres_database(args.postgres_url, str(i))
                            databases[i] = dropped_at_exit.enter_context(fresh)
                        return databases[i]

                    bench.checks("postgres", postgres)
    return bench.steps


def print_table(steps: Sequence[Step], packages: int) -> None:
    floors = [s for s in steps if s.label.startswith("download") and s.exit_code == 0]
    floor = min(floors, key=lambda s: s.seconds, default=None)
    header = f"{'step':<38} {'wall s':>6} {'CPU s':>6} {'pkg/s':>6} {'RSS MB':>6} "
    header += f"{'x floor':>7} {'200':>5} {'304':>5} {'tgz':>4} {'exit':>4}  note"
    print()
    print(header)
    print("-" * len(header))
    for s in steps:
        times = f"{s.seconds / floor.seconds:.2f}" if floor else "-"
        print(
            f"{s.label:<38} {s.seconds:>6.2f} {s.cpu_seconds:>6.2f} {packages / s.seconds:>6.0f} "
            f"{s.max_rss_mb:>6.0f} {times:>7} {s.served.get('200', 0):>5} "
            f"{s.served.get('304', 0):>5} {s.served.get('tgz', 0):>4} {s.exit_code:>4}  {s.note}"
        )
    by_label = {s.label: s for s in steps}
    cold, warm = by_label.get("check cold (sqlite)"), by_label.get("check warm (sqlite)")
    revalidated = by_label.get("check warm --max-age 0 (sqlite)")
    print()
    if floor is not None:
        print(f"floor: {floor.label} ({floor.seconds:.2f} s), the fastest of the downloads")
    if warm is not None:
        verdict = "met" if warm.seconds < 1.0 else "NOT met"
        print(f"target warm check < 1 s: {warm.seconds:.2f} s, {verdict} (fresh: no requests)")
    bare = [s for s in steps if s.label.startswith("revalidate") and s.exit_code == 0]
    if revalidated is not None and bare:
        floor304 = min(bare, key=lambda s: s.seconds)
        print(
            f"warm check revalidating every packument (--max-age 0): {revalidated.seconds:.2f} s,"
            f" {revalidated.seconds / floor304.seconds:.2f} x the bare revalidation"
            f" ({floor304.seconds:.2f} s)"
        )
    if cold is not None and floor is not None:
        ratio = cold.seconds / floor.seconds
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"target cold check <= 1.5 x floor: {ratio:.2f} x, {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=1000, help="packages (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; the best counts")
    parser.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay every registry answer this long: a registry that far away (default 0)",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help=f"a server where a scratch database can be created (default {DEFAULT_POSTGRES})",
    )
    args = parser.parse_args()
    if min(args.packages, args.concurrency, args.repeat) < 1:
        parser.error("--packages, --concurrency and --repeat must be at least 1")
    if not 0 <= args.latency_ms <= 10_000:
        parser.error("--latency-ms must be between 0 and 10000")
    # SIGTERM unwinds like Ctrl-C, so the registry and a running step are stopped too.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))
    if not FIXTURES.is_dir():
        print(f"skipped: the npm packument fixtures are not at {FIXTURES}")
        return 0
    print(
        f"Custody check speed: {args.packages} npm packages, concurrency {args.concurrency}, "
        f"best of {args.repeat}; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    steps = run(args)
    print_table(steps, args.packages)
    return 0 if all(s.exit_code in (0, 1) for s in steps) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (the registry and any running step were stopped)", file=sys.stderr)
        sys.exit(130)
