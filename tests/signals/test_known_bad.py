"""known.malicious: exact versions block; a record covering every version of a once-good
package does not condemn the releases from before it changed hands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custody.judge import judge_release
from custody.model import Action, Severity
from custody.osv import parse_record
from custody.trust import parse_trust_file
from tests.engine.builders import T0, history, locked, release

from .osv_records import ALL, mal

TRUST = parse_trust_file(
    '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
    '[[approved."npm:pkg"]]\nversion = "1.0.1"\nby = "r@example.com"\nreason = "looked fine"\n'
)
LATER = T0 + timedelta(days=3000)


def _judge(h, version, records, now=LATER, trust=TRUST):
    return judge_release(locked(version), h, trust, now=now, known_bad=records).decision


def _rules(decision) -> dict[str, Severity]:
    return {f.rule: f.severity for f in decision.findings}


def test_a_listed_version_is_blocked_even_when_approved() -> None:
    h = history(release("1.0.0", 0), release("1.0.1", 10))
    [record] = parse_record(mal("MAL-2018-0001", "npm", "pkg", versions=["1.0.1"]))
    blocked = _judge(h, "1.0.1", [record])
    assert blocked.action is Action.BLOCK and blocked.approved_by is None
    finding = next(f for f in blocked.findings if f.rule == "known.malicious")
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["id"] == "MAL-2018-0001"
    assert finding.evidence["matched"] == "version"
    assert _judge(h, "1.0.0", [record]).action is Action.ALLOW


def _all_versions(published: datetime) -> list:
    return parse_record(
        mal("MAL-2024-77", "npm", "pkg", ranges=ALL, published=published.isoformat())
    )


def test_once_good_package_taken_over_old_releases_are_not_condemned() -> None:
    """alice published 1.0.0-1.0.2 for years; the name passed to mallory, whose 2.0.0 was
    malicious and reported with a record covering every version."""
    h = history(
        release("1.0.0", 0, "alice"),
        release("1.0.1", 100, "alice"),
        release("1.0.2", 400, "alice"),
        release("2.0.0", 1000, "mallory"),
    )
    records = _all_versions(T0 + timedelta(days=1003))
    old = _judge(h, "1.0.2", records)
    assert old.action is Action.HOLD
    finding = next(f for f in old.findings if f.rule == "known.malicious-package")
    assert finding.severity is Severity.HIGH
    assert finding.evidence["suspect_publishers"] == ["npm:user/mallory"]
    assert finding.evidence["release_publisher"] == "npm:user/alice"
    assert "known.malicious" not in _rules(old)
    new = _judge(h, "2.0.0", records)
    assert new.action is Action.BLOCK
    assert (
        next(f for f in new.findings if f.rule == "known.malicious").evidence["matched"]
        == "all-versions"
    )


def test_releases_by_the_malicious_custodian_are_condemned_even_when_older() -> None:
    h = history(
        release("1.0.0", 0, "alice"),
        release("1.5.0", 300, "mallory"),  # mallory's first, quiet release, long before
        release("2.0.0", 1000, "mallory"),
    )
    records = _all_versions(T0 + timedelta(days=1001))
    assert _judge(h, "1.5.0", records).action is Action.BLOCK
    assert _judge(h, "1.0.0", records).action is Action.HOLD


def test_a_typosquat_reported_long_after_it_was_published_is_condemned() -> None:
    """Never good: every release by the same account, the last one a year before the record."""
    h = history(release("0.0.1", 0, "squatter"), release("0.0.2", 5, "squatter"))
    records = _all_versions(T0 + timedelta(days=400))
    assert _judge(h, "0.0.1", records).action is Action.BLOCK


def test_releases_shortly_before_or_after_the_record_are_condemned() -> None:
    h = history(release("1.0.0", 0, "alice"), release("1.0.3", 990, "alice"))
    records = _all_versions(T0 + timedelta(days=1000))
    assert _judge(h, "1.0.3", records).action is Action.BLOCK  # 10 days before the record
    assert _judge(h, "1.0.0", records).action is Action.BLOCK  # same custodian as the newest


def test_unknown_publishers_and_old_releases_are_held_not_blocked() -> None:
    h = history(release("1.0.0", 0, None), release("2.0.0", 1000, None))
    records = _all_versions(T0 + timedelta(days=1002))
    assert _judge(h, "1.0.0", records).action is Action.HOLD
    assert _judge(h, "2.0.0", records).action is Action.BLOCK


def test_as_of_ignores_records_published_later() -> None:
    h = history(release("1.0.0", 0), release("1.0.1", 10))
    [record] = parse_record(
        mal("MAL-2024-5", "npm", "pkg", versions=["1.0.1"], published="2024-06-01T00:00:00Z")
    )
    before = datetime(2024, 5, 1, tzinfo=UTC)
    assert _judge(h.as_of(before), "1.0.1", [record], now=before).action is Action.ALLOW
    assert _judge(h, "1.0.1", [record]).action is Action.BLOCK


def test_records_of_other_packages_are_ignored() -> None:
    h = history(release("1.0.0", 0), release("1.0.1", 10))
    records = parse_record(mal("MAL-1", "npm", "other", versions=["1.0.1"]))
    assert _judge(h, "1.0.1", records).action is Action.ALLOW


def test_a_version_the_registry_removed_is_still_matched() -> None:
    """npm replaces malicious versions: the locked version is gone from the history."""
    h = history(release("1.0.0", 0))
    records = parse_record(mal("MAL-1", "npm", "pkg", versions=["1.0.1"]))
    decision = _judge(h, "1.0.1", records)
    assert decision.action is Action.BLOCK
    assert {"known.malicious", "release.unpublished"} <= set(_rules(decision))
