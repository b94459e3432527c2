"""``content.obfuscated``: new code in a release that is packed, encoded or executes things.

Reads the ``ContentComparison`` the engine computed before the signals ran (see
``custody.content``). One finding per file, weighed from what was found there:

- the kind: a packer or ``_0x`` obfuscator, an ``exec`` of decoded data, a ``.pth`` import
  line or network access in an install hook is strong alone; minified or high-entropy code
  where the file was readable before is medium; a long base64 string, an ``eval`` or a
  ``child_process`` is weak alone;
- combinations: several kinds in one file, or any of them in code appended to the end of an
  existing file (the chalk/debug 2025 pattern) raise it;
- where: an entry point (``main``, ``index.js``, ``__init__.py``) or an install hook raises it;
  tests, fixtures, examples and docs are capped at low (nothing runs them on install);
- novelty: a new file with only what the package already had in other files is lowered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from custody.content.result import ContentComparison, ContentFlag
from custody.model import Finding, Severity
from custody.signals.base import SignalContext

RULE = "content.obfuscated"
MAX_FINDINGS = 10

BASE: dict[str, Severity] = {
    "obfuscator": Severity.HIGH,
    "decode-exec": Severity.HIGH,
    "pth-exec": Severity.HIGH,
    "install-network": Severity.HIGH,
    "marshal": Severity.MEDIUM,
    "minified": Severity.MEDIUM,
    "high-entropy": Severity.MEDIUM,
    "encoded-string": Severity.LOW,
    "dynamic-exec": Severity.LOW,
    "child-process": Severity.LOW,
    "appended-code": Severity.LOW,
}

DESCRIBE = {
    "obfuscator": "obfuscator output",
    "decode-exec": "execution of decoded data",
    "pth-exec": "a .pth import line (runs at every interpreter start)",
    "install-network": "network access in a file an install hook runs",
    "marshal": "marshal.loads (code objects from bytes)",
    "minified": "minified code where the file was readable before",
    "high-entropy": "high-entropy code",
    "encoded-string": "a long encoded string",
    "dynamic-exec": "dynamic code execution",
    "child-process": "process spawning",
    "appended-code": "code appended to the end of the file",
}

_LEVELS = list(Severity)
_ROLE = {"install": "install hook", "entry": "entry point", "test": "test/example file"}


def _bump(severity: Severity, steps: int) -> Severity:
    index = min(max(severity.rank + steps, Severity.INFO.rank), Severity.CRITICAL.rank)
    return _LEVELS[index]


def weigh(flags: list[ContentFlag]) -> tuple[Severity, list[str]]:
    """Severity of one file's flags, with the reasons a reviewer can check."""
    kinds = {f.kind for f in flags}
    # In a new file, what the package already had in other files is not news.
    novel = {f.kind for f in flags if not f.seen_elsewhere} - {"appended-code"}
    reasons: list[str] = []
    if not novel and kinds != {"appended-code"}:
        return Severity.LOW, ["a new file with only what the package already had elsewhere"]
    counted = novel | (kinds & {"appended-code"})
    severity = max((BASE.get(k, Severity.LOW) for k in counted), key=lambda s: s.rank)
    if len(novel) >= 2:
        severity = _bump(severity, 1)
        reasons.append(f"{len(novel)} kinds of suspicious code together")
    if "appended-code" in kinds and any(f.appended and f.kind in novel for f in flags):
        severity = _bump(severity, 1)
        reasons.append("in code appended to the end of an existing file")
    roles = {f.role for f in flags}
    if roles & {"entry", "install"} and severity.rank >= Severity.MEDIUM.rank:
        severity = _bump(severity, 1)
        reasons.append("in an entry point or install hook")
    if roles == {"test"} and severity.rank > Severity.LOW.rank:
        severity = Severity.LOW
        reasons.append("in a test, fixture, example or doc file (not run on install)")
    return severity, reasons


def _lines(flags: list[ContentFlag]) -> tuple[int, int]:
    return min(f.lines[0] for f in flags), max(f.lines[1] for f in flags)


def _file_finding(path: str, flags: list[ContentFlag], cmp: ContentComparison) -> Finding:
    severity, reasons = weigh(flags)
    first, last = _lines(flags)
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    role = _ROLE.get(flags[0].role)
    kinds = sorted({f.kind for f in flags}, key=lambda k: (-BASE.get(k, Severity.LOW).rank, k))
    what = "; ".join(DESCRIBE.get(k, k) for k in kinds)
    state = "new file" if flags[0].new_file else "changed file"
    versions = (
        f" ({cmp.baseline_version} -> {cmp.candidate_version})"
        if cmp.baseline_version and cmp.candidate_version
        else ""
    )
    message = f"{path}{f' ({role})' if role else ''}, {state}, {where}{versions}: {what}" + (
        f" [{'; '.join(reasons)}]" if reasons else ""
    )
    evidence: dict[str, Any] = {
        "file": path,
        "lines": [first, last],
        "kinds": kinds,
        "flags": [f.evidence() for f in flags[:10]],
        "artifact": cmp.candidate_artifact,
        "baseline_artifact": cmp.baseline_artifact,
        "weighed": reasons,
    }
    return Finding(RULE, severity, message, evidence)


def content_findings(comparison: ContentComparison | None) -> list[Finding]:
    """``content.obfuscated`` findings for a comparison (most severe first, at most
    ``MAX_FINDINGS`` files; the last one counts the rest)."""
    if comparison is None or not comparison.flags:
        return []
    by_file: dict[str, list[ContentFlag]] = defaultdict(list)
    for flag in comparison.flags:
        by_file[flag.path].append(flag)
    findings = [_file_finding(p, fl, comparison) for p, fl in by_file.items()]
    findings.sort(key=lambda f: (-f.severity.rank, f.evidence["file"]))
    if len(findings) > MAX_FINDINGS:
        rest = findings[MAX_FINDINGS - 1 :]
        findings = findings[: MAX_FINDINGS - 1]
        top = rest[0]
        findings.append(
            Finding(
                top.rule,
                top.severity,
                top.message + f" (and {len(rest) - 1} more files flagged)",
                {**top.evidence, "more_files": sorted(f.evidence["file"] for f in rest[1:])},
            )
        )
    return findings


def content_obfuscated(ctx: SignalContext) -> list[Finding]:
    """The signal: ``ctx.content_error`` (an unsafe archive or integrity mismatch) if any,
    then the findings of ``ctx.content``. Both fields are set by the engine."""
    out: list[Finding] = []
    error = ctx.content_error
    if isinstance(error, Finding):
        out.append(error)
    comparison = ctx.content
    if isinstance(comparison, ContentComparison):
        out.extend(content_findings(comparison))
    return out
