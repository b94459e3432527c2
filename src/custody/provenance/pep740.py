"""Verify PyPI's PEP 740 provenance: one provenance object per file (``attestation_bundles``,
each a trusted ``publisher`` and its ``attestations``), checked with ``pypi-attestations``.

``Attestation.verify(publisher, Distribution(filename, sha256))`` verifies the Sigstore bundle
against the trust root, that the certificate is the publisher's (for GitHub: the repository and
the workflow file), and that the statement's subject is this file with the registry's sha256.
The failure is then classified (signature, digest, subject name, identity) with the values on
both sides as evidence."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from pydantic import ValidationError
from pypi_attestations import (
    Attestation,
    AttestationError,
    CircleCIPublisher,
    Distribution,
    GitHubPublisher,
    GitLabPublisher,
    GooglePublisher,
    Provenance,
)

from custody.content.fetch import expected_digests
from custody.model import Artifact, Release
from custody.provenance import trustroot
from custody.provenance.claims import GITHUB_ACTIONS_ISSUER, CertificateIdentity
from custody.provenance.result import (
    Failure,
    ProvenanceCheck,
    Status,
    invalid,
    unverified,
)
from custody.provenance.statement import BadStatement, Mismatch, Statement, check_subject

KIND = "pep740"
Publisher = GitHubPublisher | GitLabPublisher | GooglePublisher | CircleCIPublisher


def publisher_evidence(publisher: Publisher) -> dict[str, Any]:
    return {k: v for k, v in publisher.model_dump().items() if v is not None}


def publisher_mismatch(publisher: Publisher, cert: CertificateIdentity) -> Mismatch | None:
    """Where the certificate disagrees with the publisher the index recorded."""
    expected: dict[str, str] = {}
    actual: dict[str, str | None] = {}
    if isinstance(publisher, GitHubPublisher):
        expected = {
            "issuer": GITHUB_ACTIONS_ISSUER,
            "repository": f"https://github.com/{publisher.repository}",
            "workflow": publisher.workflow,
        }
        workflow = (cert.workflow or "").rsplit("/", 1)[-1] or None
        actual = {"issuer": cert.issuer, "repository": cert.repository_uri, "workflow": workflow}
    elif isinstance(publisher, GitLabPublisher):
        expected = {
            "repository": f"https://gitlab.com/{publisher.repository}",
            "workflow": publisher.workflow_filepath,
        }
        actual = {"repository": cert.repository_uri, "workflow": cert.workflow}
    elif isinstance(publisher, GooglePublisher):
        expected, actual = {"subject": publisher.email}, {"subject": cert.subject}
    for key, want in expected.items():
        got = actual.get(key)
        if got is None or want.lower() != got.lower():
            return Mismatch(
                Failure.IDENTITY,
                f"the index names publisher {publisher.kind} {key} {want}, but the attestation "
                f"was signed by {got or 'a certificate without that claim'}",
                {**expected, "publisher": publisher_evidence(publisher),
                 "claimed_by": "index publisher"},
                {**{k: v for k, v in actual.items() if v is not None},
                 "claimed_by": "signing certificate"},
            )  # fmt: skip
    return None


def _classify(
    exc: Exception,
    artifact: Artifact,
    statement: Statement | None,
    digest_mismatch: Mismatch | None,
    publisher: Publisher,
    identity: CertificateIdentity | None,
) -> Mismatch:
    text = str(exc)
    if "distribution digest" in text and digest_mismatch is not None:
        return digest_mismatch
    if "distribution name" in text and statement is not None:
        return Mismatch(
            Failure.SUBJECT,
            f"the attestation is for {statement.subjects[0].name}, not {artifact.filename}",
            {"subject": artifact.filename},
            {"subject": statement.subjects[0].name},
        )
    if identity is not None and (found := publisher_mismatch(publisher, identity)) is not None:
        return found
    if digest_mismatch is not None and "signature" not in text.lower():
        return digest_mismatch
    return Mismatch(
        Failure.SIGNATURE,
        f"attestation verification failed: {text}",
        {"signature": "valid for the sigstore trust root", "publisher": publisher.kind},
        {"error": text},
    )


def _verify_one(
    att: Attestation,
    publisher: Publisher,
    release: Release,
    artifact: Artifact,
    sha256: str,
) -> ProvenanceCheck:
    key = release.key
    common: dict[str, Any] = {
        "artifact": artifact.filename,
        "trust_root": trustroot.describe(False),
    }
    identity: CertificateIdentity | None = None
    try:
        cert = x509.load_der_x509_certificate(att.verification_material.certificate)
        identity = CertificateIdentity.from_certificate(cert)
        common["identity"] = identity
    except ValueError:
        pass
    statement: Statement | None = None
    digest_mismatch = None
    try:
        statement = Statement.parse(att.envelope.statement)
        common["predicate_type"] = statement.predicate_type
        digest_mismatch = check_subject(statement, None, {"sha256": sha256})
    except BadStatement:
        pass
    try:
        dist = Distribution(name=artifact.filename, digest=sha256)
    except ValidationError as exc:
        return unverified(key, KIND, f"{artifact.filename}: not a distribution name ({exc})")
    try:
        att.verify(publisher, dist, offline=True)
    except AttestationError as exc:
        m = _classify(exc, artifact, statement, digest_mismatch, publisher, identity)
        return invalid(
            key, KIND, m.failure, f"{artifact.filename}: {m.message}",
            expected=m.expected, actual=m.actual, **common,
        )  # fmt: skip
    except Exception as exc:  # the trust root (TUF cache) could not be set up
        return unverified(key, KIND, f"{artifact.filename}: could not verify: {exc}", **common)
    assert identity is not None  # verify() parsed the same certificate
    return ProvenanceCheck(
        key,
        Status.VERIFIED,
        f"provenance verified: {artifact.filename} built by {identity.describe()}",
        KIND,
        provenance=identity.provenance(KIND),
        artifacts=(artifact.filename,),
        **common,
    )


def verify_pep740(
    document: bytes | Mapping[str, Any], release: Release, artifact: Artifact
) -> ProvenanceCheck:
    """Verify one file's PEP 740 provenance object (offline; see ``prepare`` for online)."""
    key = release.key
    try:
        if isinstance(document, bytes):
            provenance = Provenance.model_validate_json(document)
        else:
            provenance = Provenance.model_validate(dict(document))
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return unverified(key, KIND, f"{artifact.filename}: malformed provenance object: {first}")
    sha256 = expected_digests(artifact).get("sha256")
    if sha256 is None:
        return unverified(key, KIND, f"{artifact.filename}: the index publishes no sha256")
    results = [
        _verify_one(att, bundle.publisher, release, artifact, sha256)
        for bundle in provenance.attestation_bundles
        for att in bundle.attestations
    ]
    if not results:
        return unverified(key, KIND, f"{artifact.filename}: the provenance has no attestation")
    return combine(key, results)


def prepare(online: bool) -> None:
    """With ``online``, refresh the trust root over TUF once, before verifying offline against
    the refreshed copy (pypi-attestations builds a verifier per attestation). Raises
    ``TrustRootUnavailable``."""
    if online:
        trustroot.verifier(online=True)


def combine(key: str, results: list[ProvenanceCheck]) -> ProvenanceCheck:
    """One release's verdict from its files': any failure wins, then any success."""
    files = tuple(f for r in results if r.status is Status.VERIFIED for f in r.artifacts)
    failed = next((r for r in results if r.status is Status.INVALID), None)
    if failed is not None:
        return failed
    ok = next((r for r in results if r.status is Status.VERIFIED), None)
    if ok is not None:
        return _with_artifacts(ok, tuple(dict.fromkeys(files)))
    notes = "; ".join(dict.fromkeys(r.message for r in results))
    first = results[0]
    return ProvenanceCheck(key, Status.UNVERIFIED, notes, first.kind, artifact=first.artifact)


def _with_artifacts(check: ProvenanceCheck, files: tuple[str, ...]) -> ProvenanceCheck:
    return dataclasses.replace(check, artifacts=files)
