"""What a content comparison yields: the types judging, the signals and the result cache read.

Kept apart from ``compare.py`` so that reading a comparison (from the result cache, in a
signal) does not load the heuristics that compute one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# The version of what a comparison yields. Bump it with ANY change to what ``compare_archives``
# (compare.py, heuristics.py), ``read_archive`` (archive.py) or ``compare_files`` (review.py)
# compute, and to the fields of ``ContentComparison`` and its parts: it is part of the key of
# the comparison result cache (results_cache.py), so a result computed by older logic is never
# reused as a verdict.
COMPARISON_FORMAT = 1

Role = Literal["install", "entry", "code", "test"]
INSTALL_HOOKS = ("preinstall", "install", "postinstall")


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    status: Literal["added", "removed", "changed"]
    old_size: int | None = None
    new_size: int | None = None


@dataclass(frozen=True, slots=True)
class ContentFlag:
    """One suspicious thing found in new code."""

    path: str  # relative to the package root ("index.js", "pkg/__init__.py")
    kind: str  # appended-code, minified, high-entropy, encoded-string, obfuscator,
    # dynamic-exec, decode-exec, child-process, marshal, pth-exec, install-network
    label: str  # what matched, in words: "eval(", "base64 string"
    lines: tuple[int, int]  # 1-based, inclusive, in the candidate's file
    excerpt: str  # short, escaped
    metrics: dict[str, Any] = field(default_factory=dict)
    role: Role = "code"  # install hook / entry point (main, __init__.py) / code / test
    new_file: bool = False
    appended: bool = False  # inside code appended to the end of an existing file
    seen_elsewhere: bool = False  # new file; the baseline package had this kind elsewhere

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.path,
            "kind": self.kind,
            "what": self.label,
            "lines": list(self.lines),
            "excerpt": self.excerpt,
            "role": self.role,
        }
        if self.metrics:
            out["metrics"] = self.metrics
        for key in ("new_file", "appended", "seen_elsewhere"):
            if getattr(self, key):
                out[key] = True
        return out


@dataclass(frozen=True, slots=True)
class BuildChange:
    """A change to what runs when an sdist is built (``setup.py``, ``[build-system]``)."""

    file: str
    status: Literal["added", "removed", "changed"]
    summary: str
    kinds: tuple[str, ...] = ()  # content flags raised in that file


@dataclass(frozen=True, slots=True)
class ContentComparison:
    """What changed between two artifacts, and what of it looks packed or dangerous."""

    ecosystem: str  # "npm" | "pypi"
    kind: str  # "tarball" | "wheel" | "sdist"
    baseline_artifact: str
    candidate_artifact: str
    baseline_version: str | None = None
    candidate_version: str | None = None
    added: tuple[FileChange, ...] = ()
    removed: tuple[FileChange, ...] = ()
    changed: tuple[FileChange, ...] = ()
    moved: tuple[str, ...] = ()  # added files identical to a baseline file
    unchanged: int = 0
    flags: tuple[ContentFlag, ...] = ()
    build_changes: tuple[BuildChange, ...] = ()
    baseline_scripts: Mapping[str, str] = field(default_factory=dict)  # npm, from package.json
    candidate_scripts: Mapping[str, str] = field(default_factory=dict)  # in the tarball
    bytes_compared: int = 0  # unpacked bytes of both sides
    truncated: tuple[str, ...] = ()  # files analysed only up to the cap

    def summary(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline_artifact,
            "candidate": self.candidate_artifact,
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
        }
