"""Blast radius from real lockfiles, and the tiers it gives with and without popularity."""

from __future__ import annotations

from pathlib import Path

import pytest

from custody.blast import blast_radius
from custody.engine import read_lockfiles
from custody.policy import DEFAULT_POLICY, LOW_TIER, Policy, Tier, blast_tier

LOCKFILES = Path(__file__).resolve().parents[1] / "fixtures" / "lockfiles"


def test_fan_in_spread_and_depth_from_real_npm_lockfiles() -> None:
    locked = read_lockfiles(
        [
            LOCKFILES / "npm-v3" / "package-lock.json",
            LOCKFILES / "npm-workspaces-v3" / "package-lock.json",
        ]
    )
    blast = blast_radius(locked.dependencies)
    es = blast["npm:event-stream"]
    assert es.direct and es.depth == 1 and es.lockfiles == 2
    assert es.fan_in == 2  # the root of each lockfile
    through = blast["npm:through"]
    # event-stream pulls it in (twice: one nested copy), and the workspaces root depends on it
    assert through.fan_in >= 2 and through.lockfiles == 2 and through.direct
    duplexer = blast["npm:duplexer"]
    assert not duplexer.direct and duplexer.depth == 2 and duplexer.fan_in == 1
    assert duplexer.weekly_downloads is None


def test_fan_in_from_a_real_requirements_lock() -> None:
    locked = read_lockfiles([LOCKFILES / "requirements" / "requirements.txt"])
    blast = blast_radius(locked.dependencies)
    # requests is pulled in by the project and nothing else; idna/certifi/urllib3 through it
    assert blast["pypi:requests"].direct
    for dep in ("idna", "certifi", "urllib3"):
        b = blast[f"pypi:{dep}"]
        assert (b.fan_in >= 1 and b.depth >= 2) or b.direct


def test_popularity_joins_the_blast_radius() -> None:
    locked = read_lockfiles([LOCKFILES / "npm-v3" / "package-lock.json"])
    from custody.model import Ecosystem

    blast = blast_radius(locked.dependencies, {(Ecosystem.NPM, "event-stream"): (2_000_000, 4000)})
    assert blast["npm:event-stream"].weekly_downloads == 2_000_000
    assert blast["npm:event-stream"].dependents == 4000
    assert blast["npm:through"].weekly_downloads is None


@pytest.mark.parametrize(
    ("fan_in", "weekly", "tier"),
    [
        (1, None, "normal"),  # no popularity: fan-in alone, as custody check does
        (5, None, "high"),
        (20, None, "critical"),
        (1, 2_000_000, "critical"),  # popular everywhere: critical even if used once here
        (1, 60_000, "high"),
        (5, 60_000, "high"),
        (25, 60_000, "critical"),  # popularity never lowers the fan-in tier
        (1, 5_000, "normal"),
        (1, 999, "low"),  # a hobby package used once: custody changes warn
        (2, 999, "normal"),  # ... unless more than one dependent here pulls it in
    ],
)
def test_blast_tiers(fan_in: int, weekly: int | None, tier: str) -> None:
    assert blast_tier(DEFAULT_POLICY, fan_in, weekly).name == tier


def test_low_tier_warns_and_a_trust_file_tier_named_low_wins() -> None:
    from custody.model import Severity
    from custody.policy import holds

    assert LOW_TIER.on_custody_change == "warn"
    assert not holds(LOW_TIER, "custody.new-publisher", Severity.CRITICAL)
    assert holds(LOW_TIER, "known.other", Severity.HIGH)
    own = Tier("low", min_fan_in=0, on_custody_change="review")
    policy = Policy(tiers=(*DEFAULT_POLICY.tiers[:2], Tier("normal", min_fan_in=1), own))
    assert blast_tier(policy, 1, 10) is own
