"""PEP 740 provenance verified offline with pypi-attestations, on real attestations."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

from custody.model import Severity
from custody.provenance import Failure, Status, verify_pep740
from custody.provenance.result import RULE
from tests.provenance.assets import (
    GITHUB_COMMIT,
    GITHUB_OWNER_ID,
    GITHUB_REPO_ID,
    GITHUB_SOURCE,
    GITLAB_REPO_ID,
    GITLAB_SDIST,
    GITLAB_SOURCE,
    Asset,
    gitlab_provenance,
)


def test_real_github_provenance_verifies_offline_with_its_identity(pa_sdist: Asset) -> None:
    release = pa_sdist.release("pypi-attestations", "0.0.19")
    check = verify_pep740(pa_sdist.doc(".provenance"), release, release.artifacts[0])

    assert check.status is Status.VERIFIED, check.message
    assert check.finding() is None
    prov = check.provenance
    assert prov is not None and prov.verified is True and prov.kind == "pep740"
    assert prov.source is not None
    assert prov.source.id == GITHUB_SOURCE and prov.source.numeric_id == GITHUB_REPO_ID
    assert prov.workflow == ".github/workflows/release.yml"
    assert prov.ref == "refs/tags/v0.0.19"
    assert prov.commit == GITHUB_COMMIT
    assert prov.issuer == "https://token.actions.githubusercontent.com"
    assert check.identity is not None and check.identity.owner_id == GITHUB_OWNER_ID
    assert check.artifacts == (pa_sdist.dist.name,)


def test_real_gitlab_attestation_verifies_with_its_identity(assets: Path) -> None:
    asset = Asset(assets / GITLAB_SDIST)
    release = asset.release("gitlab-oidc-project", "0.0.3")
    check = verify_pep740(gitlab_provenance(assets), release, release.artifacts[0])

    assert check.status is Status.VERIFIED, check.message
    assert check.provenance is not None and check.provenance.source is not None
    assert check.provenance.source.id == GITLAB_SOURCE
    assert check.provenance.source.numeric_id == GITLAB_REPO_ID
    assert check.provenance.workflow == ".gitlab-ci.yml"


def test_wrong_workflow_is_an_identity_failure(pa_sdist: Asset) -> None:
    doc = copy.deepcopy(pa_sdist.doc(".provenance"))
    doc["attestation_bundles"][0]["publisher"]["workflow"] = "other.yml"
    release = pa_sdist.release("pypi-attestations", "0.0.19")
    check = verify_pep740(doc, release, release.artifacts[0])

    assert check.status is Status.INVALID and check.failure is Failure.IDENTITY
    assert check.expected["workflow"] == "other.yml"
    assert check.actual["workflow"] == "release.yml"
    assert check.provenance is not None and check.provenance.verified is False
    assert check.provenance.source is None  # an unverified identity is no identity
    finding = check.finding()
    assert finding is not None and finding.rule == RULE and finding.severity is Severity.CRITICAL
    assert finding.evidence["failure"] == "identity"
    assert finding.evidence["certificate"]["source"] == GITHUB_SOURCE


def test_wrong_repository_is_an_identity_failure(pa_sdist: Asset) -> None:
    doc = copy.deepcopy(pa_sdist.doc(".provenance"))
    doc["attestation_bundles"][0]["publisher"]["repository"] = "attacker/pypi-attestations"
    release = pa_sdist.release("pypi-attestations", "0.0.19")
    check = verify_pep740(doc, release, release.artifacts[0])

    assert check.failure is Failure.IDENTITY
    assert check.expected["repository"] == "https://github.com/attacker/pypi-attestations"
    assert check.actual["repository"] == "https://github.com/trailofbits/pypi-attestations"


def test_artifact_with_another_digest_is_a_digest_failure(pa_sdist: Asset) -> None:
    """The index serves a file with other bytes than the ones attested."""
    release = pa_sdist.release("pypi-attestations", "0.0.19", sha256="ab" * 32)
    check = verify_pep740(pa_sdist.doc(".provenance"), release, release.artifacts[0])

    assert check.status is Status.INVALID and check.failure is Failure.DIGEST
    assert check.expected == {"sha256": "ab" * 32}
    assert check.actual == {"sha256": pa_sdist.sha256}
    assert check.finding() is not None


def test_tampered_statement_digest_breaks_the_signature(pa_sdist: Asset) -> None:
    doc = copy.deepcopy(pa_sdist.doc(".provenance"))
    envelope = doc["attestation_bundles"][0]["attestations"][0]["envelope"]
    statement = json.loads(base64.b64decode(envelope["statement"]))
    statement["subject"][0]["digest"]["sha256"] = "cd" * 32
    envelope["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()
    release = pa_sdist.release("pypi-attestations", "0.0.19", sha256="cd" * 32)
    check = verify_pep740(doc, release, release.artifacts[0])

    assert check.status is Status.INVALID and check.failure is Failure.SIGNATURE
    assert "signature" in check.message.lower()


def test_attestation_for_another_file_is_a_subject_failure(pa_sdist: Asset) -> None:
    release = pa_sdist.release("pypi-attestations", "0.0.19")
    other = release.artifacts[0].__class__(
        "pypi_attestations-0.0.20.tar.gz", digests={"sha256": pa_sdist.sha256}, kind="sdist"
    )
    check = verify_pep740(pa_sdist.doc(".provenance"), release, other)

    assert check.failure is Failure.SUBJECT
    assert check.actual["subject"] == pa_sdist.dist.name


def test_malformed_or_unsupported_documents_are_unverified_not_invalid(pa_sdist: Asset) -> None:
    release = pa_sdist.release("pypi-attestations", "0.0.19")
    for doc in (b"not json", {"version": 1}, {"attestation_bundles": "x"}):
        check = verify_pep740(doc, release, release.artifacts[0])
        assert check.status is Status.UNVERIFIED and check.finding() is None
