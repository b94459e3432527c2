"""False positives of the content and install-script signals on ordinary releases.

Runs ``content.obfuscated`` and ``scripts.*`` over two consecutive releases of well-known npm
and PyPI packages (the corpus ``content_corpus.py`` downloads) and prints, per package, what
was flagged and why, then totals. A release is *held* when a finding reaches medium (the
default ``hold_at`` of every policy tier); ordinary releases must not be::

    python benchmarks/content_corpus.py      # once: download the corpus
    python benchmarks/content_fp.py [-v]     # -v: every finding's message
    python benchmarks/content_fp.py --inject # positive control: each npm candidate gets a
                                             # minified, base64 payload appended to its main file
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from content_corpus import WORK

from custody.content import ArchiveContents, ArchiveRefusal, compare_archives, read_archive
from custody.content.compare import npm_main
from custody.content.review import limits_for
from custody.model import Ecosystem, Finding, LockedDependency, PackageHistory, Release, Severity
from custody.signals.base import SignalContext, TrustedSet
from custody.signals.content import content_findings
from custody.signals.scripts import install_scripts

HOLD_AT = Severity.MEDIUM


@dataclass(frozen=True, slots=True)
class _Context(SignalContext):
    """SignalContext with the content field the engine adds."""

    content: object = None


_rng = random.Random(2025)
PAYLOAD = (
    b";const _0x1=Buffer.from('"
    + base64.b64encode(bytes(_rng.randrange(256) for _ in range(3000)))
    + b"','base64').toString();(function(){try{new Function('require',_0x1)(require)}"
    b"catch(e){}})();\n"
)


def inject(contents: ArchiveContents) -> ArchiveContents:
    """The chalk/debug 2025 pattern: a payload appended to the package's main file."""
    target = npm_main(contents.files)
    files = dict(contents.files)
    files[target] = files.get(target, b"") + PAYLOAD
    return dataclasses.replace(contents, files=MappingProxyType(files))


def findings_for(entry: dict[str, str], injected: bool = False) -> list[Finding]:
    kind = entry["kind"]
    limits = limits_for(kind)
    sides = []
    for key in ("old_file", "new_file"):
        result = read_archive(
            (WORK / entry[key]).read_bytes(), strip_root=kind != "wheel", limits=limits
        )
        if isinstance(result, ArchiveRefusal):
            return [Finding("content.unsafe-archive", Severity.HIGH, str(result), {})]
        sides.append(result)
    if injected:
        sides[1] = inject(sides[1])
    cmp = compare_archives(
        sides[0],
        sides[1],
        ecosystem=entry["ecosystem"],
        kind=kind,
        baseline_artifact=entry["old_file"],
        candidate_artifact=entry["new_file"],
        baseline_version=entry["old"],
        candidate_version=entry["new"],
    )
    eco = Ecosystem(entry["ecosystem"])
    base = Release(eco, entry["name"], entry["old"])
    cand = Release(eco, entry["name"], entry["new"])
    now = datetime.now(UTC)
    ctx = _Context(
        dependency=LockedDependency(eco, entry["name"], entry["new"], direct=True),
        history=PackageHistory(eco, entry["name"], "corpus", now, (base, cand)),
        candidate=cand,
        baseline=base,
        trusted=TrustedSet(lambda c, at, wf: None),
        observations=(),
        now=now,
        content=cmp,
    )
    return content_findings(cmp) + install_scripts(ctx)


def main() -> None:
    verbose = "-v" in sys.argv
    injected = "--inject" in sys.argv
    corpus = json.loads((WORK / "corpus.json").read_text())
    if injected:
        corpus = [e for e in corpus if e["ecosystem"] == "npm"]
    held: list[str] = []
    flagged = 0
    by_severity: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    for entry in corpus:
        label = f"{entry['ecosystem']:4} {entry['name']:20} {entry['kind']:7} "
        label += f"{entry['old']} -> {entry['new']}"
        findings = findings_for(entry, injected)
        top = max((f.severity for f in findings), key=lambda s: s.rank, default=None)
        is_held = top is not None and top.rank >= HOLD_AT.rank
        flagged += bool(findings)
        if is_held:
            held.append(label)
        print(f"{'HELD' if is_held else ('flag' if findings else ' ok ')}  {label}")
        for f in findings:
            by_severity[f.severity.value] += 1
            kinds = f.evidence.get("kinds") or [f.evidence.get("hook") or f.evidence.get("file")]
            by_kind.update(f"{f.rule}:{k}" for k in kinds)
            where = f.evidence.get("file") or f.evidence.get("hook") or ""
            print(f"        {f.severity.value:8} {f.rule:24} {where} {kinds}")
            if verbose:
                print(f"                 {f.message}")
    print()
    print(
        f"pairs: {len(corpus)}   held (>= {HOLD_AT.value}): {len(held)}   "
        f"with any finding: {flagged}"
    )
    print("findings by severity:", dict(by_severity))
    print("findings by rule:kind:", dict(by_kind.most_common()))
    for label in held:
        print("  held:", label)


if __name__ == "__main__":
    main()
