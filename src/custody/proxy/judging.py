"""Every version of one package judged by the same judge and trust file as ``custody check``,
then the firewall's own reviews (approvals and denials in the ledger) laid over the result.

Packages the trust file knows are judged exactly as ``custody check`` judges a locked release
(each version alone: no lockfile tree at install time).

Packages it does not know depend on ``unknown_packages``:

- ``first-use`` (the default): trust on first use, per package, from the moment any replica
  first judged it (``first_seen``, kept in the ledger). Releases published until then are the
  package as the firewall found it: the custodians of its first release are trusted, and each
  release is judged against its own earlier releases, as ``custody check`` judges a package new
  to the tree, so only a hand-over release itself is
  held and its custodian is trusted for the releases after it (a package that changed hands
  years ago is not held forever). Releases published after ``first_seen`` are judged against
  the custodians of those earlier releases plus those of every later release the judge allowed
  on its own (not through an approval), as if ``custody init`` had written them into the trust
  file: a new custodian is held, and a held release never lends its custodian trust for the
  next one. A brand-new package installs (the cooldown still applies to every release).
- ``policy``: as ``custody check`` judges a package new to the tree: ``deps.new-package`` and
  the trust file's ``[policy] new-packages``. Under ``review`` every release of every unknown
  package is held until someone approves it or trusts its custodian: for locked-down networks.

Pure apart from the inputs: no network, no ledger."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
from packaging.utils import canonicalize_version

from custody.judge import judge_release
from custody.model import (
    Action,
    Decision,
    Ecosystem,
    Finding,
    LockedDependency,
    Observation,
    PackageHistory,
    PublishEvent,
    Severity,
)
from custody.osv import KnownBadRecord
from custody.signals import CHECK_SIGNALS, Signal
from custody.signals import deps as deps_signals
from custody.trust import TrustedEntry, TrustFile

log = logging.getLogger("custody.proxy")

FIRST_USE_SIGNALS: tuple[Signal, ...] = tuple(
    s for s in CHECK_SIGNALS if s is not deps_signals.new_package
)
DENIED_RULE = "proxy.denied"
ERROR_RULE = "proxy.judge-error"


def version_key(ecosystem: Ecosystem, version: str) -> str:
    """How versions compare: npm exactly, PyPI by PEP 440 (``1.0`` is ``1.0.0``)."""
    if ecosystem is not Ecosystem.PYPI:
        return version
    try:
        return canonicalize_version(version)
    except Exception:  # an invalid version compares as written
        return version


@dataclass(frozen=True, slots=True)
class Judgement:
    """The judged decisions of every live version of a package, before the proxy's reviews."""

    decisions: Mapping[str, Decision]  # by version_key
    judged_at: datetime
    changes_at: datetime | None  # the earliest moment a decision may change by time alone
    inputs: Mapping[str, bytes] = field(default_factory=dict)  # by version_key: see _inputs


def _trust_on_first_use(
    trust: TrustFile, key: str, ids: Iterable[tuple[str, str | None]]
) -> TrustFile:
    entries = tuple(
        TrustedEntry(custodian=cid, numeric_id=num, note="trusted on first use by custody proxy")
        for cid, num in sorted(set(ids))
    )
    trusted = dict(trust.trusted)
    trusted[key] = entries
    return dataclasses.replace(trust, trusted=trusted)


def _error_decision(dep: LockedDependency, exc: BaseException) -> Decision:
    return Decision(
        dep.ecosystem,
        dep.name,
        dep.version,
        None,
        Action.HOLD,
        (
            Finding(
                ERROR_RULE,
                Severity.HIGH,
                f"custody could not judge {dep.key} ({type(exc).__name__}); it is held "
                "rather than passed",
                {"error": type(exc).__name__},
            ),
        ),
    )


def _changes_at(decision: Decision) -> datetime | None:
    for f in decision.findings:
        if f.rule == "release.too-new":
            text = f.evidence.get("allowed_after")
            if isinstance(text, str):
                try:
                    return datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    return None
    return None


