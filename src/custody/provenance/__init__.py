"""Signed provenance: verify npm SLSA attestations and PyPI PEP 740 attestations against the
Sigstore trust root, and extract the identity that built a release (source repository with its
numeric id, workflow, ref, commit, issuer).

The engine calls ``verify_histories`` for the releases its signals compare; a failed check is a
``provenance.invalid`` finding (``ProvenanceCheck.finding()``), which blocks."""

from typing import TYPE_CHECKING

from custody.lazy import lazy_exports

if TYPE_CHECKING:
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

# Loaded on first use: the verifiers import sigstore and pypi-attestations (half a second),
# which a run with no provenance to verify never needs.
_WHERE = {
    "CertificateIdentity": "custody.provenance.claims",
    "Failure": "custody.provenance.result",
    "ProvenanceCheck": "custody.provenance.result",
    "RULE": "custody.provenance.result",
    "Status": "custody.provenance.result",
    "TrustRootUnavailable": "custody.provenance.trustroot",
    "apply_checks": "custody.provenance.verify",
    "certificate_claims": "custody.provenance.claims",
    "check_releases": "custody.provenance.verify",
    "needs_verification": "custody.provenance.verify",
    "provenance_versions": "custody.provenance.verify",
    "verify_histories": "custody.provenance.verify",
    "verify_npm_attestations": "custody.provenance.npm",
    "verify_pep740": "custody.provenance.pep740",
}


__getattr__ = lazy_exports(__name__, _WHERE)


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
