"""Hand-over shapes a bug hunt found slipping through (or held for nothing): each test fails on
the judging that let it happen."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from custody.judge import judge_release
from custody.model import (
    Action,
    Custodian,
    Ecosystem,
    Observation,
    OwnerRole,
    Provenance,
    Release,
    Severity,
)
from custody.trust import parse_trust_file

from .builders import T0, history, locked, release

PYPI = Ecosystem.PYPI
TRUST_ALICE = parse_trust_file('[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n')
LATER = T0 + timedelta(days=3000)


def judge(hist, version, trust=TRUST_ALICE, now=LATER, **kw):
    return judge_release(locked(version), hist, trust, now=now, **kw).decision


def rules(decision) -> dict[str, Severity]:
    return {f.rule: f.severity for f in decision.findings}


def _signed(version: str, day: float, **kw):
    return release(version, day, maintainers=["alice"], provenance="acme/pkg", repo_id="42", **kw)


# -- custody.provenance-downgrade ------------------------------------------------------------


def test_a_second_release_without_provenance_is_still_a_downgrade() -> None:
    """A stolen token publishes 1.0.2 and 1.0.3 by hand: the lockfile jumping straight to 1.0.3
    must not be judged against the attacker's own 1.0.2 (its publisher is trusted)."""
    h = history(
        _signed("1.0.0", 0),
        _signed("1.0.1", 10),
        release("1.0.2", 11, maintainers=["alice"]),
        release("1.0.3", 12, maintainers=["alice"]),
    )
    d = judge(h, "1.0.3", now=T0 + timedelta(days=20))
    assert d.action is Action.HOLD
    finding = next(f for f in d.findings if f.rule == "custody.provenance-downgrade")
    assert finding.severity is Severity.HIGH
    assert finding.evidence["previous_version"] == "1.0.1"
    assert finding.evidence["without_provenance_since"] == ["1.0.2"]


def test_an_approved_release_without_provenance_accepts_the_drop() -> None:
    h = history(
        _signed("1.0.0", 0),
        release("1.0.1", 10, maintainers=["alice"]),
        release("1.0.2", 12, maintainers=["alice"]),
    )
    approved = parse_trust_file(
        '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
        '[[approved."npm:pkg"]]\nversion = "1.0.1"\nreason = "moved CI"\nby = "bob"\n'
    )
    assert "custody.provenance-downgrade" in rules(judge(h, "1.0.2"))
    assert "custody.provenance-downgrade" not in rules(judge(h, "1.0.2", trust=approved))


def test_provenance_dropped_months_ago_is_established() -> None:
    h = history(
        _signed("1.0.0", 0),
        release("1.0.1", 10, maintainers=["alice"]),
        release("1.0.2", 200, maintainers=["alice"]),
    )
    assert "custody.provenance-downgrade" not in rules(judge(h, "1.0.2"))


# -- custody.new-publisher and provenance ------------------------------------------------------


def test_a_release_built_by_a_trusted_repository_is_not_a_new_publisher() -> None:
    """npm trusted publishing: the uploader is the CI, the identity is the repository."""
    trust = parse_trust_file(
        '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
        '[[trusted-everywhere]]\ncustodian = "github:acme/*"\n'
    )
    ci = release("1.1.0", 20, "ci-bot", maintainers=["alice"], provenance="acme/pkg", repo_id="42")
    h = history(_signed("1.0.0", 0), ci)
    assert "custody.new-publisher" not in rules(judge(h, "1.1.0", trust=trust))
    # a failed verification does not vouch for anything
    failed = msgspec.structs.replace(
        ci,
        provenance=Provenance(
            "npm-attestation", verified=False, source=Custodian("github:acme/pkg", "42")
        ),
    )
    assert "custody.new-publisher" in rules(judge(history(_signed("1.0.0", 0), failed), "1.1.0"))


