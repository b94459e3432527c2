"""In-toto statements inside DSSE envelopes: parse them and compare their subject with the
artifact the registry serves, and read the source a SLSA provenance predicate claims."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from custody.provenance.result import Failure

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
SLSA_PREFIX = "https://slsa.dev/provenance/"
_STRONG = ("sha512", "sha384", "sha256", "sha1")


class BadStatement(ValueError):
    """The payload is not an in-toto statement."""


@dataclass(frozen=True, slots=True)
class Subject:
    name: str
    digests: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Statement:
    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, payload: bytes) -> Statement:
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise BadStatement(f"payload is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BadStatement("payload is not a JSON object")
        subjects = []
        for item in doc.get("subject") or []:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise BadStatement("a subject has no name")
            digest = item.get("digest")
            digests = {
                str(k).lower(): str(v).lower()
                for k, v in (digest.items() if isinstance(digest, dict) else ())
                if isinstance(v, str)
            }
            subjects.append(Subject(item["name"], digests))
        predicate_type = doc.get("predicateType")
        if not isinstance(predicate_type, str) or not subjects:
            raise BadStatement("statement has no predicateType or no subject")
        predicate = doc.get("predicate")
        return cls(
            predicate_type, tuple(subjects), predicate if isinstance(predicate, dict) else {}
        )

    @classmethod
    def from_envelope_payload(cls, b64: str) -> Statement:
        """Parse the base64 payload of a DSSE envelope without verifying it (for evidence)."""
        try:
            return cls.parse(base64.b64decode(b64, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadStatement(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Mismatch:
    failure: Failure
    message: str
    expected: dict[str, Any]
    actual: dict[str, Any]


def npm_purl(name: str, version: str) -> str:
    """``pkg:npm/@scope/name@1.0.0`` as npm writes it into the subject (``@`` as ``%40``)."""
    return f"pkg:npm/{name.replace('@', '%40')}@{version}"


def check_subject(
    statement: Statement, name: str | None, digests: Mapping[str, str]
) -> Mismatch | None:
    """Does the statement attest this artifact? ``name`` is the expected subject name (npm
    purl, compared percent-decoded; None skips the check), ``digests`` the registry's
    ``{alg: hex}``. A missing common digest algorithm is a mismatch too: the attestation must
    name these bytes."""
    subject = statement.subjects[0]
    if len(statement.subjects) != 1:
        names = [s.name for s in statement.subjects]
        wanted = [s for s in statement.subjects if name and unquote(s.name) == unquote(name)]
        if len(wanted) != 1:
            return Mismatch(
                Failure.SUBJECT,
                f"the statement has {len(names)} subjects and none is exactly {name}",
                {"subject": name},
                {"subjects": names},
            )
        subject = wanted[0]
    if name is not None and unquote(subject.name) != unquote(name):
        return Mismatch(
            Failure.SUBJECT,
            f"the attestation is for {subject.name}, not {name}",
            {"subject": name},
            {"subject": subject.name},
        )
    wanted_digests = {k.lower(): v.lower() for k, v in digests.items()}
    common = [alg for alg in _STRONG if alg in wanted_digests and alg in subject.digests]
    if not common:
        return Mismatch(
            Failure.DIGEST,
            "the attestation names no digest the registry published for the artifact",
            {"digests": dict(wanted_digests)},
            {"digests": dict(subject.digests)},
        )
    for alg in common:
        if subject.digests[alg] != wanted_digests[alg]:
            return Mismatch(
                Failure.DIGEST,
                f"the attested {alg} digest is not the artifact's: the attestation was made for "
                "other bytes",
                {alg: wanted_digests[alg]},
                {alg: subject.digests[alg]},
            )
    return None


@dataclass(frozen=True, slots=True)
class ClaimedSource:
    """The source a SLSA provenance predicate says it built from (v1 or v0.2 layout)."""

    repository_uri: str | None = None
    workflow: str | None = None
    ref: str | None = None
    commit: str | None = None
    repository_id: str | None = None
    owner_id: str | None = None


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def claimed_source(statement: Statement) -> ClaimedSource:
    """What the predicate claims; empty for predicates other than SLSA provenance."""
    pred = statement.predicate
    if not statement.predicate_type.startswith(SLSA_PREFIX):
        return ClaimedSource()
    if statement.predicate_type.endswith("/v0.2"):
        config = _get(pred, "invocation", "configSource")
        uri = _text(_get(config, "uri")) or ""
        repo, _, ref = uri.removeprefix("git+").partition("@")
        env = _get(pred, "invocation", "environment")
        digest = _get(config, "digest")
        return ClaimedSource(
            repository_uri=repo or None,
            workflow=_text(_get(config, "entryPoint")),
            ref=ref or None,
            commit=_text(_get(digest, "sha1")),
            repository_id=_text(_get(env, "GITHUB_REPOSITORY_ID")),
            owner_id=_text(_get(env, "GITHUB_REPOSITORY_OWNER_ID")),
        )
    workflow = _get(pred, "buildDefinition", "externalParameters", "workflow")
    github = _get(pred, "buildDefinition", "internalParameters", "github")
    deps = _get(pred, "buildDefinition", "resolvedDependencies")
    commit = None
    if isinstance(deps, list) and deps:
        commit = _text(_get(deps[0], "digest", "gitCommit"))
    return ClaimedSource(
        repository_uri=_text(_get(workflow, "repository")),
        workflow=_text(_get(workflow, "path")),
        ref=_text(_get(workflow, "ref")),
        commit=commit,
        repository_id=_text(_get(github, "repository_id")),
        owner_id=_text(_get(github, "repository_owner_id")),
    )
