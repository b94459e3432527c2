"""The firewall's tables in the ledger, on SQLite and PostgreSQL: reviews, holds, first sight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custody.ledger import Ledger
from custody.model import Action, Ecosystem

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_reviews_are_appended_and_read_incrementally(ledger: Ledger) -> None:
    assert ledger.proxy_state_marker().reviews == 0
    first = ledger.add_review(
        at=T0, ecosystem=Ecosystem.NPM, package="kit", version="1.0.6",
        verdict="approve", by="a@example.com", reason="read the diff",
    )  # fmt: skip
    second = ledger.add_review(
        at=T0 + timedelta(minutes=1), ecosystem=Ecosystem.PYPI, package="kit",
        version="1.0", verdict="deny", by="b@example.com", reason="no",
    )  # fmt: skip
    assert second.id > first.id
    marker = ledger.proxy_state_marker()
    assert marker.reviews == second.id and marker.known_bad == 0
    assert ledger.reviews_since(0) == [first, second]
    assert ledger.reviews_since(first.id) == [second]
    assert ledger.reviews_since(second.id) == []


def test_holds_are_replaced_per_package_and_keep_first_seen(ledger: Ledger) -> None:
    hold = ("1.0.6", Action.HOLD, ("custody.new-publisher",), "mallory published it")
    ledger.replace_holds(Ecosystem.NPM, "kit", [hold], T0)
    ledger.replace_holds(Ecosystem.NPM, "other", [("2.0.0", Action.BLOCK, (), "bad")], T0)
    later = T0 + timedelta(hours=1)
    ledger.replace_holds(
        Ecosystem.NPM, "kit", [hold, ("1.0.7", Action.HOLD, ("release.too-new",), "new")], later
    )
    rows = {r.version: r for r in ledger.held_releases(ecosystem=Ecosystem.NPM, package="kit")}
    assert set(rows) == {"1.0.6", "1.0.7"}
    assert rows["1.0.6"].first_seen == T0 and rows["1.0.6"].last_seen == later
    assert rows["1.0.7"].first_seen == later
    ledger.replace_holds(Ecosystem.NPM, "kit", [], later)
    assert [r.package for r in ledger.held_releases()] == ["other"]


def test_first_seen_is_recorded_once(ledger: Ledger) -> None:
    assert ledger.first_seen(Ecosystem.NPM, "kit", T0) == T0
    assert ledger.first_seen(Ecosystem.NPM, "kit", T0 + timedelta(days=1)) == T0
    assert ledger.first_seen(Ecosystem.PYPI, "kit", T0 + timedelta(days=2)) == T0 + timedelta(
        days=2
    )
