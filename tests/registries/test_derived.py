"""The derived-history blob (msgspec msgpack) round-trips every type PackageHistory holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from custody.model import (
    Artifact,
    Custodian,
    DeclaredDependency,
    Ecosystem,
    OwnerRole,
    PackageHistory,
    Provenance,
    Release,
)
from custody.registries.derived import decode_history, encode_history
from custody.registries.npm_packument import NPM_PARSER_VERSION, parse_packument

PACKUMENTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "npm-packuments"


def rich_history() -> PackageHistory:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    alice = Custodian.npm_user("alice")
    release = Release(
        ecosystem=Ecosystem.PYPI,
        name="demo",
        version="1.0",
        published_at=when,
        publisher=alice,
        approver=Custodian.npm_user("bob"),
        maintainers=frozenset({alice, Custodian("github:o/r", numeric_id="123")}),
        provenance=Provenance(
            "pep740", verified=True, source=Custodian("github:o/r", "123"), workflow="w.yml"
        ),
        artifacts=(
            Artifact(
                "demo-1.0.tar.gz",
                url="http://127.0.0.1:1/demo-1.0.tar.gz",
                digests={"sha256": "ab" * 32},
                size=10,
                kind="sdist",
                uploaded_at=when,
                uploader=alice,
                yanked=True,
                has_metadata=True,
            ),
        ),
        dependencies=(DeclaredDependency("x", ">=1", "requires-dist", 'extra == "a"'),),
        install_scripts={"postinstall": "node x.js"},
        repository="https://github.com/o/r",
        git_head="abc",
        deprecated="old",
        yanked=True,
        yanked_reason="bad",
        unpublished=False,
    )
    return PackageHistory(
        ecosystem=Ecosystem.PYPI,
        name="demo",
        registry="http://127.0.0.1:1/simple/",
        fetched_at=datetime.now(UTC),
        releases=(release, Release(Ecosystem.PYPI, "demo", "2.0", unpublished=True)),
        current_owners=(OwnerRole(Custodian("pypi:org/o"), "organization"),),
        organization="o",
        dist_tags={"latest": "1.0"},
        deprecated=None,
        funding=("https://funding.example/",),
        repository="https://github.com/o/r",
    )


def test_round_trip_keeps_every_type() -> None:
    history = rich_history()
    decoded = decode_history(encode_history(history), "v1", "v1")
    assert decoded == history
    assert decoded is not None
    release = decoded.releases[0]
    assert isinstance(decoded.ecosystem, Ecosystem)
    assert isinstance(release.maintainers, frozenset)
    assert release.published_at is not None and release.published_at.tzinfo is not None
    assert release.published_at.utcoffset() == timedelta(0)


def test_offsets_come_back_as_the_same_instant() -> None:
    tz = timezone(timedelta(hours=2))
    history = PackageHistory(Ecosystem.NPM, "x", "r", datetime(2024, 1, 1, 12, tzinfo=tz))
    decoded = decode_history(encode_history(history), "v", "v")
    assert decoded is not None and decoded.fetched_at == history.fetched_at


def test_other_parser_versions_and_garbage_are_ignored() -> None:
    blob = encode_history(rich_history())
    assert decode_history(blob, "v1", "v2") is None
    assert decode_history(None, None, "v1") is None
    assert decode_history(b"\x00garbage", "v1", "v1") is None
    assert decode_history(blob[:20], "v1", "v1") is None


@pytest.mark.skipif(not PACKUMENTS.is_dir(), reason="shared fixtures absent")
def test_round_trip_of_a_real_history() -> None:
    doc = orjson.loads((PACKUMENTS / "node-forge.json").read_bytes())
    history = parse_packument(
        doc, name="node-forge", registry="http://127.0.0.1:1/", fetched_at=datetime.now(UTC)
    )
    blob = encode_history(history)
    assert decode_history(blob, NPM_PARSER_VERSION, NPM_PARSER_VERSION) == history
