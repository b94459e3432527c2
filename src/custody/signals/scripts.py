"""``scripts.install-added`` / ``scripts.install-changed``: code that runs when a release is
installed, new or different from the trusted release.

npm: ``preinstall``, ``install``, ``postinstall`` (and the implicit ``node-gyp rebuild`` of a
``binding.gyp``) from the release metadata, completed by the tarball's own ``package.json``
when the content comparison read it (npm runs the tarball's scripts, whatever the registry
document says). PyPI: a release that stops shipping wheels (installing an sdist runs its build),
and, when two sdists were compared, a changed ``setup.py`` or ``[build-system]``.
"""

from __future__ import annotations

import re
from typing import Any

from custody.content.result import INSTALL_HOOKS, BuildChange, ContentComparison
from custody.model import Ecosystem, Finding, Release, Severity
from custody.signals.base import SignalContext

ADDED = "scripts.install-added"
CHANGED = "scripts.install-changed"

_RISKY: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("downloads", re.compile(r"\b(?:curl|wget|Invoke-WebRequest|iwr|certutil)\b|https?://", re.I)),
    ("pipes into a shell", re.compile(r"\|\s*(?:ba|z)?sh\b|\|\s*(?:node|python3?)\b")),
    ("inline code", re.compile(r"\bnode\s+(?:-e|--eval|-p|--print)\b|\bpython3?\s+-c\b")),
    ("encoded payload", re.compile(r"[A-Za-z0-9+/]{80,}={0,2}|(?:\\x[0-9a-fA-F]{2}){8,}")),
    (
        "decodes base64",
        re.compile(r"base64\s+(?:-d|--decode)|\batob\(|-enc(?:odedcommand)?\b", re.I),
    ),
    ("eval", re.compile(r"\beval\b")),
)

KNOWN_BACKENDS = frozenset(
    {
        "setuptools.build_meta",
        "setuptools.build_meta:__legacy__",
        "hatchling.build",
        "flit_core.buildapi",
        "poetry.core.masonry.api",
        "pdm.backend",
        "pdm.pep517.api",
        "maturin",
        "scikit_build_core.build",
        "mesonpy",
        "uv_build",
        "sipbuild.api",
    }
)

_STRONG_KINDS = frozenset({"decode-exec", "obfuscator", "install-network", "marshal"})


# Native-addon build helpers: switching between them is how packages move their binaries around.
NATIVE_BUILD_TOOLS = frozenset(
    {
        "node-gyp",
        "node-gyp-build",
        "node-pre-gyp",
        "prebuild-install",
        "cmake-js",
        "node-gyp-build-optional-packages",
        "napi-postinstall",
    }
)


def native_build(command: str) -> bool:
    """Is every step of ``command`` a known native-addon build helper?"""
    steps = [s.split() for s in re.split(r"&&|\|\||;", command) if s.strip()]
    return bool(steps) and all(
        (step[1] if step[0] == "npx" and len(step) > 1 else step[0]) in NATIVE_BUILD_TOOLS
        for step in steps
    )


def command_risks(command: str) -> list[str]:
    """What makes an install command look like a download or an obfuscated payload."""
    return [label for label, rx in _RISKY if rx.search(command)]


def _shown(command: str, limit: int = 200) -> str:
    shown = command.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _npm_scripts(
    release: Release, from_tarball: dict[str, str] | None
) -> dict[str, tuple[str, str]]:
    """``{hook: (command, source)}``; the tarball's package.json wins where both have a hook."""
    out = {k: (v, "registry metadata") for k, v in release.install_scripts.items()}
    for key, value in (from_tarball or {}).items():
        if out.get(key, ("",))[0] != value:
            out[key] = (value, "tarball package.json")
    return out


