"""What a fingerprint found: the artifact's files that its source commit does not explain."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from custody.model import Finding, Severity

RULE = "content.not-in-source"
SHOWN = 8  # files named in a message
MAX_LISTED = 200  # files listed in the evidence


class FileStatus(StrEnum):
    EXTRA = "extra"  # in the artifact, not in the source
    DIFFERS = "differs"  # in both, with other bytes


@dataclass(frozen=True, slots=True)
class FileReport:
    """One artifact file the source does not match."""

    path: str
    status: FileStatus
    severity: Severity
    reason: str
    """Why it is (or is not) explained: "unexplained code file", "build output: ..."."""
    explained: bool
    """A declared build output or a file packaging tools generate."""
    source_path: str | None = None
    """Where it was looked for in the repository."""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status.value,
            "severity": self.severity.value,
            "explained": self.explained,
            "reason": self.reason,
            "source_path": self.source_path,
        }


@dataclass(frozen=True, slots=True)
class FingerprintResult:
    """One artifact compared with its source. ``note`` says why nothing was compared."""

    release: str
    artifact: str | None
    repository: str | None = None
    commit: str | None = None
    resolved_from: str | None = None
    """How the commit was found: ``provenance``, ``gitHead``, ``tag v1.2.3``, ``given``."""
    package_dir: str = ""
    """The package's directory in the repository ("" for the root)."""
    matched: int = 0
    """Artifact files identical to the source."""
    files: tuple[FileReport, ...] = ()
    note: str | None = None
    notes: tuple[str, ...] = ()
    """Other remarks (a provenance commit the repository does not have ...)."""

    @property
    def compared(self) -> bool:
        return self.note is None and self.commit is not None

    @property
    def severity(self) -> Severity | None:
        return max((f.severity for f in self.files), key=lambda s: s.rank, default=None)

    @property
    def unexplained(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if not f.explained)

    def message(self) -> str:
        where = f"{self.repository} at {(self.commit or '')[:12]}"
        what = self.artifact or self.release
        if not self.files:
            return f"{what}: every file matches {where}"
        shown = sorted(self.files, key=lambda f: (-f.severity.rank, f.path))[:SHOWN]
        names = ", ".join(f"{f.path} ({f.status.value}: {f.reason})" for f in shown)
        more = f" and {len(self.files) - SHOWN} more" if len(self.files) > SHOWN else ""
        unexplained = len(self.unexplained)
        lead = (
            f"{unexplained} file(s) in {what} are not in the source {where}"
            if unexplained
            else f"{what} differs from {where} only in declared build outputs"
        )
        return f"{lead}: {names}{more}"

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "artifact": self.artifact,
            "repository": self.repository,
            "commit": self.commit,
            "resolved_from": self.resolved_from,
            "package_dir": self.package_dir,
            "matched": self.matched,
            "compared": self.compared,
            "note": self.note,
            "notes": list(self.notes),
            "files": [f.to_json() for f in self.files[:MAX_LISTED]],
            "files_total": len(self.files),
        }

    def finding(self) -> Finding | None:
        """``content.not-in-source``: high when a code file is unexplained, low or info when
        only declared build outputs or generated files differ. None when all matched or
        nothing was compared."""
        severity = self.severity
        if not self.compared or severity is None:
            return None
        evidence = self.to_json()
        evidence["unexplained"] = [f.path for f in self.unexplained][:MAX_LISTED]
        evidence["build_outputs"] = [f.path for f in self.files if f.explained][:MAX_LISTED]
        return Finding(RULE, severity, self.message(), evidence)
