"""The identity a Fulcio signing certificate vouches for: the CI run that signed the attestation.

Fulcio writes the OIDC token's claims into X.509 extensions under ``1.3.6.1.4.1.57264.1``:
``.8`` issuer, ``.12`` source repository URI, ``.13`` source repository digest (the commit),
``.14`` source repository ref, ``.15`` source repository identifier (GitHub's numeric
repository id), ``.17`` owner identifier, ``.18`` build config URI (the top-level workflow,
``https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1``). These (``.8`` onwards)
are DER UTF8Strings. Older certificates carry only the legacy raw-string extensions ``.1``
issuer, ``.3`` workflow sha, ``.5`` repository (``owner/repo``), ``.6`` ref: they are read as a
fallback. Nothing here checks a signature: read a certificate only after sigstore verified it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from custody.model import Custodian, Provenance

if TYPE_CHECKING:  # cryptography is imported where a certificate is read, not on every run
    from cryptography import x509

FULCIO = "1.3.6.1.4.1.57264.1"
ISSUER_V1 = f"{FULCIO}.1"
WORKFLOW_SHA_V1 = f"{FULCIO}.3"
REPOSITORY_V1 = f"{FULCIO}.5"
REF_V1 = f"{FULCIO}.6"
ISSUER = f"{FULCIO}.8"
BUILD_SIGNER_URI = f"{FULCIO}.9"
SOURCE_REPOSITORY_URI = f"{FULCIO}.12"
SOURCE_REPOSITORY_DIGEST = f"{FULCIO}.13"
SOURCE_REPOSITORY_REF = f"{FULCIO}.14"
SOURCE_REPOSITORY_ID = f"{FULCIO}.15"
SOURCE_REPOSITORY_OWNER_URI = f"{FULCIO}.16"
SOURCE_REPOSITORY_OWNER_ID = f"{FULCIO}.17"
BUILD_CONFIG_URI = f"{FULCIO}.18"
RUN_INVOCATION_URI = f"{FULCIO}.21"

_LEGACY = frozenset({ISSUER_V1, WORKFLOW_SHA_V1, REPOSITORY_V1, REF_V1})
_FORGES = {"github.com": "github", "gitlab.com": "gitlab"}
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"


def der_utf8(value: bytes) -> str | None:
    """The text of a DER-encoded ASN.1 string (UTF8String, or the printable kinds), or None."""
    if len(value) < 2 or value[0] not in (0x0C, 0x13, 0x16):
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length = int.from_bytes(value[2 : 2 + count], "big")
        offset = 2 + count
    if offset + length != len(value):
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def certificate_claims(cert: x509.Certificate) -> dict[str, str]:
    from cryptography import x509

    """Every Fulcio claim in the certificate, by dotted OID, decoded to text."""
    out: dict[str, str] = {}
    for ext in cert.extensions:
        oid = ext.oid.dotted_string
        if not oid.startswith(FULCIO + ".") or not isinstance(
            ext.value, x509.UnrecognizedExtension
        ):
            continue
        raw = ext.value.value
        if oid in _LEGACY:
            text: str | None = raw.decode("utf-8", errors="replace")
        else:
            text = der_utf8(raw)
        if text is not None:
            out[oid] = text
    return out


def _san(cert: x509.Certificate) -> str | None:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        values = san.get_values_for_type(kind)
        if values:
            return str(values[0])
    return None


def repository_custodian(uri: str | None) -> str | None:
    """``https://github.com/o/r`` -> ``github:o/r`` (GitLab keeps its nested groups); None for
    hosts that have no custodian namespace (self-hosted forges)."""
    if not uri:
        return None
    parts = urlsplit(uri)
    namespace = _FORGES.get((parts.hostname or "").lower())
    path = parts.path.strip("/").removesuffix(".git")
    if namespace is None or path.count("/") < 1:
        return None
    if namespace == "github" and path.count("/") != 1:
        return None
    return f"{namespace}:{path}"


def workflow_path(build_config_uri: str | None, repository_uri: str | None) -> str | None:
    """The workflow file inside the repository: ``.github/workflows/release.yml`` from
    ``https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1`` (GitLab writes
    ``https://gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main``)."""
    if not build_config_uri:
        return None
    text = build_config_uri.rsplit("@", 1)[0] if "@" in build_config_uri else build_config_uri
    if repository_uri and text.lower().startswith(repository_uri.lower().rstrip("/") + "/"):
        return text[len(repository_uri.rstrip("/")) + 1 :].lstrip("/") or None
    segments = [s for s in urlsplit(text).path.split("/") if s]
    return "/".join(segments[2:]) if len(segments) > 2 else None


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    """Who signed: the CI identity in a verified Fulcio certificate. Fields are None when the
    certificate does not carry the claim."""

    issuer: str | None = None
    """OIDC issuer, e.g. ``https://token.actions.githubusercontent.com``."""
    subject: str | None = None
    """The certificate's SAN (for CI: the build signer URI; for people: an email)."""
    repository_uri: str | None = None
    """``https://github.com/owner/repo``."""
    repository_id: str | None = None
    """The forge's numeric repository id (kept by a rename, new for a re-registration)."""
    owner_uri: str | None = None
    owner_id: str | None = None
    workflow: str | None = None
    """The workflow file that ran the build, relative to the repository root."""
    build_config_uri: str | None = None
    ref: str | None = None
    """``refs/tags/v1.2.3`` or ``refs/heads/main``."""
    commit: str | None = None
    run_uri: str | None = None

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> CertificateIdentity:
        claims = certificate_claims(cert)
        repo_uri = claims.get(SOURCE_REPOSITORY_URI)
        legacy_repo = claims.get(REPOSITORY_V1)
        if repo_uri is None and legacy_repo and claims.get(ISSUER_V1) == GITHUB_ACTIONS_ISSUER:
            repo_uri = f"https://github.com/{legacy_repo}"
        config_uri = claims.get(BUILD_CONFIG_URI)
        san = _san(cert)
        if config_uri is None and san and repo_uri and san.startswith(repo_uri + "/"):
            config_uri = san  # legacy GitHub certificates: the SAN names the workflow
        return cls(
            issuer=claims.get(ISSUER) or claims.get(ISSUER_V1),
            subject=san,
            repository_uri=repo_uri,
            repository_id=claims.get(SOURCE_REPOSITORY_ID),
            owner_uri=claims.get(SOURCE_REPOSITORY_OWNER_URI),
            owner_id=claims.get(SOURCE_REPOSITORY_OWNER_ID),
            workflow=workflow_path(config_uri, repo_uri),
            build_config_uri=config_uri,
            ref=claims.get(SOURCE_REPOSITORY_REF) or claims.get(REF_V1),
            commit=claims.get(SOURCE_REPOSITORY_DIGEST) or claims.get(WORKFLOW_SHA_V1),
            run_uri=claims.get(RUN_INVOCATION_URI),
        )

    @property
    def custodian(self) -> Custodian | None:
        """``github:owner/repo`` with the numeric repository id, or None."""
        name = repository_custodian(self.repository_uri)
        return Custodian(name, numeric_id=self.repository_id) if name else None

    def provenance(self, kind: str) -> Provenance:
        """The verified custody record: what ``Release.provenance`` becomes."""
        return Provenance(
            kind=kind,
            verified=True,
            source=self.custodian,
            workflow=self.workflow,
            ref=self.ref,
            commit=self.commit,
            issuer=self.issuer,
        )

    def describe(self) -> str:
        """``github:o/r (.github/workflows/release.yml @ refs/tags/v1)`` for messages."""
        who = self.custodian.id if self.custodian else self.repository_uri or self.subject
        where = " @ ".join(x for x in (self.workflow, self.ref) if x)
        return f"{who or 'an unknown identity'}" + (f" ({where})" if where else "")

    def evidence(self) -> dict[str, str | None]:
        return {
            "source": self.custodian.id if self.custodian else None,
            "repository_uri": self.repository_uri,
            "repository_id": self.repository_id,
            "owner_id": self.owner_id,
            "workflow": self.workflow,
            "ref": self.ref,
            "commit": self.commit,
            "issuer": self.issuer,
            "subject": self.subject,
        }
