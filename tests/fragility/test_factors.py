"""Each fragility factor on small histories built for it, the custodian record, and the score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custody.blast import BlastRadius
from custody.fragility import RadarInput, assess, criticality, rank
from custody.ledger import PublishEvent
from custody.model import (
    Custodian,
    Ecosystem,
    Observation,
    OwnerRole,
    PackageHistory,
    Provenance,
    Release,
)
from custody.reputation import custodian_record

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _r(
    version: str,
    days_ago: float,
    publisher: str = "alice",
    maintainers: tuple[str, ...] = ("alice",),
    **kw: object,
) -> Release:
    return Release(
        Ecosystem.NPM,
        "pkg",
        version,
        published_at=NOW - timedelta(days=days_ago),
        publisher=Custodian.npm_user(publisher),
        maintainers=frozenset(Custodian.npm_user(m) for m in maintainers),
        **kw,  # type: ignore[arg-type]
    )


def _h(*releases: Release, **kw: object) -> PackageHistory:
    return PackageHistory(Ecosystem.NPM, "pkg", "http://r/", NOW, tuple(releases), **kw)  # type: ignore[arg-type]


def _rules(history: PackageHistory, observations: tuple[Observation, ...] = ()) -> dict[str, str]:
    a = assess(RadarInput(history, None, observations), NOW)
    return {f.rule: f.reason for f in a.factors}


def test_a_healthy_team_scores_low() -> None:
    team = ("alice", "bob", "carol")
    prov = Provenance("npm-attestation", source=Custodian("github:o/pkg"))
    h = _h(*(_r(f"1.{i}.0", 700 - 60 * i, maintainers=team, provenance=prov) for i in range(12)))
    assert _rules(h) == {}


def test_single_maintainer_idle_for_years() -> None:
    rules = _rules(_h(_r("1.0.0", 1500), _r("1.0.1", 1000)))
    assert rules["fragility.single-maintainer"] == "a single maintainer: npm:user/alice"
    assert rules["fragility.idle"].startswith("no release for 2.7 years (last: 1.0.1 on ")
    assert "fragility.no-provenance" in rules


def test_today_s_owners_take_precedence_over_the_release_list() -> None:
    h = _h(
        _r("1.0.0", 10, maintainers=("alice", "bob")),
        current_owners=(OwnerRole(Custodian.npm_user("bob")),),
    )
    assert _rules(h)["fragility.single-maintainer"] == "a single maintainer: npm:user/bob"


def test_slowing_down() -> None:
    early = [_r(f"0.{i}.0", 1400 - 30 * i, maintainers=("a", "b", "c")) for i in range(24)]
    late = _r("1.0.0", 100, maintainers=("a", "b", "c"))
    rules = _rules(_h(*early, late))
    assert rules["fragility.slowing"].startswith("1 release(s) in the last year against ")
    assert "fragility.idle" not in rules


def test_provenance_dropped() -> None:
    prov = Provenance("npm-attestation")
    rules = _rules(_h(_r("1.0.0", 50, provenance=prov), _r("1.0.1", 10)))
    assert rules["fragility.provenance-dropped"] == "1.0.1 has no provenance; 1.0.0 had it"


def test_ownership_change_on_record() -> None:
    h = _h(
        _r("1.0.0", 400),
        _r("1.0.1", 20, publisher="mallory", maintainers=("alice", "mallory")),
    )
    reason = _rules(h)["fragility.ownership-change"]
    assert "maintainer npm:user/mallory added in 1.0.1" in reason
    assert "first release by npm:user/mallory" in reason or "and 1 more" in reason
    old = _h(_r("1.0.0", 2000), _r("1.0.1", 1900, publisher="bob", maintainers=("alice", "bob")))
    assert "fragility.ownership-change" not in _rules(old)  # long ago: part of its story


def test_owner_seen_appearing_in_observations() -> None:
    def obs(subject: str, first: float) -> Observation:
        when = NOW - timedelta(days=first)
        return Observation(Ecosystem.PYPI, "pkg", "owner", subject, "Owner", when, NOW)

    h = _h(_r("1.0.0", 10, maintainers=("a", "b", "c")))
    rules = _rules(h, (obs("pypi:user/alice", 300), obs("pypi:user/mallory", 5)))
    assert "Custody saw owner pypi:user/mallory appear" in rules["fragility.ownership-change"]


def test_deprecation_and_looking_for_maintainers() -> None:
    h = _h(
        _r("1.0.0", 10, maintainers=("a", "b", "c")),
        description="Tiny lib. Looking for new maintainers!",
    )
    rules = _rules(h)
    assert rules["fragility.seeking-maintainers"].startswith(
        "its description says 'Looking for new maintainers'"
    )
    dep = _h(
        _r("1.0.0", 10, maintainers=("a", "b", "c"), deprecated="use other-pkg"),
        deprecated="use other-pkg",
    )
    assert _rules(dep)["fragility.deprecated"] == "deprecated: use other-pkg"


def test_criticality_and_rank() -> None:
    one = BlastRadius(Ecosystem.NPM, "a", 1, 1, True, 1)
    many = BlastRadius(Ecosystem.NPM, "b", 20, 3, True, 1)
    popular = BlastRadius(Ecosystem.NPM, "c", 1, 1, True, 1, weekly_downloads=10_000_000)
    assert criticality(one)[0] == 23 and criticality(one)[2] is False
    assert criticality(many)[0] == 100
    score, basis, known = criticality(popular)
    assert known and score == round(100 * (0.2276 + 1) / 2) and "10,000,000 downloads/week" in basis
    fragile = _h(_r("1.0.0", 1500))
    sturdy = _h(_r("1.0.0", 10, maintainers=("a", "b", "c")))
    ranked = rank(
        [RadarInput(sturdy, many), RadarInput(fragile, one), RadarInput(fragile, many)], NOW
    )
    assert [(a.criticality, a.fragility) for a in ranked] == [(100, 60), (23, 60), (100, 5)]


def test_custodian_record() -> None:
    mallory = Custodian.npm_user("mallory")
    events = [
        PublishEvent(Ecosystem.NPM, "other", "1.0.0", mallory.id, NOW - timedelta(days=3)),
        PublishEvent(Ecosystem.NPM, "third", "2.0.0", mallory.id, NOW - timedelta(days=2)),
        PublishEvent(Ecosystem.NPM, "third", "2.0.0", "npm:user/alice", NOW - timedelta(days=400)),
    ]
    history = _h(
        _r("1.0.0", 300), _r("1.0.1", 1, publisher="mallory", maintainers=("alice", "mallory"))
    )
    record = custodian_record(mallory, publishes=events, histories=[history], now=NOW)
    assert record == {
        "custodian": "npm:user/mallory",
        "account_created": None,
        "first_publish_seen": "2024-05-29T00:00:00Z",
        "days_since_first_publish": 3.0,
        "packages_published": ["npm:other", "npm:pkg", "npm:third"],
        "package_count": 3,
        "releases_seen": 3,
        "releases_with_provenance": 0,
        "provenance_share": 0.0,
    }
