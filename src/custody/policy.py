"""Policy: blast-radius tiers and trust turn findings into decisions.

The settings live in the trust file's ``[policy]`` table; the defaults here are documented in
docs/trust-file.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from custody.model import Severity


@dataclass(frozen=True, slots=True)
class Tier:
    """A blast-radius tier. A package falls in the first tier (highest ``min_fan_in`` first)
    whose threshold its fan-in reaches. A finding at or above ``hold_at`` holds the release."""

    name: str
    min_fan_in: int = 0
    hold_at: Severity = Severity.MEDIUM
    # "hold": any custody.* finding of severity low or more holds; "warn": custody findings
    # never hold on their own in this tier; "review": use hold_at like every other rule.
    on_custody_change: str = "review"


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("critical", min_fan_in=20, hold_at=Severity.MEDIUM, on_custody_change="hold"),
    Tier("high", min_fan_in=5, hold_at=Severity.MEDIUM),
    Tier("normal", min_fan_in=0, hold_at=Severity.MEDIUM),
)


@dataclass(frozen=True, slots=True)
class Policy:
    cooldown: timedelta = timedelta(hours=48)
    new_packages: str = "review"  # or "trust-on-first-use"
    tiers: tuple[Tier, ...] = field(default=DEFAULT_TIERS)
    fingerprints: bool = False  # compare artifacts with their source (content.not-in-source)


DEFAULT_POLICY = Policy()


BLOCKING_RULES = frozenset({"known.malicious", "provenance.invalid"})


def tier_for(policy: Policy, fan_in: int) -> Tier:
    """The tier a package with this fan-in falls in (the highest threshold it reaches; the
    first listed of tiers with the same threshold)."""
    found: Tier | None = None
    for tier in policy.tiers:
        if fan_in >= tier.min_fan_in and (found is None or tier.min_fan_in > found.min_fan_in):
            found = tier
    return found if found is not None else Tier("default")


def holds(tier: Tier, finding_rule: str, severity: Severity) -> bool:
    """Does a finding of this rule and severity hold a release in this tier?"""
    if finding_rule.startswith("custody."):
        if tier.on_custody_change == "warn":
            return False
        if tier.on_custody_change == "hold" and severity.rank >= Severity.LOW.rank:
            return True
    return severity.rank >= tier.hold_at.rank


# -- blast radius: fan-in and public popularity ------------------------------------------------

POPULARITY_THRESHOLDS: tuple[tuple[str, int], ...] = (
    ("critical", 1_000_000),  # weekly downloads at which a package is in this tier anyway
    ("high", 50_000),
)
LOW_MAX_WEEKLY_DOWNLOADS = 1_000
LOW_TIER = Tier("low", min_fan_in=0, hold_at=Severity.HIGH, on_custody_change="warn")


def blast_tier(policy: Policy, fan_in: int, weekly_downloads: int | None = None) -> Tier:
    """The tier from both halves of blast radius: fan-in within your projects, and public
    weekly downloads where known (docs/fragility.md).

    - Unknown popularity: exactly ``tier_for(policy, fan_in)``.
    - Popularity can raise a package's tier (``POPULARITY_THRESHOLDS``), never lower it below
      its fan-in tier, except one case: a package with fan-in 1 in the lowest tier whose public
      downloads are under ``LOW_MAX_WEEKLY_DOWNLOADS`` a week is in tier ``low`` (a policy tier
      of that name if the trust file has one, else ``LOW_TIER``), where custody changes warn
      instead of holding."""
    by_fan_in = tier_for(policy, fan_in)
    if weekly_downloads is None:
        return by_fan_in
    tiers = {t.name: t for t in policy.tiers}
    best = by_fan_in
    for name, threshold in POPULARITY_THRESHOLDS:
        tier = tiers.get(name)
        if tier is not None and weekly_downloads >= threshold:
            if tier.min_fan_in > best.min_fan_in:
                best = tier
            break
    others = [t for t in policy.tiers if t.name != "low"]
    bottom = min(others, key=lambda t: t.min_fan_in, default=best)
    obscure = weekly_downloads < LOW_MAX_WEEKLY_DOWNLOADS
    if best.min_fan_in <= bottom.min_fan_in and fan_in <= 1 and obscure:
        return tiers.get("low", LOW_TIER)
    return best
