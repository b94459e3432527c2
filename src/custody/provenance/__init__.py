"""Signed provenance: verify npm SLSA attestations and PyPI PEP 740 attestations against the
Sigstore trust root, and extract the identity that built a release (source repository with its
numeric id, workflow, ref, commit, issuer).

The engine calls ``verify_histories`` for the releases its signals compare; a failed check is a
``provenance.invalid`` finding (``ProvenanceCheck.finding()``), which blocks."""

from custody.provenance.claims import CertificateIdentity, certificate_claims
from custody.provenance.npm import verify_npm_attestations
from custody.provenance.pep740 import verify_pep740
from custody.provenance.result import RULE, Failure, ProvenanceCheck, Status
from custody.provenance.trustroot import TrustRootUnavailable
from custody.provenance.verify import (
    apply_checks,
    check_releases,
    needs_verification,
    provenance_versions,
    verify_histories,
)

__all__ = [
    "RULE",
    "CertificateIdentity",
    "Failure",
    "ProvenanceCheck",
    "Status",
    "TrustRootUnavailable",
    "apply_checks",
    "certificate_claims",
    "check_releases",
    "needs_verification",
    "provenance_versions",
    "verify_histories",
    "verify_npm_attestations",
    "verify_pep740",
]