def _npm(ctx: SignalContext, base: Release, cand: Release) -> list[Finding]:
    cmp = ctx.content
    use = isinstance(cmp, ContentComparison) and cmp.ecosystem == "npm"
    new = _npm_scripts(cand, dict(cmp.candidate_scripts) if use and cmp else None)
    if not new:
        return []  # nothing runs on install (most packages)
    old = _npm_scripts(base, dict(cmp.baseline_scripts) if use and cmp else None)
    findings: list[Finding] = []
    for hook in INSTALL_HOOKS:
        if hook not in new:
            continue
        command, source = new[hook]
        risks = command_risks(command)
        evidence: dict[str, Any] = {
            "hook": hook,
            "command": _shown(command),
            "source": source,
            "trusted_release": base.version,
        }
        if risks:
            evidence["risks"] = risks
        why = f" ({', '.join(risks)})" if risks else ""
        if hook not in old:
            findings.append(
                Finding(
                    ADDED,
                    Severity.CRITICAL if risks else Severity.HIGH,
                    f"{cand.version} adds a {hook} script that npm runs on install: "
                    f"`{_shown(command, 120)}`{why}; {base.version} had none",
                    evidence,
                )
            )
        elif old[hook][0] != command:
            evidence["previous_command"] = _shown(old[hook][0])
            severity = Severity.HIGH if risks else Severity.MEDIUM
            if not risks and native_build(command) and native_build(old[hook][0]):
                severity = Severity.LOW
                evidence["note"] = "one native-addon build helper replaced by another"
            findings.append(
                Finding(
                    CHANGED,
                    severity,
                    f"{cand.version} changes its {hook} script from "
                    f"`{_shown(old[hook][0], 80)}` to `{_shown(command, 120)}`{why}",
                    evidence,
                )
            )
    return findings


def _has_wheels(release: Release) -> bool:
    return any(a.kind == "wheel" or a.filename.endswith(".whl") for a in release.artifacts)


def _build_finding(change: BuildChange, cmp: ContentComparison, cand: Release) -> Finding:
    evidence: dict[str, Any] = {
        "file": change.file,
        "status": change.status,
        "diff": change.summary,
        "artifact": cmp.candidate_artifact,
        "baseline_artifact": cmp.baseline_artifact,
    }
    severity = Severity.LOW
    if change.kinds:
        evidence["content_kinds"] = list(change.kinds)
        severity = Severity.HIGH if _STRONG_KINDS & set(change.kinds) else Severity.MEDIUM
    if change.file.startswith("pyproject.toml"):
        backend = re.search(r"build-backend: '[^']*' -> '([^']*)'", change.summary)
        if "backend-path" in change.summary or (backend and backend[1] not in KNOWN_BACKENDS):
            severity = Severity.MEDIUM
            evidence["note"] = "an in-tree or unknown build backend runs code from the sdist"
    return Finding(
        CHANGED,
        severity,
        f"{cand.version} {change.status} {change.file}, which runs when the sdist is built: "
        f"{change.summary}",
        evidence,
    )


def _pypi(ctx: SignalContext, base: Release, cand: Release) -> list[Finding]:
    findings: list[Finding] = []
    if cand.artifacts and _has_wheels(base) and not _has_wheels(cand):
        findings.append(
            Finding(
                ADDED,
                Severity.MEDIUM,
                f"{cand.version} ships only an sdist, but {base.version} had wheels: "
                "installing it runs its build backend (setup.py) on the installing machine",
                {
                    "trusted_release": base.version,
                    "trusted_files": sorted(a.filename for a in base.artifacts)[:10],
                    "files": sorted(a.filename for a in cand.artifacts)[:10],
                },
            )
        )
    cmp = ctx.content
    if isinstance(cmp, ContentComparison) and cmp.ecosystem == "pypi" and cmp.kind == "sdist":
        findings.extend(_build_finding(c, cmp, cand) for c in cmp.build_changes)
    return findings


def install_scripts(ctx: SignalContext) -> list[Finding]:
    """The signal. Needs a trusted release to compare with (a new package has no baseline)."""
    cand, base = ctx.candidate, ctx.baseline
    if cand is None or base is None:
        return []
    if cand.ecosystem is Ecosystem.NPM:
        return _npm(ctx, base, cand)
    return _pypi(ctx, base, cand)