def test_a_workflow_trusted_by_a_bound_entry_is_not_a_source_change() -> None:
    def built(version: str, day: float, workflow: str):
        return release(
            version,
            day,
            maintainers=["alice"],
            provenance="acme/pkg",
            repo_id="42",
            workflow=workflow,
        )

    h = history(
        built("1.0.0", 0, ".github/workflows/release.yml"),
        built("1.0.1", 10, ".github/workflows/publish.yml"),
    )
    bound = parse_trust_file(
        '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
        '[[trusted."npm:pkg"]]\ncustodian = "github:acme/pkg:.github/workflows/publish.yml"\n'
    )
    unbound = parse_trust_file(
        '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
        '[[trusted."npm:pkg"]]\ncustodian = "github:acme/pkg"\n'
    )
    assert "custody.provenance-source-changed" not in rules(judge(h, "1.0.1", trust=bound))
    assert rules(judge(h, "1.0.1", trust=unbound))["custody.provenance-source-changed"] is (
        Severity.MEDIUM
    )


# -- the baseline ------------------------------------------------------------------------------


def test_an_approved_release_is_the_baseline_of_a_jump() -> None:
    """Trust that comes only from an approval (a package init could not name a custodian of):
    a jump over the hand-over release is judged against the approved one."""
    h = history(
        release("1.0.0", 0, None, maintainers=["alice"]),
        release("1.0.1", 10, None, maintainers=["mallory"]),
        release("1.0.2", 12, None, maintainers=["mallory"], deps={"flatmap-stream": "^0.1.0"}),
    )
    trust = parse_trust_file(
        '[[approved."npm:pkg"]]\nversion = "1.0.0"\nreason = "baseline"\nby = "init"\n'
    )
    d = judge(h, "1.0.2", trust=trust)
    assert d.from_version == "1.0.0"
    assert rules(d)["custody.new-maintainer"] is Severity.MEDIUM
    assert d.action is Action.HOLD


# -- custody.unknown-publisher -----------------------------------------------------------------


def test_a_release_missing_its_publisher_is_reported_where_earlier_ones_name_theirs() -> None:
    h = history(
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.0.1", 10, None, maintainers=["alice"]),
    )
    owners = (OwnerRole(Custodian.npm_user("alice"), "maintainer"),)
    with_owners = msgspec.structs.replace(h, current_owners=owners)
    for hist in (h, with_owners):
        finding = next(f for f in judge(hist, "1.0.1").findings)
        assert finding.rule == "custody.unknown-publisher"
        assert finding.severity is Severity.LOW
        assert finding.evidence["last_named_publisher"] == "npm:user/alice"


# -- release.too-new ---------------------------------------------------------------------------


def test_a_publish_time_ahead_of_the_clock_is_too_new() -> None:
    trust = parse_trust_file(
        '[policy]\ncooldown = "2d"\n[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
    )
    h = history(release("1.0.0", 0), release("1.0.1", 10))
    ahead = judge(h, "1.0.1", trust=trust, now=T0 + timedelta(days=10) - timedelta(minutes=5))
    assert rules(ahead) == {"release.too-new": Severity.MEDIUM}
    assert ahead.action is Action.HOLD


# -- owners observed between looks (PyPI, devpi) ---------------------------------------------


def _pypi_history():
    return history(
        release("1.0.0", 0, None, ecosystem=PYPI),
        release("1.0.1", 15, None, ecosystem=PYPI),
        ecosystem=PYPI,
    )


def _obs(subject: str, role: str, first, last, gone=None) -> Observation:
    return Observation(PYPI, "pkg", "owner", f"pypi:user/{subject}", role, first, last, gone)


TRUST_PYPI = parse_trust_file('[[trusted."pypi:pkg"]]\ncustodian = "pypi:user/alice"\n')
LOOK1, LOOK2, LOOK3 = (T0 + timedelta(days=d) for d in (5, 20, 30))


def _judge_pypi(obs, now):
    return judge_release(
        locked("1.0.1", ecosystem=PYPI), _pypi_history(), TRUST_PYPI, observations=obs, now=now
    ).decision


