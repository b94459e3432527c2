"""Age signals: a release younger than the policy's cooldown has not been seen by the world yet.

Most malicious releases are found and removed within hours to days; waiting out a cooldown
before adopting a release lets the ecosystem's scanners and users find them first. The override
for an urgent release (a security fix) is an approval of that exact version in the trust file
(``custody approve ECO:NAME@VERSION --reason "security fix for ..."``), which records who let it
through and why; ``[policy] cooldown = "0"`` turns the rule off."""

from __future__ import annotations

from datetime import datetime, timedelta

from custody.model import Finding, Release, Severity
from custody.signals.base import SignalContext

_NONE = timedelta(0)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _human(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 3600:
        return f"{seconds // 60} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def too_new(ctx: SignalContext) -> list[Finding]:
    """``release.too-new``: published less than ``policy.cooldown`` before ``ctx.now`` (which is
    ``--as-of`` when given). ``medium``: holds under the default tiers until it is old enough or
    someone approves it."""
    cooldown = ctx.policy.cooldown
    cand = ctx.candidate
    if cooldown <= _NONE or cand is None or cand.unpublished:
        return []
    if cand.published_at is None:
        return _undated(ctx, cand, cooldown)
    # A publish time ahead of now (clock skew, a registry stamping ahead) is as new as can be.
    age = max(ctx.now - cand.published_at, _NONE)
    if age >= cooldown:
        return []
    ready = cand.published_at + cooldown
    return [
        Finding(
            "release.too-new",
            Severity.MEDIUM,
            f"{cand.version} was published {_human(age)} ago, less than the "
            f"{_human(cooldown)} cooldown: it can be adopted after {_iso(ready)}, or approved "
            "now (for an urgent fix) with `custody approve`",
            {
                "published_at": _iso(cand.published_at),
                "age_hours": round(age.total_seconds() / 3600, 2),
                "cooldown_hours": round(cooldown.total_seconds() / 3600, 2),
                "allowed_after": _iso(ready),
            },
        )
    ]


def _undated(ctx: SignalContext, cand: Release, cooldown: timedelta) -> list[Finding]:
    """No publish time for the release while earlier ones have theirs: its age is unknown, so
    the cooldown cannot be shown to be over (a registry document with every time missing, as
    on a mirror that rewrites them, says nothing either way and is left alone)."""
    if not any(r.published_at is not None for r in ctx.predecessors):
        return []
    return [
        Finding(
            "release.too-new",
            Severity.MEDIUM,
            f"the registry gives no publish time for {cand.version}, though it does for earlier "
            f"releases: it cannot be shown to be older than the {_human(cooldown)} cooldown; "
            "approve it once it has been looked at",
            {"published_at": None, "cooldown_hours": round(cooldown.total_seconds() / 3600, 2)},
        )
    ]
