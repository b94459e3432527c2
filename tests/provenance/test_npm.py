"""npm's SLSA provenance path: a Sigstore bundle with an in-toto statement, verified with
sigstore against the trust root, its subject against the artifact digest, its certificate against
the predicate and the release's declared repository.

The bundle is the real SLSA v1 provenance (GitHub Actions) from the pypi-attestations assets,
put into npm's attestations document shape; its subject is a file name and a sha256, where
npm's is ``pkg:npm/NAME@VERSION`` and a sha512."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from pypi_attestations import Attestation

from custody.model import Artifact, Ecosystem, Provenance, Release
from custody.provenance import Failure, Status, trustroot, verify_npm_attestations
from custody.provenance.claims import CertificateIdentity
from custody.provenance.identity import compare_identity
from custody.provenance.npm import verify_bundle
from custody.provenance.statement import ClaimedSource, Statement, check_subject, npm_purl
from tests.provenance.assets import GITHUB_COMMIT, GITHUB_REPO_ID, GITHUB_SOURCE, Asset

SLSA_V1 = "https://slsa.dev/provenance/v1"
PUBLISH = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"


@pytest.fixture(scope="module")
def slsa_bundle(pa_sdist: Asset) -> dict[str, Any]:
    text = (pa_sdist.dist.parent / f"{pa_sdist.dist.name}.slsa.attestation").read_text()
    loaded: dict[str, Any] = json.loads(Attestation.model_validate_json(text).to_bundle().to_json())
    return loaded


def npm_release(asset: Asset, *, repository: str | None, issuer: str | None = "github") -> Release:
    artifact = Artifact(
        asset.dist.name,
        digests={"sha256": asset.sha256},
        kind="tarball",
        has_attestations=True,
    )
    return Release(
        Ecosystem.NPM,
        "pypi-attestations",
        "0.0.19",
        provenance=Provenance(kind="npm-attestation", issuer=issuer),
        artifacts=(artifact,),
        repository=repository,
    )


def run(bundle: dict[str, Any], release: Release) -> Any:
    return verify_bundle(
        bundle,
        release=release,
        artifact=release.artifacts[0],
        subject_name=release.artifacts[0].filename,
        verifier=trustroot.verifier(online=False),
        registry_issuer="github",
    )


def test_real_slsa_bundle_verifies_with_its_identity(
    slsa_bundle: dict[str, Any], pa_sdist: Asset
) -> None:
    release = npm_release(
        pa_sdist, repository="git+https://github.com/trailofbits/pypi-attestations.git"
    )
    check = run(slsa_bundle, release)

    assert check.status is Status.VERIFIED, check.message
    assert check.predicate_type == SLSA_V1
    prov = check.provenance
    assert prov.kind == "npm-attestation" and prov.verified is True
    assert (prov.source.id, prov.source.numeric_id) == (GITHUB_SOURCE, GITHUB_REPO_ID)
    assert prov.workflow == ".github/workflows/release.yml"
    assert prov.ref == "refs/tags/v0.0.19" and prov.commit == GITHUB_COMMIT


def test_tampered_payload_fails_the_signature(slsa_bundle: dict[str, Any], pa_sdist: Asset) -> None:
    bundle = copy.deepcopy(slsa_bundle)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    check = run(bundle, npm_release(pa_sdist, repository=None))

    assert check.status is Status.INVALID and check.failure is Failure.SIGNATURE
    assert "signature" in check.actual["error"].lower()


def test_artifact_digest_mismatch(slsa_bundle: dict[str, Any], pa_sdist: Asset) -> None:
    release = npm_release(pa_sdist, repository=None)
    swapped = Release(
        release.ecosystem, release.name, release.version, provenance=release.provenance,
        artifacts=(Artifact(pa_sdist.dist.name, digests={"sha256": "11" * 32}, kind="tarball"),),
    )  # fmt: skip
    check = run(slsa_bundle, swapped)

    assert check.failure is Failure.DIGEST
    assert check.expected == {"sha256": "11" * 32} and check.actual == {"sha256": pa_sdist.sha256}


def test_declared_repository_other_than_the_signed_one(
    slsa_bundle: dict[str, Any], pa_sdist: Asset
) -> None:
    check = run(slsa_bundle, npm_release(pa_sdist, repository="https://github.com/evil/fork"))

    assert check.failure is Failure.IDENTITY
    assert check.expected["repository"] == "https://github.com/evil/fork"
    assert check.actual["repository"] == "https://github.com/trailofbits/pypi-attestations"


def test_registry_claims_another_ci(slsa_bundle: dict[str, Any], pa_sdist: Asset) -> None:
    release = npm_release(pa_sdist, repository=None)
    check = verify_bundle(
        slsa_bundle, release=release, artifact=release.artifacts[0], subject_name=None,
        verifier=trustroot.verifier(), registry_issuer="gitlab",
    )  # fmt: skip
    assert check.failure is Failure.IDENTITY and check.expected["issuer"] == "https://gitlab.com"


def test_npm_document_checks_the_package_url(slsa_bundle: dict[str, Any], pa_sdist: Asset) -> None:
    """Through the npm entry point the subject must be pkg:npm/NAME@VERSION: this bundle names a
    file, so it is an attestation for something else."""
    doc = {"attestations": [{"predicateType": PUBLISH, "bundle": {}},
                            {"predicateType": SLSA_V1, "bundle": slsa_bundle}]}  # fmt: skip
    check = verify_npm_attestations(
        json.dumps(doc).encode(), npm_release(pa_sdist, repository=None)
    )

    assert check.status is Status.INVALID and check.failure is Failure.SUBJECT
    assert check.expected == {"subject": "pkg:npm/pypi-attestations@0.0.19"}
    assert check.actual == {"subject": pa_sdist.dist.name}


def test_npm_documents_without_slsa_provenance_are_unverified(pa_sdist: Asset) -> None:
    release = npm_release(pa_sdist, repository=None)
    for doc in (b"{", b"[]", json.dumps({"attestations": [{"predicateType": PUBLISH}]}).encode()):
        check = verify_npm_attestations(doc, release)
        assert check.status is Status.UNVERIFIED and check.finding() is None


def test_unsupported_bundle_format_is_unverified(
    slsa_bundle: dict[str, Any], pa_sdist: Asset
) -> None:
    bundle = dict(slsa_bundle, mediaType="application/vnd.dev.sigstore.bundle.v9+json")
    check = run(bundle, npm_release(pa_sdist, repository=None))
    assert check.status is Status.UNVERIFIED


def test_npm_purl_and_subject_comparison() -> None:
    assert npm_purl("@scope/pkg", "1.0.0") == "pkg:npm/%40scope/pkg@1.0.0"
    statement = Statement.parse(
        json.dumps({
            "_type": "https://in-toto.io/Statement/v1", "predicateType": SLSA_V1,
            "subject": [{"name": "pkg:npm/%40scope/pkg@1.0.0", "digest": {"sha512": "AA"}}],
        }).encode()
    )  # fmt: skip
    assert check_subject(statement, "pkg:npm/@scope/pkg@1.0.0", {"sha512": "aa"}) is None
    mismatch = check_subject(statement, "pkg:npm/@scope/pkg@1.0.0", {"sha256": "aa"})
    assert mismatch is not None and mismatch.failure is Failure.DIGEST


def test_predicate_that_disagrees_with_the_certificate() -> None:
    cert = CertificateIdentity(
        repository_uri="https://github.com/o/r", workflow=".github/workflows/release.yml",
        ref="refs/tags/v1", commit="a" * 40, repository_id="1",
    )  # fmt: skip
    same = ClaimedSource(
        "https://github.com/o/r", ".github/workflows/release.yml", "refs/tags/v1", "A" * 40, "1"
    )
    assert (
        compare_identity(cert, same, declared_repository="git+https://github.com/O/R.git") is None
    )
    other = ClaimedSource("https://github.com/o/r", ".github/workflows/evil.yml")
    mismatch = compare_identity(cert, other)
    assert mismatch is not None and mismatch.failure is Failure.IDENTITY
    assert mismatch.expected["workflow"] == ".github/workflows/evil.yml"
    assert mismatch.actual["workflow"] == ".github/workflows/release.yml"
    renumbered = ClaimedSource(repository_id="2")
    found = compare_identity(cert, renumbered)
    assert found is not None and found.actual["repository_id"] == "1"
