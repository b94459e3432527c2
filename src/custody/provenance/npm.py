"""Verify npm's signed provenance: the SLSA attestation in the registry's attestations document
(``{"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": {...}}, ...]}``).

The Sigstore bundle is verified against the trust root (certificate chain to Fulcio, the
transparency log entry, the DSSE signature); its in-toto subject must be
``pkg:npm/NAME@VERSION`` with the tarball's sha512 from the packument's ``integrity``; the
certificate's identity must agree with the predicate's source and the release's declared
``repository``. npm's own publish attestation (signed with the registry's key, not a Fulcio
certificate) says nothing about the source and is not checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.x509 import Certificate, ObjectIdentifier
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError
from sigstore.models import Bundle, IncompatibleEntry, InvalidBundle
from sigstore.verify import Verifier

from custody.content.fetch import expected_digests
from custody.model import Artifact, Release
from custody.provenance import trustroot
from custody.provenance.claims import ISSUER, ISSUER_V1, CertificateIdentity
from custody.provenance.identity import compare_identity
from custody.provenance.result import (
    Failure,
    ProvenanceCheck,
    Status,
    invalid,
    unverified,
)
from custody.provenance.statement import (
    INTOTO_PAYLOAD_TYPE,
    SLSA_PREFIX,
    BadStatement,
    Mismatch,
    Statement,
    check_subject,
    claimed_source,
    npm_purl,
)

KIND = "npm-attestation"
_BUNDLE_TYPES = frozenset(t.value for t in Bundle.BundleType)
_ISSUER_OIDS = (ObjectIdentifier(ISSUER), ObjectIdentifier(ISSUER_V1))


class IssuedToCi:
    """A sigstore verification policy: the certificate names an OIDC issuer. Which identity it
    names is compared with the claims after verification, with full evidence."""

    def verify(self, cert: Certificate) -> None:
        for ext in cert.extensions:
            if ext.oid in _ISSUER_OIDS:
                return
        raise VerificationError("the certificate names no OIDC issuer")


def slsa_bundles(doc: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(predicateType, bundle)`` of every SLSA provenance entry in an attestations doc."""
    items = doc.get("attestations")
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        ptype = item.get("predicateType")
        if isinstance(ptype, str) and ptype.startswith(SLSA_PREFIX) and "bundle" in item:
            out.append((ptype, item["bundle"]))
    return out


def tarball(release: Release) -> Artifact | None:
    return next((a for a in release.artifacts if a.kind in ("tarball", None)), None)


def verify_bundle(
    bundle_doc: Any,
    *,
    release: Release,
    artifact: Artifact,
    subject_name: str | None,
    verifier: Verifier,
    kind: str = KIND,
    trust_root: str | None = None,
    registry_issuer: str | None = None,
) -> ProvenanceCheck:
    """Verify one Sigstore bundle carrying an in-toto statement about ``artifact``."""
    key = release.key
    common: dict[str, Any] = {"artifact": artifact.filename, "trust_root": trust_root}
    media_type = bundle_doc.get("mediaType") if isinstance(bundle_doc, dict) else None
    if media_type not in _BUNDLE_TYPES:
        return unverified(key, kind, f"unsupported Sigstore bundle type {media_type!r}", **common)
    try:
        bundle = Bundle.from_json(orjson.dumps(bundle_doc))
    except IncompatibleEntry as exc:
        return unverified(key, kind, f"unsupported transparency log entry: {exc}", **common)
    except InvalidBundle as exc:
        if "unsupported bundle format" in str(exc):
            return unverified(key, kind, f"unsupported Sigstore bundle: {exc}", **common)
        return _invalid_signature(key, kind, f"malformed Sigstore bundle: {exc}", common)
    except (ValueError, TypeError) as exc:
        return _invalid_signature(key, kind, f"unreadable Sigstore bundle: {exc}", common)
    identity = CertificateIdentity.from_certificate(bundle.signing_certificate)
    common["identity"] = identity
    try:
        payload_type, payload = verifier.verify_dsse(bundle, IssuedToCi())
    except (VerificationError, SigstoreError) as exc:
        return _invalid_signature(key, kind, f"signature verification failed: {exc}", common)
    if payload_type != INTOTO_PAYLOAD_TYPE:
        return _invalid_signature(key, kind, f"unexpected DSSE payload type {payload_type}", common)
    try:
        statement = Statement.parse(payload)
    except BadStatement as exc:
        return _invalid_signature(key, kind, f"signed payload is not a statement: {exc}", common)
    common["predicate_type"] = statement.predicate_type
    mismatch = check_subject(statement, subject_name, expected_digests(artifact))
    if mismatch is None:
        mismatch = compare_identity(
            identity,
            claimed_source(statement),
            declared_repository=release.repository,
            registry_issuer=registry_issuer,
        )
    if mismatch is not None:
        return _mismatch(key, kind, mismatch, common)
    return ProvenanceCheck(
        key,
        Status.VERIFIED,
        f"provenance verified: built by {identity.describe()}",
        kind,
        provenance=identity.provenance(kind),
        artifacts=(artifact.filename,),
        **common,
    )


def _invalid_signature(
    key: str, kind: str, message: str, common: dict[str, Any]
) -> ProvenanceCheck:
    return invalid(
        key,
        kind,
        Failure.SIGNATURE,
        message,
        expected={"signature": "valid for the sigstore trust root"},
        actual={"error": message},
        **common,
    )


def _mismatch(key: str, kind: str, m: Mismatch, common: dict[str, Any]) -> ProvenanceCheck:
    return invalid(key, kind, m.failure, m.message, expected=m.expected, actual=m.actual, **common)


def verify_npm_attestations(
    document: bytes | Mapping[str, Any], release: Release, *, online: bool = False
) -> ProvenanceCheck:
    """Verify the SLSA provenance of an npm release from its attestations document."""
    key = release.key
    registry_issuer = release.provenance.issuer if release.provenance else None
    try:
        doc = orjson.loads(document) if isinstance(document, bytes) else document
    except orjson.JSONDecodeError as exc:
        return unverified(key, KIND, f"attestations document is not JSON: {exc}")
    if not isinstance(doc, Mapping):
        return unverified(key, KIND, "attestations document is not a JSON object")
    bundles = slsa_bundles(doc)
    if not bundles:
        return unverified(key, KIND, "no SLSA provenance in the attestations document")
    artifact = tarball(release)
    if artifact is None or not expected_digests(artifact):
        return unverified(key, KIND, "the registry publishes no tarball digest to check against")
    try:
        verifier = trustroot.verifier(online)
    except trustroot.TrustRootUnavailable as exc:
        return unverified(key, KIND, str(exc))
    results = [
        verify_bundle(
            bundle,
            release=release,
            artifact=artifact,
            subject_name=npm_purl(release.name, release.version),
            verifier=verifier,
            trust_root=trustroot.describe(online),
            registry_issuer=registry_issuer,
        )
        for _ptype, bundle in bundles
    ]
    return next((r for r in results if r.status is Status.INVALID), None) or next(
        (r for r in results if r.status is Status.VERIFIED), results[0]
    )