def test_an_owner_removing_itself_does_not_clear_the_release_it_published() -> None:
    obs = [
        _obs("alice", "Owner", LOOK1, LOOK3),
        _obs("mallory", "Owner", LOOK2, LOOK2, gone=LOOK3),  # came, published 1.0.1, left
    ]
    d = _judge_pypi(obs, LOOK3)
    assert d.action is Action.HOLD
    assert rules(d)["custody.new-maintainer"] is Severity.MEDIUM
    # an owner that came and went before the release was published is not about it
    before = [_obs("alice", "Owner", LOOK1, LOOK3), _obs("eve", "Owner", LOOK1, LOOK1)]
    before.append(_obs("eve2", "Owner", LOOK1 + timedelta(days=1), LOOK1, gone=LOOK1))
    assert "custody.new-maintainer" not in rules(_judge_pypi(before, LOOK3))


def test_a_promotion_is_not_a_new_owner() -> None:
    obs = [
        _obs("alice", "Owner", LOOK1, LOOK2),
        _obs("bob", "Maintainer", LOOK1, LOOK1, gone=LOOK2),
        _obs("bob", "Owner", LOOK2, LOOK2),
    ]
    assert "custody.new-maintainer" not in rules(_judge_pypi(obs, LOOK2))


def test_npm_maintainers_listed_per_release_are_not_weighed_twice() -> None:
    """A co-maintainer added between two runs, then the trusted maintainer's next release:
    npm lists the maintainers with each release, so only that rule (low) speaks."""
    h = history(
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.1.0", 15, maintainers=["alice", "bob"]),
    )
    obs = [
        Observation(Ecosystem.NPM, "pkg", "owner", "npm:user/alice", "maintainer", LOOK1, LOOK2),
        Observation(Ecosystem.NPM, "pkg", "owner", "npm:user/bob", "maintainer", LOOK2, LOOK2),
    ]
    d = judge(h, "1.1.0", observations=obs, now=LOOK2)
    assert rules(d) == {"custody.new-maintainer": Severity.LOW}
    assert d.action is Action.ALLOW


# -- npm trusted publishing --------------------------------------------------------------------


def test_a_switch_to_trusted_publishing_is_reviewed_at_medium() -> None:
    """The CI of npm trusted publishing is never a listed maintainer: its first release is a
    custody change to look at (medium), not an unknown account taking over (high)."""
    ci = msgspec.structs.replace(
        release("1.1.0", 20, None, maintainers=["alice"]),
        publisher=Custodian("npm:trusted-publisher/github"),
        provenance=Provenance("npm-trusted-publisher", issuer="github"),
    )
    assert ci.by_shared_ci
    d = judge(history(release("1.0.0", 0, maintainers=["alice"]), ci), "1.1.0")
    assert rules(d)["custody.new-publisher"] is Severity.MEDIUM
    assert d.action is Action.HOLD


# -- --as-of and versions unpublished later ----------------------------------------------------


def _unpublished(version: str, day: float) -> Release:
    r = release(version, day)
    return Release(r.ecosystem, r.name, version, published_at=r.published_at, unpublished=True)


def test_a_version_unpublished_later_is_no_baseline_as_of_before() -> None:
    """``as_of`` shows a version unpublished later as published, with nothing but its number:
    it must not become the baseline (its approval notwithstanding), nor count as a release
    without provenance."""
    approved = parse_trust_file(
        '[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
        '[[approved."npm:pkg"]]\nversion = "1.0.1"\nby = "x"\nreason = "r"\n'
    )
    h = history(
        release("1.0.0", 0, maintainers=["alice"]),
        _unpublished("1.0.1", 10),
        release("1.0.2", 20, maintainers=["alice", "bob"]),
    )
    d = judge(h.as_of(LATER), "1.0.2", trust=approved)
    assert d.from_version == "1.0.0"
    assert "custody.new-maintainer" in rules(d)
    signed = history(
        _signed("1.0.0", 0), _unpublished("1.0.1", 10), release("1.0.2", 200, maintainers=["alice"])
    )
    assert rules(judge(signed.as_of(LATER), "1.0.2"))["custody.provenance-downgrade"] is (
        Severity.HIGH
    )


