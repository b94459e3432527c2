"""Custody decisions over verified identities: releases 1.0.0-1.0.4 carry provenance verified
from one repository (the real GitHub attestation), and 1.0.5 changes it.

The identities come out of real verifications, so ``custody.provenance-source-changed``
compares what certificates say (with numeric repository ids), not what a publisher typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from custody.judge import judge_release
from custody.model import (
    Action,
    Custodian,
    Ecosystem,
    LockedDependency,
    PackageHistory,
    Provenance,
    Release,
)
from custody.provenance import Status, verify_pep740
from custody.trust import parse_trust_file
from tests.provenance.assets import (
    GITHUB_REPO_ID,
    GITHUB_SOURCE,
    GITLAB_SDIST,
    Asset,
    gitlab_provenance,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=400)
ALICE = Custodian.npm_user("alice")
BOB = Custodian.npm_user("bob")
TRUST = parse_trust_file(
    f"""
[[trusted."npm:pkg"]]
custodian = "npm:user/alice"
since = 2024-12-01

[[trusted."npm:pkg"]]
custodian = "{GITHUB_SOURCE}"
numeric-id = "{GITHUB_REPO_ID}"
since = 2024-12-01
"""
)


@pytest.fixture(scope="module")
def github_provenance(pa_sdist: Asset) -> Provenance:
    release = pa_sdist.release("pypi-attestations", "0.0.19")
    check = verify_pep740(pa_sdist.doc(".provenance"), release, release.artifacts[0])
    assert check.status is Status.VERIFIED and check.provenance is not None
    return msgspec.structs.replace(check.provenance, kind="npm-attestation")


@pytest.fixture(scope="module")
def gitlab_identity(assets: Path) -> Provenance:
    asset = Asset(assets / GITLAB_SDIST)
    release = asset.release("gitlab-oidc-project", "0.0.3")
    check = verify_pep740(gitlab_provenance(assets), release, release.artifacts[0])
    assert check.status is Status.VERIFIED and check.provenance is not None
    return msgspec.structs.replace(check.provenance, kind="npm-attestation")


def history(prov: Provenance, last: Release) -> PackageHistory:
    team = frozenset({ALICE, BOB})
    earlier = tuple(
        Release(
            Ecosystem.NPM, "pkg", f"1.0.{i}",
            published_at=START + timedelta(days=30 * i),
            publisher=ALICE,
            maintainers=team if i >= 3 else frozenset({ALICE}),
            provenance=prov,
            dependencies=(),
        )
        for i in range(5)
    )  # fmt: skip
    return PackageHistory(Ecosystem.NPM, "pkg", "http://registry.invalid/", NOW, (*earlier, last))


def release_105(publisher: Custodian, prov: Provenance | None) -> Release:
    return Release(
        Ecosystem.NPM,
        "pkg",
        "1.0.5",
        published_at=START + timedelta(days=150),
        publisher=publisher,
        maintainers=frozenset({ALICE, BOB}),
        provenance=prov,
        dependencies=(),
    )


def judge(h: PackageHistory) -> tuple[Action, set[str]]:
    dep = LockedDependency(Ecosystem.NPM, "pkg", "1.0.5", direct=True)
    judged = judge_release(dep, h, TRUST, now=NOW)
    return judged.decision.action, {f.rule for f in judged.decision.findings}


def test_release_without_provenance_after_verified_ones_is_held(
    github_provenance: Provenance,
) -> None:
    action, rules = judge(history(github_provenance, release_105(ALICE, None)))
    assert action is Action.HOLD
    assert "custody.provenance-downgrade" in rules


def test_a_stolen_tokens_second_release_is_held_too(github_provenance: Provenance) -> None:
    """The nx pattern with a token that publishes twice: the lockfile skips 1.0.5 and locks
    1.0.6, both by alice's account and without provenance. Still a downgrade against 1.0.4,
    the newest release with verified provenance."""
    h = history(github_provenance, release_105(ALICE, None))
    second = msgspec.structs.replace(
        release_105(ALICE, None), version="1.0.6", published_at=START + timedelta(days=151)
    )
    h = msgspec.structs.replace(h, releases=(*h.releases, second))
    dep = LockedDependency(Ecosystem.NPM, "pkg", "1.0.6", direct=True)
    decision = judge_release(dep, h, TRUST, now=NOW).decision
    assert decision.action is Action.HOLD
    [finding] = [f for f in decision.findings if f.rule == "custody.provenance-downgrade"]
    assert finding.evidence["previous_version"] == "1.0.4"
    assert finding.evidence["previous_source"] == GITHUB_SOURCE


def test_provenance_from_another_repository_is_held(
    github_provenance: Provenance, gitlab_identity: Provenance
) -> None:
    action, rules = judge(history(github_provenance, release_105(ALICE, gitlab_identity)))
    assert action is Action.HOLD
    assert "custody.provenance-source-changed" in rules


def test_same_repository_name_with_another_id_is_held(github_provenance: Provenance) -> None:
    """A repository deleted and re-registered under the same name has a new numeric id."""
    assert github_provenance.source is not None
    impostor = msgspec.structs.replace(
        github_provenance, source=Custodian(github_provenance.source.id, numeric_id="999")
    )
    action, rules = judge(history(github_provenance, release_105(ALICE, impostor)))
    assert action is Action.HOLD
    assert "custody.provenance-source-changed" in rules


def test_new_publisher_building_from_the_same_repository_is_not_held(
    github_provenance: Provenance,
) -> None:
    """A co-maintainer (listed since 1.0.3) publishes for the first time, through the same
    verified repository: a weak signal under the default policy."""
    action, rules = judge(history(github_provenance, release_105(BOB, github_provenance)))
    assert action is Action.ALLOW, rules
    assert "custody.provenance-source-changed" not in rules


def test_failed_verification_blocks(github_provenance: Provenance) -> None:
    from custody.signals.provenance import provenance_invalid

    failed = Provenance(kind="npm-attestation", verified=False)
    dep = LockedDependency(Ecosystem.NPM, "pkg", "1.0.5", direct=True)
    h = history(github_provenance, release_105(ALICE, failed))
    judged = judge_release(dep, h, TRUST, now=NOW, signals=(provenance_invalid,))
    assert judged.decision.action is Action.BLOCK
    assert [f.rule for f in judged.decision.findings] == ["provenance.invalid"]
