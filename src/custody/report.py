"""The result of a run, shared by every output format and the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from custody.model import Action, Decision

SCHEMA = "custody/report@1"


@dataclass(frozen=True, slots=True)
class Report:
    command: str  # "check", "diff"
    decisions: tuple[Decision, ...]
    generated_at: datetime
    as_of: datetime | None = None
    lockfiles: tuple[str, ...] = ()
    trust_file: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def count(self, action: Action) -> int:
        return sum(1 for d in self.decisions if d.action is action)

    @property
    def exit_code(self) -> int:
        """0 when nothing is held or blocked, 1 otherwise (DESIGN.md)."""
        return 1 if any(d.action is not Action.ALLOW for d in self.decisions) else 0
