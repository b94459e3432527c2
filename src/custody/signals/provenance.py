"""Provenance and fingerprint signals.

- ``provenance.invalid`` (critical; in ``policy.BLOCKING_RULES``, so it blocks): the release's
  signed provenance failed verification: a bad signature, an attestation for other bytes (digest
  mismatch), for another package, or signed by another identity than the registry claims.
- ``content.not-in-source``: files of the published artifact that the source repository does
  not have at the release's commit, or has with other bytes. ``high`` for unexplained code,
  ``medium`` for ignored code no build declares, ``low``/``info`` for declared build outputs and
  files packaging tools generate.

Both read what the engine computed before the signals ran (network and git are the engine's):
``SignalContext.provenance_check`` (a ``ProvenanceCheck`` for the candidate) and
``SignalContext.fingerprints`` (``FingerprintResult``s of the candidate's artifacts, only when
the policy enables fingerprints)."""

from __future__ import annotations

from collections.abc import Iterable

from custody.fingerprint.result import FingerprintResult
from custody.model import Finding, Severity
from custody.provenance.result import RULE as INVALID
from custody.provenance.result import ProvenanceCheck
from custody.signals.base import SignalContext


def provenance_invalid(ctx: SignalContext) -> list[Finding]:
    """``provenance.invalid`` from the candidate's verification (or, without the check's
    details, from a custody record marked ``verified=False``)."""
    cand = ctx.candidate
    if cand is None:
        return []
    check = ctx.provenance_check
    if isinstance(check, ProvenanceCheck) and check.release == cand.key:
        finding = check.finding()
        return [finding] if finding is not None else []
    prov = cand.provenance
    if prov is None or prov.verified is not False:
        return []
    return [
        Finding(
            INVALID,
            Severity.CRITICAL,
            f"{cand.key}: its {prov.kind} provenance failed verification",
            {"status": "invalid", "kind": prov.kind, "failure": None},
        )
    ]


def _results(value: object) -> Iterable[FingerprintResult]:
    if isinstance(value, FingerprintResult):
        return (value,)
    if isinstance(value, tuple | list):
        return (v for v in value if isinstance(v, FingerprintResult))
    return ()


def content_not_in_source(ctx: SignalContext) -> list[Finding]:
    """``content.not-in-source``: one finding per fingerprinted artifact that differs."""
    cand = ctx.candidate
    if cand is None:
        return []
    out = []
    for result in _results(ctx.fingerprints):
        if result.release != cand.key:
            continue
        finding = result.finding()
        if finding is not None:
            out.append(finding)
    return out