STABLE_AFTER = timedelta(days=120)
"""A release older than this (plus the cooldown) is past every time window the rules weigh
(cooldown, 30 and 90 days of tenure or age): its decision depends on its inputs alone."""
# Sets encode in iteration order: two equal inputs may (rarely) differ, which only costs a
# re-judgement, never a wrong reuse.
_encode = msgspec.msgpack.Encoder().encode


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def judge_package(
    history: PackageHistory,
    trust: TrustFile,
    *,
    unknown_packages: str,
    now: datetime,
    first_seen: datetime | None = None,
    observations: Sequence[Observation] = (),
    known_bad: Sequence[KnownBadRecord] = (),
    publishes: Mapping[str, Sequence[PublishEvent]] | None = None,
    trust_version: str | None = None,
    previous: Judgement | None = None,
) -> Judgement:
    """Judge every live (not unpublished) version of ``history``, oldest first.
    ``first_seen``: when the firewall first judged the package (default ``now``).

    With ``trust_version`` (identifying the trust file) and the ``previous`` judgement of the
    package, a release older than ``STABLE_AFTER`` whose inputs are unchanged keeps its
    previous decision: the rules only look back (at the releases before a candidate), so a
    package with thousands of versions that publishes one more is not judged all over again.
    The inputs of a release: every release up to it, the trust file, the custodians trusted
    on first use so far, the package's owners and observations, its publisher's publish
    events. Never reused: packages with known-bad records, and unknown packages judged by
    policy (``deps.new-package`` weighs the whole history)."""
    eco = history.ecosystem
    key = f"{eco.value}:{history.name}"
    known = trust.knows(key)
    first_use = unknown_packages == "first-use" and not known
    signals = FIRST_USE_SIGNALS if first_use else CHECK_SIGNALS
    seen = first_seen or now
    publishes = publishes or {}
    known_ids: set[tuple[str, str | None]] = set()  # first use: the custodians trusted so far
    strict: TrustFile | None = None  # the trust file plus ``known_ids``, rebuilt when they grow
    decisions: dict[str, Decision] = {}
    inputs: dict[str, bytes] = {}
    changes: list[datetime] = []
    live = [r for r in history.releases if not r.unpublished]
    founders = live[0].identities if first_use and live else ()  # first use of the package
    reuse = (
        previous is not None
        and trust_version is not None
        and not known_bad
        and (known or first_use)
    )
    stable_before = now - max(trust.policy.cooldown, timedelta(0)) - STABLE_AFTER
    chain = hashlib.blake2b(digest_size=16)
    chain.update(
        _digest(
            (trust_version or "").encode(),
            unknown_packages.encode(),
            seen.isoformat().encode(),
            _encode(history.current_owners),
            _encode(list(observations)),
        )
    )
    by_publisher: dict[str | None, bytes] = {}
    for release in history.releases:
        chain.update(_encode(release))
        if release.unpublished:
            continue
        past = release.published_at is None or release.published_at <= seen
        if first_use and not past:
            if strict is None:
                strict = _trust_on_first_use(trust, key, known_ids)
            effective = strict
        else:
            effective = trust
        dep = LockedDependency(eco, history.name, release.version, direct=True)
        publisher = release.publisher.id if release.publisher else None
        vkey = version_key(eco, release.version)
        if publisher not in by_publisher:
            by_publisher[publisher] = _encode(
                list(publishes.get(publisher, ()) if publisher else ())
            )
        state = _encode(sorted(known_ids)) if effective is strict else b"past"
        inputs[vkey] = _digest(chain.copy().digest(), by_publisher[publisher], state)
        decision = None
        if (
            reuse
            and previous is not None
            and release.published_at is not None
            and release.published_at < stable_before
            and previous.inputs.get(vkey) == inputs[vkey]
        ):
            decision = previous.decisions.get(vkey)
        if decision is None:
            try:
                decision = judge_release(
                    dep,
                    history,
                    effective,
                    observations=observations,
                    now=now,
                    implicit=founders if effective is trust else (),
                    signals=signals,
                    known_bad=known_bad,
                    publishes=publishes.get(publisher, ()) if publisher else (),
                ).decision
            except Exception as exc:  # fail closed: a bug must not let a release through
                log.exception("judging %s failed", dep.key)
                decision = _error_decision(dep, exc)
        decisions[vkey] = decision
        when = _changes_at(decision)
        if when is not None:
            changes.append(when)
        if first_use:
            ids = {(c.id, c.numeric_id) for c in release.identities}
            lends = past or (decision.action is Action.ALLOW and decision.approved_by is None)
            if lends and not ids <= known_ids:
                known_ids |= ids
                strict = None
    return Judgement(decisions, now, min(changes) if changes else None, inputs)


# -- the proxy's own reviews -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the proxy does with one version: the judge's decision with reviews applied."""

    action: Action
    decision: Decision
    approved_by: str | None = None
    reviewed: str | None = None  # "approve" / "deny" when a proxy review decided it

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule for f in self.decision.findings))


@dataclass(frozen=True, slots=True)
class ReviewNote:
    """The latest review of one release (from the ledger)."""

    verdict: str  # "approve" or "deny"
    by: str
    reason: str
    at: datetime


def verdicts(judgement: Judgement, reviews: Mapping[str, ReviewNote]) -> dict[str, Verdict]:
    """Per version key: a denial blocks (``proxy.denied``); an approval allows a held release
    (never a blocked one: known malicious stays blocked); the rest is the judge's decision
    (trust-file approvals are already in it)."""
    out: dict[str, Verdict] = {}
    for vkey, decision in judgement.decisions.items():
        review = reviews.get(vkey)
        if review is None:
            out[vkey] = Verdict(decision.action, decision, decision.approved_by)
        elif review.verdict == "deny":
            denied = Finding(
                DENIED_RULE,
                Severity.CRITICAL,
                f"denied at the registry firewall by {review.by}: {review.reason}",
                {"by": review.by, "reason": review.reason, "at": review.at.isoformat()},
            )
            decision = dataclasses.replace(
                decision, action=Action.BLOCK, findings=(denied, *decision.findings)
            )
            out[vkey] = Verdict(Action.BLOCK, decision, None, "deny")
        elif decision.action is Action.BLOCK:
            out[vkey] = Verdict(Action.BLOCK, decision, None, None)
        else:
            out[vkey] = Verdict(Action.ALLOW, decision, review.by, "approve")
    return out


def held_rows(
    judgement: Judgement,
) -> list[tuple[str, Action, tuple[str, ...], str]]:
    """``(version, action, rules, summary)`` of every release the judge holds or blocks."""
    rows: list[tuple[str, Action, tuple[str, ...], str]] = []
    for decision in judgement.decisions.values():
        if decision.action is Action.ALLOW:
            continue
        rules = tuple(dict.fromkeys(f.rule for f in decision.findings))
        summary = decision.findings[0].message if decision.findings else ""
        rows.append((decision.version, decision.action, rules, summary))
    return rows


def next_change(judgement: Judgement, ttl: timedelta) -> datetime:
    """When the package should be judged again even if nothing else changed."""
    limit = judgement.judged_at + ttl
    if judgement.changes_at is not None and judgement.changes_at < limit:
        return judgement.changes_at
    return limit
