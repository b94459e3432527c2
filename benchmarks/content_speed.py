"""Content-diff throughput and peak memory on large packages, next to GuardDog on the same files.

Custody reads both artifacts of a pair and compares them (``read_archive`` x2 +
``compare_archives`` + the signal), in a fresh process per pair so peak RSS is its own.
GuardDog (``guarddog npm|pypi scan FILE``, in its own venv: ``GUARDDOG``, default
``<corpus dir>/guarddog-venv/bin/guarddog``) scans the candidate only. Throughput is MB of
unpacked source per second of wall time: both sides for Custody, the candidate for GuardDog::

    python benchmarks/content_corpus.py                  # once: download the corpus
    python -m venv benchmarks/.work/content/guarddog-venv
    benchmarks/.work/content/guarddog-venv/bin/pip install guarddog
    python benchmarks/content_speed.py [NAME ...]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from content_corpus import WORK

LARGE = [
    ("npm", "next"),
    ("npm", "typescript"),
    ("npm", "webpack"),
    ("npm", "prettier"),
    ("npm", "react-dom"),
    ("npm", "@babel/core"),
    ("pypi", "numpy"),
    ("pypi", "django"),
    ("pypi", "sqlalchemy"),
    ("pypi", "setuptools"),
]
GUARDDOG_TIMEOUT = 900.0
MB = 1e6


def measure(entry: dict[str, str]) -> dict[str, float]:
    """In this (fresh) process: time and peak RSS of reading and comparing one pair."""
    from custody.content import ArchiveContents, compare_archives, read_archive
    from custody.content.review import limits_for
    from custody.signals.content import content_findings

    old_data = (WORK / entry["old_file"]).read_bytes()
    new_data = (WORK / entry["new_file"]).read_bytes()
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    strip = entry["kind"] != "wheel"
    limits = limits_for(entry["kind"])
    old = read_archive(old_data, strip_root=strip, limits=limits)
    new = read_archive(new_data, strip_root=strip, limits=limits)
    assert isinstance(old, ArchiveContents) and isinstance(new, ArchiveContents)
    cmp = compare_archives(old, new, ecosystem=entry["ecosystem"], kind=entry["kind"])
    findings = content_findings(cmp)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "unpacked": old.total_size + new.total_size,
        "candidate_unpacked": new.total_size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_rss) / 1024,
        "findings": len(findings),
    }


def run_custody(entry: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", json.dumps(entry)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


_WRAP = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[2:], capture_output=True, timeout=float(sys.argv[1]))\n"
    "s = time.perf_counter() - t\n"
    "ok = int(b'\"results\"' in p.stdout)\n"
    "print(s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, p.returncode, ok)\n"
)


def run_guarddog(guarddog: str, entry: dict[str, str]) -> dict[str, float] | None:
    eco = "npm" if entry["ecosystem"] == "npm" else "pypi"
    argv = [guarddog, eco, "scan", str(WORK / entry["new_file"]), "--output-format", "json"]
    try:
        out = subprocess.run(
            [sys.executable, "-c", _WRAP, str(GUARDDOG_TIMEOUT), *argv],
            capture_output=True,
            text=True,
            timeout=GUARDDOG_TIMEOUT + 30,
            check=False,
        )
        seconds, rss, code, ok = out.stdout.split()
    except (subprocess.TimeoutExpired, ValueError):
        return None
    if ok != "1":  # GuardDog produced no report (it does not scan local wheels)
        return None
    return {"seconds": float(seconds), "peak_rss_mb": float(rss), "exit": int(code)}


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(json.loads(sys.argv[2]))))
        return
    only = set(sys.argv[1:])
    corpus = json.loads((WORK / "corpus.json").read_text())
    guarddog = os.environ.get("GUARDDOG") or str(WORK / "guarddog-venv" / "bin" / "guarddog")
    have_guarddog = Path(guarddog).exists()
    rows = []
    for eco, name in LARGE:
        if only and name not in only:
            continue
        for entry in corpus:
            if (entry["ecosystem"], entry["name"]) != (eco, name):
                continue
            c = run_custody(entry)
            g = run_guarddog(guarddog, entry) if have_guarddog else None
            rows.append((entry, c, g))
            print(_row(entry, c, g), flush=True)
    print()
    print(_HEADER)
    for entry, c, g in rows:
        print(_row(entry, c, g))
    total_c = sum(c["unpacked"] for _, c, _ in rows) / sum(c["seconds"] for _, c, _ in rows) / MB
    timed = [(c, g) for _, c, g in rows if g]
    if timed:
        total_g = sum(c["candidate_unpacked"] for c, _ in timed) / sum(
            g["seconds"] for _, g in timed
        )
        print(
            f"\noverall: custody {total_c:.1f} MB/s, guarddog {total_g / MB:.2f} MB/s, "
            f"ratio {total_c / (total_g / MB):.0f}x"
        )
    if not have_guarddog:
        print(f"\n(GuardDog not found at {guarddog}: set GUARDDOG or install it as shown above)")


_HEADER = (
    f"{'package':24} {'kind':7} {'MB both':>7} {'MB new':>6} | {'custody s':>9} {'MB/s':>7} "
    f"{'peak MB':>8} | {'guarddog s':>10} {'MB/s':>7} {'peak MB':>8} | {'ratio':>6}"
)


def _row(entry: dict[str, str], c: dict[str, float], g: dict[str, float] | None) -> str:
    c_rate = c["unpacked"] / c["seconds"] / MB
    text = (
        f"{entry['ecosystem'] + ':' + entry['name']:24} {entry['kind']:7} "
        f"{c['unpacked'] / MB:7.1f} {c['candidate_unpacked'] / MB:6.1f} | "
        f"{c['seconds']:9.2f} {c_rate:7.1f} {c['peak_rss_mb']:8.0f} | "
    )
    if g is None:
        return text + f"{'no report':>10} {'':>7} {'':>8} | {'':>6}"
    g_rate = c["candidate_unpacked"] / g["seconds"] / MB
    return text + (
        f"{g['seconds']:10.2f} {g_rate:7.2f} {g['peak_rss_mb']:8.0f} | {c_rate / g_rate:5.0f}x"
    )


if __name__ == "__main__":
    main()
