"""The signal interface: a pure function of what the readers fetched, returning findings.

Signals never touch the network or the ledger: the engine hands them a ``SignalContext`` with
everything already fetched, so they are trivial to test and cheap to run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from packaging.utils import canonicalize_name

from custody.content.result import ContentComparison
from custody.fingerprint.result import FingerprintResult
from custody.model import (
    Custodian,
    Ecosystem,
    Finding,
    LockedDependency,
    Observation,
    PackageHistory,
    PublishEvent,
    Release,
)
from custody.osv import KnownBadRecord
from custody.policy import DEFAULT_POLICY, Policy
from custody.provenance.result import ProvenanceCheck


class TrustedSet:
    """The custodians whose releases of one package are accepted without review.

    Combines the trust file's entries (package-specific and organisation-wide, with their date
    ranges) with ``implicit`` custodians: those of the release being replaced in a diff, or of
    the package's earlier releases when the policy trusts on first use. ``approved`` answers
    whether a person approved one version of the package (``[[approved]]``)."""

    def __init__(
        self,
        matcher: Callable[[Custodian, datetime | None, str | None], str | None],
        implicit: frozenset[str] = frozenset(),
        approved: Callable[[str], bool] = lambda version: False,
    ) -> None:
        self._matcher = matcher
        self.implicit = implicit
        self.approved = approved

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
        if custodian is None:
            return False
        # ``reason`` without the call: this runs for most releases of every package
        return custodian.id in self.implicit or self._matcher(custodian, at, workflow) is not None

    def trusts_release(self, release: Release) -> bool:
        """Is the release's publisher, or its provenance source and workflow, trusted?"""
        at = release.published_at
        if self.trusts(release.publisher, at):
            return True
        prov = release.provenance
        return prov is not None and self.trusts(prov.source, at, prov.workflow)

    def accepts(self, release: Release) -> bool:
        """Was the release let through by the trust file: its custody is trusted, or a person
        approved it?"""
        return self.trusts_release(release) or self.approved(release.version)


def package_id(ecosystem: Ecosystem, name: str) -> tuple[Ecosystem, str]:
    """The key a package is looked up by: npm names exact, PyPI names PEP 503 normalised."""
    return (ecosystem, canonicalize_name(name) if ecosystem is Ecosystem.PYPI else name)


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One locked release of the scanned tree, as the first judging pass saw it."""

    dependency: LockedDependency
    history: PackageHistory | None
    """The package's history (cut to ``--as-of``); None when the registry does not know it."""
    candidate: Release | None
    """The locked release in that history, if the registry has it."""
    new: bool
    """The package is new to the tree: the trust file has no entry for it (``check``), or the
    old side of a diff did not have it."""
    findings: tuple[Finding, ...] = ()
    """The first pass's findings (custody, release, age, known-bad, burst signals)."""
    held: bool = False
    """The first pass held or blocked it (before approvals)."""


@dataclass(frozen=True, slots=True)
class TreeView:
    """The scanned tree after the first judging pass, for the signals that look across packages
    (``deps.*``): for a package name, its locked releases, histories, whether it is new, and
    its own findings so far. Built by ``judge_all``; never refers back to the second pass."""

    entries: Mapping[tuple[Ecosystem, str], tuple[TreeEntry, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    dependents_of: Mapping[tuple[Ecosystem, str], tuple[TreeEntry, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Reverse index: the entries whose locked release declares a dependency on the key."""

    @classmethod
    def build(cls, entries: Iterable[TreeEntry]) -> TreeView:
        by_package: dict[tuple[Ecosystem, str], list[TreeEntry]] = defaultdict(list)
        dependents: dict[tuple[Ecosystem, str], list[TreeEntry]] = defaultdict(list)
        for entry in entries:
            dep = entry.dependency
            by_package[package_id(dep.ecosystem, dep.name)].append(entry)
            declared = entry.candidate.dependencies if entry.candidate else None
            if not declared:
                continue
            for d in {d.name for d in declared if d.kind != "dev"}:
                dependents[package_id(dep.ecosystem, d)].append(entry)
        return cls(
            MappingProxyType({k: tuple(v) for k, v in by_package.items()}),
            MappingProxyType({k: tuple(v) for k, v in dependents.items()}),
        )

    def lookup(self, ecosystem: Ecosystem, name: str) -> tuple[TreeEntry, ...]:
        """The locked releases of a package in the tree (several when lockfiles disagree);
        empty when the tree does not have it."""
        return self.entries.get(package_id(ecosystem, name), ())

    def dependents(self, ecosystem: Ecosystem, name: str) -> tuple[TreeEntry, ...]:
        """The entries whose locked release declares ``name`` as a dependency."""
        return self.dependents_of.get(package_id(ecosystem, name), ())


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
    known_package: bool = True  # the trust file has entries for this package (or a diff
    # supplies the release it replaces): not a new package
    policy: Policy = DEFAULT_POLICY  # the trust file's [policy]
    tree: TreeView | None = None  # the whole scanned tree, for the second pass (deps.*)
    known_bad: tuple[KnownBadRecord, ...] = ()  # OSV malicious-package records naming it
    publishes: tuple[PublishEvent, ...] = ()  # the candidate publisher's publishes around its
    # publish time, as the ledger saw them (custody.publish-burst)
    content: ContentComparison | None = None  # the candidate's files against the baseline's
    content_error: Finding | None = None  # an unsafe archive or an integrity mismatch
    provenance_check: ProvenanceCheck | None = None  # the candidate's verification, if run
    fingerprints: tuple[FingerprintResult, ...] = ()  # artifact vs source (opt-in policy)
    preceding: InitVar[Sequence[Release] | None] = None
    """The candidate's ``predecessors`` when the caller has them already (``judge_release``
    does); else they are computed on first use. Not kept by ``replace``."""
    _predecessors: tuple[Release, ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self, preceding: Sequence[Release] | None) -> None:
        if preceding is not None:
            object.__setattr__(self, "_predecessors", tuple(preceding))

    @property
    def predecessors(self) -> Sequence[Release]:
        """Releases published before the candidate (oldest first), excluding unpublished ones.
        Computed on first use and kept: several signals read them, and each computation is a
        scan of the whole history."""
        found = self._predecessors
        if found is None:
            cand = self.candidate
            found = tuple(self.history.predecessors(cand.version)) if cand else ()
            object.__setattr__(self, "_predecessors", found)  # a cache, not a change of state
        return found

    def with_tree(self, tree: TreeView) -> SignalContext:
        """The same context for the second pass: with ``tree``, and the predecessors found so
        far kept (``replace`` alone would drop them)."""
        return replace(self, tree=tree, preceding=self._predecessors)


Signal = Callable[[SignalContext], list[Finding]]
