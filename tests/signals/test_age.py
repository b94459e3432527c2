"""release.too-new: the cooldown, measured at ``now`` (``--as-of``), and its overrides."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from custody.judge import judge_release
from custody.model import Action, Severity
from custody.signals import age
from custody.trust import parse_trust_file
from tests.engine.builders import T0, history, locked, release

TRUST = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')
H = history(release("1.0.0", 0, maintainers=["alice"]), release("1.0.1", 10, maintainers=["alice"]))
PUBLISHED = T0 + timedelta(days=10)


def _judge(now_after: timedelta, trust=TRUST):
    return judge_release(locked("1.0.1"), H, trust, now=PUBLISHED + now_after)


def test_a_release_younger_than_the_cooldown_is_held_medium() -> None:
    judged = _judge(timedelta(hours=5))
    assert judged.decision.action is Action.HOLD
    [finding] = judged.decision.findings
    assert (finding.rule, finding.severity) == ("release.too-new", Severity.MEDIUM)
    assert finding.evidence == {
        "published_at": "2024-01-11T00:00:00Z",
        "age_hours": 5.0,
        "cooldown_hours": 48.0,
        "allowed_after": "2024-01-13T00:00:00Z",
    }
    assert "custody approve" in finding.message


def test_old_enough_releases_pass() -> None:
    assert _judge(timedelta(hours=48)).decision.action is Action.ALLOW
    assert _judge(timedelta(days=400)).decision.findings == ()


def test_as_of_decides_the_age() -> None:
    """``now`` is ``--as-of``: evaluated an hour after publication, the release was too new."""
    assert _judge(timedelta(hours=1)).decision.action is Action.HOLD
    assert _judge(timedelta(hours=49)).decision.action is Action.ALLOW


def test_cooldown_is_a_policy_setting_and_zero_disables_it() -> None:
    short = parse_trust_file(TRUST_TEXT + '[policy]\ncooldown = "1h"\n')
    assert _judge(timedelta(hours=2), short).decision.action is Action.ALLOW
    off = parse_trust_file(TRUST_TEXT + '[policy]\ncooldown = "0"\n')
    assert _judge(timedelta(seconds=5), off).decision.findings == ()


def test_an_approval_of_the_exact_version_is_the_override_for_an_urgent_fix() -> None:
    approved = parse_trust_file(
        TRUST_TEXT + '[[approved."npm:pkg"]]\nversion = "1.0.1"\nby = "sec@example.com"\n'
        'reason = "security fix for CVE-2024-0001"\n'
    )
    decision = _judge(timedelta(minutes=10), approved).decision
    assert decision.action is Action.ALLOW and decision.approved_by == "sec@example.com"
    assert [f.rule for f in decision.findings] == ["release.too-new"]  # still shown


def test_unknown_publish_time_is_not_guessed() -> None:

    from custody.signals.base import SignalContext, TrustedSet

    undated = msgspec.structs.replace(release("1.0.1", 10), published_at=None)
    ctx = SignalContext(
        locked("1.0.1"), history(undated), undated, None, TrustedSet(lambda *a: None), (), T0
    )
    assert age.too_new(ctx) == []


TRUST_TEXT = '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
