"""``provenance.invalid`` and ``content.not-in-source`` over a SignalContext.

``ProvenanceContext`` adds the two fields the engine's SignalContext is to carry
(``provenance_check`` and ``fingerprints``), so these tests run before and after that wiring."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from custody.fingerprint.result import FileReport, FileStatus, FingerprintResult
from custody.judge import decide
from custody.model import Action, Ecosystem, LockedDependency, PackageHistory, Provenance, Release
from custody.model import Severity as S
from custody.policy import DEFAULT_POLICY, tier_for
from custody.provenance import Failure, ProvenanceCheck, Status
from custody.signals.base import SignalContext, TrustedSet
from custody.signals.provenance import content_not_in_source, provenance_invalid
from custody.trust import parse_trust_file

NOW = datetime(2025, 9, 1, tzinfo=UTC)
CAND = Release(Ecosystem.NPM, "pkg", "1.0.5", provenance=Provenance("npm-attestation", False))


@dataclass(frozen=True, slots=True)
class ProvenanceContext(SignalContext):
    provenance_check: ProvenanceCheck | None = None
    fingerprints: tuple[FingerprintResult, ...] = ()


def ctx(cand: Release = CAND, **kw: object) -> ProvenanceContext:
    return ProvenanceContext(
        dependency=LockedDependency(cand.ecosystem, cand.name, cand.version, direct=True),
        history=PackageHistory(cand.ecosystem, cand.name, "http://r.invalid/", NOW, (cand,)),
        candidate=cand,
        baseline=None,
        trusted=TrustedSet(lambda c, at, wf: None),
        observations=(),
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )


def digest_failure() -> ProvenanceCheck:
    return ProvenanceCheck(
        CAND.key, Status.INVALID, "the attested sha512 digest is not the artifact's",
        "npm-attestation", provenance=Provenance("npm-attestation", False),
        artifact="pkg-1.0.5.tgz", failure=Failure.DIGEST,
        expected={"sha512": "aa"}, actual={"sha512": "bb"},
    )  # fmt: skip


def test_failed_check_becomes_a_blocking_finding_with_evidence() -> None:
    [finding] = provenance_invalid(ctx(provenance_check=digest_failure()))
    assert finding.rule == "provenance.invalid" and finding.severity is S.CRITICAL
    assert finding.evidence["failure"] == "digest"
    assert finding.evidence["expected"] == {"sha512": "aa"}
    assert finding.evidence["actual"] == {"sha512": "bb"}
    dep = LockedDependency(Ecosystem.NPM, "pkg", "1.0.5", direct=True)
    approved = parse_trust_file(
        '[[approved."npm:pkg"]]\nversion = "1.0.5"\nby = "a@b.c"\nreason = "x"\nat = 2025-09-01\n'
    )
    decision = decide(dep, [finding], tier_for(DEFAULT_POLICY, 1), approved, None)
    assert decision.action is Action.BLOCK  # an approval does not lift a block


def test_verified_and_unverified_checks_find_nothing() -> None:
    ok = ProvenanceCheck(CAND.key, Status.VERIFIED, "ok", "npm-attestation")
    maybe = ProvenanceCheck(CAND.key, Status.UNVERIFIED, "offline", "npm-attestation")
    assert provenance_invalid(ctx(provenance_check=ok)) == []
    assert provenance_invalid(ctx(provenance_check=maybe)) == []


def test_a_record_marked_failed_still_blocks_without_details() -> None:
    [finding] = provenance_invalid(ctx())
    assert finding.rule == "provenance.invalid"
    unchecked = Release(Ecosystem.NPM, "pkg", "1.0.5", provenance=Provenance("npm-attestation"))
    assert provenance_invalid(ctx(unchecked)) == []


def test_fingerprints_become_findings_for_the_candidate_only() -> None:
    extra = FileReport("lib/x.js", FileStatus.EXTRA, S.HIGH, "code file not in the source", False)
    differs = FingerprintResult(
        CAND.key, "pkg-1.0.5.tgz", "https://github.com/o/r", "c" * 40, "tag v1.0.5",
        matched=10, files=(extra,),
    )  # fmt: skip
    other = FingerprintResult("npm:pkg@1.0.4", "pkg-1.0.4.tgz", note="x")
    [finding] = content_not_in_source(ctx(fingerprints=(differs, other)))
    assert finding.rule == "content.not-in-source" and finding.severity is S.HIGH
    assert "lib/x.js" in finding.message
    assert content_not_in_source(ctx()) == []
