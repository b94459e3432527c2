"""Release-state signals: is the locked release still there, and can its custody be judged at
all."""

from __future__ import annotations

from custody.model import Ecosystem, Finding, Severity
from custody.signals.base import SignalContext


def unpublished(ctx: SignalContext) -> list[Finding]:
    """``release.unpublished``: the locked release is gone from the registry (or never was).
    A lockfile that pins a release nobody can download any more is either stale or tampered."""
    cand = ctx.candidate
    dep = ctx.dependency
    if cand is not None and not cand.unpublished:
        if cand.yanked:
            return [
                Finding(
                    "release.yanked",
                    Severity.LOW,
                    f"{dep.name} {dep.version} was yanked"
                    + (f": {cand.yanked_reason}" if cand.yanked_reason else ""),
                    {"reason": cand.yanked_reason},
                )
            ]
        return []
    known = [r.version for r in ctx.history.releases if not r.unpublished][-5:]
    when = cand.published_at.isoformat() if cand and cand.published_at else None
    return [
        Finding(
            "release.unpublished",
            Severity.HIGH,
            f"{dep.name} {dep.version} is not available from {ctx.history.registry}"
            + (" (it was unpublished)" if cand is not None else ""),
            {
                "registry": ctx.history.registry,
                "published_at": when,
                "latest_versions": known,
            },
        )
    ]


def unknown_custody(ctx: SignalContext) -> list[Finding]:
    """``custody.unknown-publisher``: the registry does not say who published the release and
    nothing else (provenance, owners) identifies a custodian. Reported, never silently passed."""
    cand = ctx.candidate
    if cand is None or cand.unpublished or cand.publisher is not None:
        return []
    if cand.provenance is not None and cand.provenance.source is not None:
        return []
    last = next((r for r in reversed(ctx.predecessors) if r.publisher is not None), None)
    if last is not None and last.publisher is not None:
        # The registry names the publishers of earlier releases but not this one's: reported
        # even where owners are tracked, since today's owners do not say who published it.
        # ``low``: a registry that strips the record could as well forge it, and npm itself
        # kept none for some months of 2012; the critical tier holds it.
        # Its maintainer list stripped too: nothing about its custody is left to compare.
        stripped = cand.maintainers is None and last.maintainers is not None
        return [
            Finding(
                "custody.unknown-publisher",
                Severity.MEDIUM if stripped else Severity.LOW,
                f"the registry does not say who published {cand.name} {cand.version}, though "
                f"it names the publisher of earlier releases ({last.publisher.id} published "
                f"{last.version})",
                {
                    "registry": ctx.history.registry,
                    "last_named_version": last.version,
                    "last_named_publisher": last.publisher.id,
                },
            )
        ]
    if ctx.history.current_owners or any(o.fact == "owner" for o in ctx.observations):
        return []  # owners are tracked through observations instead
    where = (
        "the npm registry document has no _npmUser"
        if ctx.history.ecosystem is Ecosystem.NPM
        else "the index names no uploader or owner"
    )
    return [
        Finding(
            "custody.unknown-publisher",
            Severity.INFO,
            f"cannot tell who published {cand.name} {cand.version}: {where}",
            {"registry": ctx.history.registry},
        )
    ]
