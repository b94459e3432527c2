"""What a provenance verification found, and the ``provenance.invalid`` finding it makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from custody.model import Finding, Provenance, Severity
from custody.provenance.claims import CertificateIdentity

RULE = "provenance.invalid"


class Status(StrEnum):
    VERIFIED = "verified"
    """Signature, transparency log, subject digest and identity all check out."""
    INVALID = "invalid"
    """Something was checked and failed: ``provenance.invalid`` (blocks)."""
    UNVERIFIED = "unverified"
    """Nothing could be checked (no document served, offline, unsupported format): the
    provenance stays "present, not verified", never a pass and never a failure."""


class Failure(StrEnum):
    SIGNATURE = "signature"  # sigstore: certificate chain, transparency log, DSSE signature
    DIGEST = "digest"  # the attested subject digest is not the artifact's
    SUBJECT = "subject"  # the attested subject names another package or file
    IDENTITY = "identity"  # the certificate's identity is not the one the registry claims


@dataclass(frozen=True, slots=True)
class ProvenanceCheck:
    """The verification of one release's provenance (all its attested artifacts)."""

    release: str
    """Release key, ``npm:name@1.0.0``."""
    status: Status
    message: str
    """One line for a person."""
    kind: str
    """``npm-attestation`` or ``pep740``."""
    provenance: Provenance | None = None
    """What ``Release.provenance`` should become: ``verified=True`` with the certificate's
    identity, ``verified=False`` (and no source: an unverified identity is no identity) on a
    failure, None when nothing could be checked (keep the registry's record)."""
    artifact: str | None = None
    """The file whose attestation decided the status (the failing one, if any)."""
    failure: Failure | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    """What the registry says (artifact digest, package, publisher identity)."""
    actual: dict[str, Any] = field(default_factory=dict)
    """What the attestation says."""
    identity: CertificateIdentity | None = None
    """The signing certificate's identity (also set when only the identity check failed)."""
    predicate_type: str | None = None
    trust_root: str | None = None
    artifacts: tuple[str, ...] = ()
    """Every file whose attestation was verified."""

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status.value,
            "kind": self.kind,
            "artifact": self.artifact,
            "failure": self.failure.value if self.failure else None,
            "expected": self.expected,
            "actual": self.actual,
            "predicate_type": self.predicate_type,
            "trust_root": self.trust_root,
        }
        if self.identity is not None:
            out["certificate"] = self.identity.evidence()
        return out

    def finding(self) -> Finding | None:
        """``provenance.invalid`` (critical; blocks) when the verification failed."""
        if self.status is not Status.INVALID:
            return None
        return Finding(RULE, Severity.CRITICAL, f"{self.release}: {self.message}", self.evidence())


def unverified(release: str, kind: str, message: str, **kw: Any) -> ProvenanceCheck:
    return ProvenanceCheck(release, Status.UNVERIFIED, message, kind, **kw)


def invalid(
    release: str,
    kind: str,
    failure: Failure,
    message: str,
    *,
    expected: dict[str, Any],
    actual: dict[str, Any],
    **kw: Any,
) -> ProvenanceCheck:
    return ProvenanceCheck(
        release,
        Status.INVALID,
        message,
        kind,
        provenance=Provenance(kind=kind, verified=False),
        failure=failure,
        expected=expected,
        actual=actual,
        **kw,
    )
