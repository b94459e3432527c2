"""The signal interface: a pure function of what the readers fetched, returning findings.

Signals never touch the network or the ledger: the engine hands them a ``SignalContext`` with
everything already fetched, so they are trivial to test and cheap to run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from custody.model import (
    Custodian,
    Finding,
    LockedDependency,
    Observation,
    PackageHistory,
    Release,
)


class TrustedSet:
    """The custodians whose releases of one package are accepted without review.

    Combines the trust file's entries (package-specific and organisation-wide, with their date
    ranges) with ``implicit`` custodians: those of the release being replaced in a diff, or of
    the package's earlier releases when the policy trusts on first use."""

    def __init__(
        self,
        matcher: Callable[[Custodian, datetime | None, str | None], str | None],
        implicit: frozenset[str] = frozenset(),
    ) -> None:
        self._matcher = matcher
        self.implicit = implicit

    def reason(
        self, custodian: Custodian, at: datetime | None, workflow: str | None = None
    ) -> str | None:
        """Why ``custodian`` (building with ``workflow``, for a provenance source) is trusted at
        ``at``: the trust-file pattern, or "implicit"; None when it is not."""
        if custodian.id in self.implicit:
            return "implicit"
        return self._matcher(custodian, at, workflow)

    def trusts(
        self, custodian: Custodian | None, at: datetime | None, workflow: str | None = None
    ) -> bool:
        return custodian is not None and self.reason(custodian, at, workflow) is not None

    def trusts_release(self, release: Release) -> bool:
        """Is the release's publisher, or its provenance source and workflow, trusted?"""
        at = release.published_at
        if self.trusts(release.publisher, at):
            return True
        prov = release.provenance
        return prov is not None and self.trusts(prov.source, at, prov.workflow)


@dataclass(frozen=True, slots=True)
class SignalContext:
    """Everything a signal may look at for one locked release."""

    dependency: LockedDependency
    history: PackageHistory  # already cut to ``now`` (``--as-of``)
    candidate: Release | None  # None: the registry does not know this version
    baseline: Release | None  # the trusted release it is judged against, if any
    trusted: TrustedSet
    observations: tuple[Observation, ...]
    now: datetime
    known_package: bool = True  # the trust file has entries for this package

    @property
    def predecessors(self) -> Sequence[Release]:
        """Releases published before the candidate (oldest first), excluding unpublished ones."""
        return self.history.predecessors(self.candidate.version) if self.candidate else ()


Signal = Callable[[SignalContext], list[Finding]]