def test_a_newcomer_promoted_later_is_still_new() -> None:
    """mallory arrives as Maintainer between two looks, is promoted to Owner before the next,
    then publishes: the promotion must not hide that she is new."""
    obs = [
        _obs("alice", "Owner", LOOK1, LOOK3),
        _obs("mallory", "Maintainer", LOOK2, LOOK2, gone=LOOK3),
        _obs("mallory", "Owner", LOOK3, LOOK3),
    ]
    late = msgspec.structs.replace(_pypi_history().releases[1], published_at=LOOK3)
    h = msgspec.structs.replace(_pypi_history(), releases=(_pypi_history().releases[0], late))
    d = judge_release(
        locked("1.0.1", ecosystem=PYPI), h, TRUST_PYPI, observations=obs, now=LOOK3
    ).decision
    finding = next(f for f in d.findings if f.rule == "custody.new-maintainer")
    assert finding.evidence["maintainer"] == "pypi:user/mallory"
    assert finding.evidence["first_seen"] == LOOK2.isoformat().replace("+00:00", "Z")
    assert d.action is Action.HOLD


def test_a_release_with_neither_publisher_nor_maintainers_is_held() -> None:
    """Both custody records stripped where earlier releases had them: nothing is left to judge
    its custody by, so it is held (medium), not merely noted."""
    h = history(
        release("1.0.0", 0, maintainers=["alice"]),
        release("1.0.1", 10, None, maintainers=None),
    )
    d = judge(h, "1.0.1")
    assert rules(d)["custody.unknown-publisher"] is Severity.MEDIUM
    assert d.action is Action.HOLD


def test_a_release_without_a_publish_time_is_not_past_the_cooldown() -> None:
    trust = parse_trust_file(
        '[policy]\ncooldown = "2d"\n[[trusted."npm:pkg"]]\ncustodian = "npm:user/alice"\n'
    )
    undated = msgspec.structs.replace(release("1.0.1", 10), published_at=None)
    d = judge(history(release("1.0.0", 0), undated), "1.0.1", trust=trust)
    assert rules(d) == {"release.too-new": Severity.MEDIUM}
    # a document with no usable time at all (a mirror rewriting them) is left alone
    bare = msgspec.structs.replace(release("1.0.0", 0), published_at=None)
    assert rules(judge(history(bare, undated), "1.0.1", trust=trust)) == {}


def test_a_dependency_re_pointed_at_a_url_is_held() -> None:
    """A trusted account's patch release keeps its dependency names but takes one from a URL
    tarball: the names alone showed nothing new."""
    h = history(
        release("1.0.0", 0, maintainers=["alice"], deps={"ms": "^2.0.0"}),
        release("1.0.1", 10, maintainers=["alice"], deps={"ms": "https://evil.invalid/ms.tgz"}),
    )
    d = judge(h, "1.0.1")
    finding = next(f for f in d.findings if f.rule == "deps.added-in-patch")
    assert finding.severity is Severity.MEDIUM and d.action is Action.HOLD
    assert finding.evidence["repointed"] == [
        {"name": "ms", "spec": "https://evil.invalid/ms.tgz", "was": "^2.0.0"}
    ]


def test_what_counts_as_off_the_registry() -> None:
    from custody.signals.deps import off_registry

    npm, pypi = Ecosystem.NPM, Ecosystem.PYPI
    assert not any(off_registry(npm, s) for s in ("^1.0.0", "1.x", "*", "npm:foo@1", "~1.2"))
    assert all(
        off_registry(npm, s)
        for s in ("git+https://x/y.git", "github:a/b", "a/b#v1", "https://x/y.tgz", "file:../x")
    )
    assert not off_registry(pypi, ">=1.0")
    assert off_registry(pypi, "@ https://x/y.whl") and off_registry(pypi, "[s3]@ https://x/y.whl")
