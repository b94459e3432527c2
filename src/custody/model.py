"""Frozen domain types shared by every part of Custody.

Everything here is plain data: no I/O, no network. Times are timezone-aware UTC ``datetime``s.
The registry-history types (a ``PackageHistory`` and what it holds) are frozen ``msgspec``
structs, the rest frozen dataclasses; see ``_Record`` for why.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import msgspec


class _Record(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """Base of the registry-history types: immutable and hashable like a frozen dataclass, but
    built, msgpack-encoded and decoded in C. A thousand npm packages hold about 24,000
    releases; every cold run builds them (the parser) and every warm run decodes them from the
    ledger, which is 1.5 to 2.3 times faster than with dataclasses. ``gc=False``: records hold
    only strings, times and other records, never cycles, so the garbage collector need not
    track them. ``array_like``: encoded as arrays, not maps, so the cached form (gated by the
    parser's version string, ``derived.py``) must change version when the fields do. Copy
    with ``msgspec.structs.replace``, not ``dataclasses.replace``."""


class Ecosystem(StrEnum):
    NPM = "npm"
    PYPI = "pypi"


class Severity(StrEnum):
    """How strongly a finding suggests a change of hands. Ordered: info < low < medium < high <
    critical. Policy tiers turn severities into actions."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER[self]


_SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


class Action(StrEnum):
    ALLOW = "allow"
    HOLD = "hold"  # needs a human approval
    BLOCK = "block"  # known malicious or provably tampered

    @property
    def rank(self) -> int:
        return {"allow": 0, "hold": 1, "block": 2}[self.value]


TRUSTED_PUBLISHER_PREFIX = "npm:trusted-publisher/"


class Custodian(_Record, frozen=True):
    """An identity that can put a release into the world.

    ``id`` is the canonical string: ``npm:user/dominictarr``, ``pypi:user/glenn-jocher``,
    ``pypi:org/ultralytics``, ``github:owner/repo`` (a provenance source repository).
    ``numeric_id`` keeps a stable numeric identity beside it where one exists (GitHub repository
    id: a renamed repository keeps it, a re-registered one does not)."""

    id: str
    numeric_id: str | None = None

    @classmethod
    def npm_user(cls, name: str) -> Custodian:
        return cls(f"npm:user/{name}")

    @classmethod
    def pypi_user(cls, name: str) -> Custodian:
        return cls(f"pypi:user/{name}")

    @property
    def namespace(self) -> str:
        """``npm``, ``pypi``, ``github``, ``gitlab`` ..."""
        return self.id.split(":", 1)[0]

    @property
    def name(self) -> str:
        """The last path segment: the account name, or ``owner/repo`` for a repository."""
        rest = self.id.split(":", 1)[-1]
        kind, _, name = rest.partition("/")
        return name if kind in ("user", "org") else rest

    def matches(self, pattern: str) -> bool:
        """Does this identity match a trust-file pattern (``github:my-org/*``, exact ids)?"""
        return fnmatch.fnmatchcase(self.id.lower(), pattern.lower())

    def __str__(self) -> str:
        return self.id


class Provenance(_Record, frozen=True):
    """Signed build provenance attached to a release (npm SLSA attestation, PyPI PEP 740) or the
    trusted-publishing identity the registry recorded.

    ``verified`` is None when nobody checked the signature (the registry only said it exists),
    True/False after verification."""

    kind: str  # "npm-attestation", "npm-trusted-publisher", "pep740"
    verified: bool | None = None
    source: Custodian | None = None  # github:owner/repo with numeric_id when known
    workflow: str | None = None  # ".github/workflows/release.yml"
    ref: str | None = None  # "refs/tags/v1.2.3"
    commit: str | None = None
    issuer: str | None = None  # OIDC issuer / CI platform


class DeclaredDependency(_Record, frozen=True):
    name: str
    spec: str  # range or PEP 508 specifier, as declared
    kind: str = "prod"  # npm: prod|optional|peer|dev|bundled; pypi: requires-dist
    marker: str | None = None


class Artifact(_Record, frozen=True):
    """One downloadable file of a release (npm tarball, wheel, sdist)."""

    filename: str
    url: str | None = None
    digests: dict[str, str] = msgspec.field(default_factory=dict)  # {"sha512": "...", ...}
    integrity: str | None = None  # npm SRI string when given
    size: int | None = None
    kind: str | None = None  # "tarball", "wheel", "sdist"
    uploaded_at: datetime | None = None
    uploader: Custodian | None = None
    yanked: bool = False
    has_metadata: bool = False  # PEP 658 .metadata available
    has_signatures: bool = False  # npm dist.signatures present
    has_attestations: bool = False  # npm dist.attestations / PEP 740 provenance present


class Release(_Record, frozen=True):
    """The custody record of one version of one package.

    Fields are None where the registry does not tell (the mirror strips npm's ``_npmUser``,
    PyPI never names an uploader): a signal must treat None as "unknown", never as "same"."""

    ecosystem: Ecosystem
    name: str
    version: str
    published_at: datetime | None = None
    publisher: Custodian | None = None
    approver: Custodian | None = None  # npm staged publish approver
    maintainers: frozenset[Custodian] | None = None  # as listed with this release
    provenance: Provenance | None = None
    artifacts: tuple[Artifact, ...] = ()
    dependencies: tuple[DeclaredDependency, ...] | None = None  # None: not fetched / unknown
    install_scripts: dict[str, str] = msgspec.field(default_factory=dict)  # preinstall/install/...
    repository: str | None = None  # normalised URL, e.g. https://github.com/owner/repo
    git_head: str | None = None
    deprecated: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    unpublished: bool = False  # the registry remembers the version but serves no files

    @property
    def key(self) -> str:
        return f"{self.ecosystem.value}:{self.name}@{self.version}"

    @property
    def details_removed(self) -> bool:
        """Only a version number and a time: no files and no custody record. What the registry
        keeps of a version unpublished later, which ``PackageHistory.as_of`` shows as published
        (a published release has files). Nothing to compare a release with."""
        return (
            not self.artifacts
            and self.publisher is None
            and self.maintainers is None
            and self.provenance is None
            and self.dependencies is None
            and self.repository is None
        )

    @property
    def by_shared_ci(self) -> bool:
        """Published by a CI system many packages share (npm trusted publishing,
        ``npm:trusted-publisher/ID``), not by an account: no burst of one publisher."""
        publisher = self.publisher
        return (publisher is not None and publisher.id.startswith(TRUSTED_PUBLISHER_PREFIX)) or (
            self.provenance is not None and self.provenance.kind == "npm-trusted-publisher"
        )

    @property
    def identities(self) -> tuple[Custodian, ...]:
        """Everyone this release's custody names: its publisher and its provenance source."""
        out = [self.publisher] if self.publisher is not None else []
        if self.provenance is not None and self.provenance.source is not None:
            out.append(self.provenance.source)
        return tuple(out)


class OwnerRole(_Record, frozen=True):
    """A current owner/maintainer as the registry shows it today (npm top-level maintainers,
    PyPI ownership roles, devpi upload ACL)."""

    custodian: Custodian
    role: str = "maintainer"  # "Owner", "Maintainer", "maintainer", "acl_upload", "organization"


class PackageHistory(_Record, frozen=True):
    """Everything a registry says about one package, as custody records."""

    ecosystem: Ecosystem
    name: str
    registry: str  # base URL of the registry it came from
    fetched_at: datetime
    releases: tuple[Release, ...] = ()  # ordered oldest first (by publish time, then version)
    current_owners: tuple[OwnerRole, ...] | None = None  # None when the registry hides them
    organization: str | None = None
    dist_tags: dict[str, str] = msgspec.field(default_factory=dict)
    deprecated: str | None = None  # package-level note
    funding: tuple[str, ...] = ()
    repository: str | None = None  # package-level repository (latest)
    description: str | None = None  # package-level summary (npm "description")

    def release(self, version: str) -> Release | None:
        # Newest first: a locked or judged release is usually one of the latest, and a
        # package's versions are unique.
        for r in reversed(self.releases):
            if r.version == version:
                return r
        return None

    def predecessors(self, version: str) -> list[Release]:
        """Releases listed before ``version`` (oldest first), without unpublished ones (nor
        those unpublished later that ``as_of`` shows again: ``Release.details_removed``)."""
        out = []
        for r in self.releases:
            if r.version == version:
                break
            if not r.unpublished and not r.details_removed:
                out.append(r)
        return out

    def as_of(self, when: datetime | None) -> PackageHistory:
        """The history as it looked at ``when``: releases published later are dropped, a
        release unpublished later still counts as published, today's owners become unknown."""
        if when is None:
            return self
        kept = tuple(
            msgspec.structs.replace(r, unpublished=False) if r.unpublished else r
            for r in self.releases
            if r.published_at is None or r.published_at <= when
        )
        owners = self.current_owners if when >= self.fetched_at else None
        return msgspec.structs.replace(self, releases=kept, current_owners=owners)


@dataclass(frozen=True, slots=True)
class Observation:
    """A custody fact the registry keeps no history of, with when Custody saw it.

    ``fact`` is "owner" (PyPI role, devpi ACL, npm top-level maintainer) or "organization".
    ``gone_since`` is set once a later look no longer shows it."""

    ecosystem: Ecosystem
    package: str
    fact: str
    subject: str  # custodian id or organisation name
    role: str | None
    first_seen: datetime
    last_seen: datetime
    gone_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class SourceLocation:
    path: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class LockedDependency:
    """One locked release in one lockfile."""

    ecosystem: Ecosystem
    name: str  # normalised: npm name as-is (lower-case by rule), PyPI PEP 503 normalised
    version: str
    direct: bool
    paths: tuple[tuple[str, ...], ...] = ()  # chains of package names from the root, the
    # dependency itself last; e.g. (("event-stream", "flatmap-stream"),)
    integrity: str | None = None  # "sha512-..." (npm SRI) or "sha256:<hex>" (Python)
    resolved: str | None = None  # download URL when the lockfile records it
    marker: str | None = None  # PEP 508 environment marker, kept as written
    location: SourceLocation | None = None  # where in the lockfile it is declared
    dev: bool = False
    optional: bool = False
    other_sources: tuple[tuple[str | None, str | None], ...] = ()
    """``(integrity, resolved)`` of other entries locking the same release that disagree with
    this one's (a nested copy, another lockfile): each is checked, none hidden by the merge."""

    @property
    def key(self) -> str:
        return f"{self.ecosystem.value}:{self.name}@{self.version}"

    @property
    def sources(self) -> tuple[tuple[str | None, str | None], ...]:
        """Every ``(integrity, resolved)`` the lockfiles record for this release."""
        return ((self.integrity, self.resolved), *self.other_sources)

    def merged_sources(self, other: LockedDependency) -> dict[str, Any]:
        """The ``integrity``, ``resolved`` and ``other_sources`` of this entry merged with
        another entry of the same release: a missing value is filled from the other, a
        disagreeing pair is kept beside it."""
        integrity, resolved = self.integrity, self.resolved
        extra = list(self.other_sources)
        for theirs in other.sources:
            their_integrity, their_resolved = theirs
            fits = (integrity is None or their_integrity in (None, integrity)) and (
                resolved is None or their_resolved in (None, resolved)
            )
            if fits:
                integrity, resolved = integrity or their_integrity, resolved or their_resolved
            elif theirs not in extra:
                extra.append(theirs)
        return {"integrity": integrity, "resolved": resolved, "other_sources": tuple(extra)}

    @property
    def package_key(self) -> str:
        return f"{self.ecosystem.value}:{self.name}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One signal's result. ``evidence`` is JSON-serialisable and lets a reviewer check it."""

    rule: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


class PublishEvent(NamedTuple):
    """One release as published by one custodian (what the ledger remembers for the
    publish-burst signal). A plain 5-tuple in this order works too."""

    ecosystem: Ecosystem
    package: str
    version: str
    publisher_id: str  # custodian id, e.g. "npm:user/alice"
    published_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    ecosystem: Ecosystem
    package: str
    version: str
    from_version: str | None
    action: Action
    findings: tuple[Finding, ...] = ()
    tier: str | None = None
    locations: tuple[SourceLocation, ...] = ()
    approved_by: str | None = None  # set when an approval in the trust file allowed it

    @property
    def key(self) -> str:
        return f"{self.ecosystem.value}:{self.package}@{self.version}"


def parse_package_ref(text: str) -> tuple[Ecosystem, str, str | None]:
    """Parse ``ECO:NAME[@VERSION]`` (``npm:@scope/pkg@1.2.3``, ``pypi:requests``).

    A malformed reference is bad usage: raises :class:`custody.errors.InputError` (exit 2)."""
    from custody.errors import InputError

    eco_text, sep, rest = text.partition(":")
    if not sep or not rest:
        raise InputError(f"expected ECO:NAME[@VERSION], e.g. npm:event-stream@3.3.6; got {text!r}")
    try:
        eco = Ecosystem(eco_text.lower())
    except ValueError:
        raise InputError(
            f"unknown ecosystem {eco_text!r} in {text!r}; expected one of "
            + ", ".join(e.value for e in Ecosystem)
        ) from None
    at = rest.rfind("@")
    if at > 0:
        name, version = rest[:at], rest[at + 1 :] or None
    else:
        name, version = rest, None
    if not name:
        raise InputError(f"missing package name in {text!r}")
    return eco, name, version
