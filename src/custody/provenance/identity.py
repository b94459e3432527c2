"""Compare the identity in a verified certificate with what the registry and the attestation
claim. A difference is an identity failure (``provenance.invalid``): either the predicate lies
about the build it describes, or the release claims a source it was not built from."""

from __future__ import annotations

from custody.provenance.claims import GITHUB_ACTIONS_ISSUER, CertificateIdentity
from custody.provenance.result import Failure
from custody.provenance.statement import ClaimedSource, Mismatch
from custody.registries.repo_urls import normalise_repository

_ISSUERS = {"github": GITHUB_ACTIONS_ISSUER, "gitlab": "https://gitlab.com"}


def _repo(url: str | None) -> str | None:
    norm = normalise_repository(url) if url else None
    return norm.lower() if norm else None


def _workflow(path: str | None) -> str | None:
    if not path:
        return None
    path = path.split("@", 1)[0]
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/") or None


def compare_identity(
    cert: CertificateIdentity,
    claimed: ClaimedSource,
    *,
    declared_repository: str | None = None,
    registry_issuer: str | None = None,
) -> Mismatch | None:
    """The first disagreement between the certificate and the claims, or None.

    ``claimed``: the SLSA predicate's source. ``declared_repository``: the release's own
    ``repository`` (npm checks at publish time that it names the provenance repository).
    ``registry_issuer``: the CI system the registry recorded (npm ``trustedPublisher.id``)."""
    pairs: list[tuple[str, str | None, str | None]] = [
        ("repository", _repo(claimed.repository_uri), _repo(cert.repository_uri)),
        ("workflow", _workflow(claimed.workflow), _workflow(cert.workflow)),
        ("ref", claimed.ref, cert.ref),
        ("commit", (claimed.commit or "").lower() or None, (cert.commit or "").lower() or None),
        ("repository_id", claimed.repository_id, cert.repository_id),
        ("owner_id", claimed.owner_id, cert.owner_id),
    ]
    for what, said, signed in pairs:
        if said is not None and signed is not None and said != signed:
            return Mismatch(
                Failure.IDENTITY,
                f"the provenance predicate claims {what} {said}, but the signing certificate "
                f"says {signed}",
                {what: said, "claimed_by": "provenance predicate"},
                {what: signed, "claimed_by": "signing certificate"},
            )
    declared, signed_repo = _repo(declared_repository), _repo(cert.repository_uri)
    if declared and signed_repo and declared != signed_repo:
        return Mismatch(
            Failure.IDENTITY,
            f"the release declares repository {declared_repository}, but its provenance was "
            f"signed by a build of {cert.repository_uri}",
            {"repository": declared_repository, "claimed_by": "release metadata"},
            {"repository": cert.repository_uri, "claimed_by": "signing certificate"},
        )
    wanted = _ISSUERS.get((registry_issuer or "").lower())
    if wanted and cert.issuer and not cert.issuer.startswith(wanted):
        return Mismatch(
            Failure.IDENTITY,
            f"the registry records a {registry_issuer} trusted publisher, but the certificate "
            f"was issued for {cert.issuer}",
            {"issuer": wanted, "claimed_by": "registry"},
            {"issuer": cert.issuer, "claimed_by": "signing certificate"},
        )
    return None
