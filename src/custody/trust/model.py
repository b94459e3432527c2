"""The trust file as read-only data: who is trusted to publish what, and which releases a person
approved. Parsing lives in :mod:`custody.trust.load`, editing in :mod:`custody.trust.edit`."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from custody.model import Custodian
from custody.policy import DEFAULT_POLICY, Policy
from custody.trust._ids import lookup_key, normalize_version, normalize_workflow, split_workflow


@dataclass(frozen=True, slots=True)
class TrustedEntry:
    """One ``[[trusted."ECO:NAME"]]`` or ``[[trusted-everywhere]]`` entry."""

    custodian: str
    """Custodian id or pattern: ``npm:user/NAME``, ``github:OWNER/REPO``, ``github:OWNER/*``,
    ``github:OWNER/REPO:.github/workflows/release.yml`` (bound to one workflow)."""
    since: datetime | None = None
    """First moment (UTC, inclusive) the entry applies; a date in the file means 00:00 UTC."""
    until: datetime | None = None
    """Last moment (UTC, inclusive) the entry applies; a date in the file means the whole day,
    up to 23:59:59.999999 UTC."""
    note: str | None = None
    """Free text for reviewers: why, or who wrote the entry."""
    numeric_id: str | None = None
    """Stable numeric id of the repository (GitHub repository id). When both this and the
    custodian's id are known and differ, the entry does not match (a deleted and re-registered
    repository of the same name)."""

    @property
    def identity(self) -> str:
        """The custodian without its workflow binding (``github:OWNER/REPO``)."""
        return split_workflow(self.custodian)[0]

    @property
    def workflow(self) -> str | None:
        """The bound workflow path (``.github/workflows/release.yml``), if any."""
        return split_workflow(self.custodian)[1]

    def valid_at(self, at: datetime) -> bool:
        """Does the ``since``/``until`` window include ``at`` (both ends inclusive)?"""
        at = _utc(at)
        if self.since is not None and at < self.since:
            return False
        return self.until is None or at <= self.until

    def matches(self, custodian: Custodian, *, workflow: str | None = None) -> bool:
        """Does ``custodian`` fall under this entry (ignoring the date window)?

        The workflow of a release comes from ``workflow`` or, failing that, from a custodian
        id written with one (``github:o/r:.github/workflows/x.yml``). An entry bound to a
        workflow never matches a release whose workflow is unknown."""
        identity, id_workflow = _identity(custodian.id)
        pattern, wildcards, bound = _pattern(self.custodian)
        if not (fnmatch.fnmatchcase(identity, pattern) if wildcards else identity == pattern):
            return False
        if bound is not None:
            actual = workflow if workflow is not None else id_workflow
            if actual is None or not fnmatch.fnmatchcase(normalize_workflow(actual), bound):
                return False
        return not (
            self.numeric_id is not None
            and custodian.numeric_id is not None
            and self.numeric_id != custodian.numeric_id
        )


@dataclass(frozen=True, slots=True)
class ApprovalEntry:
    """One ``[[approved."ECO:NAME"]]`` entry: a person reviewed one release and let it through."""

    version: str
    """The exact version approved."""
    by: str
    """Who approved it (an e-mail address or handle)."""
    reason: str
    """What they checked; shown to the next reviewer."""
    at: datetime | None = None
    """When (UTC); a date in the file means 00:00 UTC that day."""


def _utc(when: datetime) -> datetime:
    if when.tzinfo is UTC:
        return when  # the usual case: registry times are UTC already
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# Matching runs for every release of every checked package: the parts of a custodian id and of
# an entry's pattern are split and lower-cased once per distinct string, not once per match.


@functools.lru_cache(maxsize=8192)
def _identity(custodian_id: str) -> tuple[str, str | None]:
    """A custodian id as it is matched: its identity lower-cased (GitHub and registry names
    compare without case), and the workflow it was written with, if any."""
    identity, workflow = split_workflow(custodian_id)
    return identity.lower(), workflow


@functools.lru_cache(maxsize=4096)
def _pattern(custodian: str) -> tuple[str, bool, str | None]:
    """An entry's custodian as it is matched: its identity lower-cased, whether that has
    ``fnmatch`` wildcards (without any, matching is plain equality), and the bound workflow
    normalised."""
    identity, workflow = split_workflow(custodian)
    pattern = identity.lower()
    wildcards = any(c in pattern for c in "*?[")
    return pattern, wildcards, None if workflow is None else normalize_workflow(workflow)


_T = TypeVar("_T")


def _freeze(entries: Mapping[str, tuple[_T, ...]]) -> Mapping[str, tuple[_T, ...]]:
    merged: dict[str, tuple[_T, ...]] = {}
    for key, values in entries.items():
        norm = lookup_key(key)
        merged[norm] = merged.get(norm, ()) + tuple(values)
    return MappingProxyType(merged)


@dataclass(frozen=True, slots=True)
class TrustFile:
    """A parsed ``custody.toml``. Package keys are canonical (``pypi:django``); look-ups accept
    any spelling of a key."""

    path: Path | None
    """Where it was read from; None for the built-in empty trust file."""
    policy: Policy = DEFAULT_POLICY
    """The ``[policy]`` table merged over the defaults."""
    trusted_everywhere: tuple[TrustedEntry, ...] = ()
    """Custodians trusted for every package (an organisation's own accounts and CI)."""
    trusted: Mapping[str, tuple[TrustedEntry, ...]] = field(default_factory=dict)
    """Custodians trusted per package key, in file order."""
    approved: Mapping[str, tuple[ApprovalEntry, ...]] = field(default_factory=dict)
    """Approved releases per package key, in file order."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "trusted", _freeze(self.trusted))
        object.__setattr__(self, "approved", _freeze(self.approved))

    def knows(self, package_key: str) -> bool:
        """Has the file any trusted or approved entry for this package?"""
        key = lookup_key(package_key)
        return bool(self.trusted.get(key)) or bool(self.approved.get(key))

    def entries_for(self, package_key: str) -> tuple[TrustedEntry, ...]:
        """The package's own entries, then the trusted-everywhere ones, whatever their dates:
        the entries :func:`first_trusting` tries, in order."""
        return self.trusted.get(lookup_key(package_key), ()) + self.trusted_everywhere

    def trusted_for(self, package_key: str, at: datetime | None = None) -> tuple[TrustedEntry, ...]:
        """The package's own entries, then the trusted-everywhere ones, that apply at ``at``
        (None: now). Naive datetimes are taken as UTC."""
        when = datetime.now(UTC) if at is None else _utc(at)
        return tuple(e for e in self.entries_for(package_key) if e.valid_at(when))

    def trusting(
        self,
        package_key: str,
        custodian: Custodian,
        at: datetime | None = None,
        *,
        workflow: str | None = None,
    ) -> TrustedEntry | None:
        """The first entry that trusts ``custodian`` to publish ``package_key`` at ``at``
        (None: now), or None. ``workflow`` is the release's provenance workflow path, needed
        to match entries bound to a workflow."""
        return first_trusting(self.entries_for(package_key), custodian, at, workflow=workflow)

    def approval(self, package_key: str, version: str) -> ApprovalEntry | None:
        """The approval of exactly this release, if any (PyPI versions compare by PEP 440:
        ``1.0`` is ``1.0.0``)."""
        key = lookup_key(package_key)
        entries = self.approved.get(key)
        if not entries:
            return None
        wanted = normalize_version(key, version)
        for entry in entries:
            if normalize_version(key, entry.version) == wanted:
                return entry
        return None


def first_trusting(
    entries: Iterable[TrustedEntry],
    custodian: Custodian,
    at: datetime | None = None,
    *,
    workflow: str | None = None,
) -> TrustedEntry | None:
    """The first of ``entries`` that applies at ``at`` (None: now) and matches ``custodian``
    (built with ``workflow``), or None. :meth:`TrustFile.trusting` with the package's
    entries looked up once, for callers that ask about one package many times."""
    when = datetime.now(UTC) if at is None else _utc(at)
    for entry in entries:
        if entry.valid_at(when) and entry.matches(custodian, workflow=workflow):
            return entry
    return None


EMPTY_TRUST = TrustFile(None, DEFAULT_POLICY, (), {}, {})
"""What applies when a project has no ``custody.toml``: default policy, nothing trusted."""
