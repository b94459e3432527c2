"""A/B: the same ``custody check`` from two or more versions of the code, alternating.

    .venv/bin/python benchmarks/ab_check.py [--cold | --revalidate] [--rounds 8]
        [--packages 1000] REF REF...

``REF`` is a git revision (its ``src/`` is exported with ``git archive``) or ``.`` for the
working tree. These machines change speed by up to 1.7x within minutes, so two versions are
only comparable when measured side by side: each round runs every version once, in turn, and
the fastest and median runs are printed per version.

Warm (the default): each version first fills its own ledger and cache directory with one cold
check, then every round is a check with ``--max-age`` of a day (nothing is asked of the
registry: start-up, the ledger, decoding, judging), or with ``--revalidate`` of 0 (every
packument asked again: 304s). ``--cold``: every run starts from an empty
ledger and cache directory. The inputs are ``check_speed.py``'s (packuments of the fixtures on
a local registry, a lockfile of their latest versions, the trust file ``custody init`` writes
with the first version), under ``benchmarks/.work/ab_check/``."""

from __future__ import annotations

import argparse
import compileall
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

import check_speed as cs

WORK = cs.BENCH / ".work" / "ab_check"


def export(ref: str, index: int) -> Path:
    """The ``src`` directory of ``ref``, compiled (as an installed copy would be)."""
    if ref == ".":
        src = cs.REPO / "src"
    else:
        archive = subprocess.run(
            ["git", "-C", str(cs.REPO), "archive", "--format=tar", ref, "src"],
            capture_output=True,
            check=True,
        ).stdout
        root = WORK / "src" / str(index)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        src = root / "src"
    compileall.compile_dir(str(src), quiet=1)
    return src


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("refs", nargs="+", metavar="REF", help='git revisions, "." = work tree')
    parser.add_argument("--cold", action="store_true", help="empty ledger and cache every run")
    parser.add_argument(
        "--revalidate", action="store_true", help="warm runs ask about every packument (304s)"
    )
    parser.add_argument("--rounds", type=int, default=8, help="runs per version (8)")
    parser.add_argument("--packages", type=int, default=1000, help="packages (1000)")
    args = parser.parse_args()
    if len(args.refs) < 2 or min(args.rounds, args.packages) < 1:
        parser.error("give at least two versions, and positive --rounds and --packages")
    if not cs.FIXTURES.is_dir():
        print(f"skipped: the npm packument fixtures are not at {cs.FIXTURES}")
        return 0
    shutil.rmtree(WORK, ignore_errors=True)
    project = WORK / "project"
    project.mkdir(parents=True)
    sources = [export(ref, i) for i, ref in enumerate(args.refs)]
    port = cs.free_port()
    locked = cs.build_packuments(args.packages, f"http://127.0.0.1:{port}/", WORK / "registry")
    cs.write_lockfile(project / "package-lock.json", locked)
    base_env = cs.child_env()

    def run(i: int, command: str, *extra: str) -> cs.Step:
        env = {**base_env, "PYTHONPATH": str(sources[i])}
        env["CUSTODY_CACHE_DIR"] = str(WORK / "cache" / str(i))
        argv = [*cs.CUSTODY, command, str(project / "package-lock.json")]
        argv += ["--trust-file", str(project / "custody.toml"), "--npm-registry", registry]
        argv += ["--database", f"sqlite:///{WORK / f'ledger-{i}.sqlite3'}", *extra]
        step = cs.measure(f"{args.refs[i]} {command}", argv, cwd=project, env=env, work=WORK)
        if step.exit_code not in (0, 1):
            raise SystemExit(f"{args.refs[i]}: {command} failed:\n{step.stderr[-2000:]}")
        return step

    def forget(i: int) -> None:
        for leftover in WORK.glob(f"ledger-{i}.sqlite3*"):
            leftover.unlink()
        shutil.rmtree(WORK / "cache" / str(i), ignore_errors=True)

    results: list[list[cs.Step]] = [[] for _ in args.refs]
    with cs.registry_server(WORK / "registry", port, WORK / "registry.log") as registry:
        run(0, "init")
        forget(0)
        for i in range(len(args.refs)):
            if not args.cold:
                run(i, "check", "--format", "json")  # fills this version's ledger
        for _ in range(args.rounds):
            for i in range(len(args.refs)):
                if args.cold:
                    forget(i)
                    results[i].append(run(i, "check", "--format", "json"))
                else:
                    max_age = "0" if args.revalidate else "86400"
                    results[i].append(run(i, "check", "--format", "json", "--max-age", max_age))
    kind = "cold" if args.cold else "warm, revalidating" if args.revalidate else "warm"
    print(f"custody check, {kind}, {args.packages} npm packages, {args.rounds} rounds alternating")
    for ref, steps in zip(args.refs, results, strict=True):
        walls = [s.seconds for s in steps]
        cpus = [s.cpu_seconds for s in steps]
        print(
            f"  {ref:>12}: wall {min(walls):.2f} / {statistics.median(walls):.2f} s, "
            f"CPU {min(cpus):.2f} / {statistics.median(cpus):.2f} s (fastest / median)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
