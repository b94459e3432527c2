"""OSV record parsing, validation and version matching."""

from __future__ import annotations

import pytest

from custody.model import Ecosystem
from custody.osv import OsvError, OsvEvent, OsvRange, in_range, parse_record

from .osv_records import ALL, EVENT_STREAM, FLATMAP, TYPOSQUAT, mal


def test_a_record_with_versions_matches_exactly_those() -> None:
    [record] = parse_record(EVENT_STREAM)
    assert (record.id, record.ecosystem, record.package) == (
        "MAL-2018-0001",
        Ecosystem.NPM,
        "event-stream",
    )
    assert record.versions == ("3.3.6",) and not record.all_versions
    assert record.matches_exactly("3.3.6") == "version"
    assert record.matches_exactly("3.3.5") is None
    assert record.matches_exactly("4.0.0") is None


def test_versions_win_over_the_introduced_zero_range_the_tooling_adds() -> None:
    doc = mal("MAL-2025-1", "npm", "debug", versions=["4.4.2"], ranges=ALL)
    [record] = parse_record(doc)
    assert record.versions == ("4.4.2",) and not record.all_versions and record.ranges == ()
    assert record.matches_exactly("4.4.1") is None


def test_unbounded_ranges_cover_every_version() -> None:
    [record] = parse_record(FLATMAP)
    assert record.all_versions and record.versions == () and record.ranges == ()
    [pypi] = parse_record(TYPOSQUAT)
    assert pypi.all_versions and pypi.ecosystem is Ecosystem.PYPI
    no_ranges = mal("MAL-2024-9", "npm", "x")  # neither versions nor ranges: everything
    assert parse_record(no_ranges)[0].all_versions


@pytest.mark.parametrize(
    ("events", "inside", "outside"),
    [
        ([{"introduced": "1.0.0"}, {"fixed": "1.0.5"}], ["1.0.0", "1.0.4"], ["0.9.9", "1.0.5"]),
        ([{"introduced": "0"}, {"fixed": "2.0.0"}], ["0.0.1", "1.9.9"], ["2.0.0", "3.0.0"]),
        ([{"introduced": "1.2.0"}, {"last_affected": "1.2.3"}], ["1.2.3"], ["1.2.4", "1.1.0"]),
        ([{"introduced": "2.0.0"}], ["2.0.0", "9.0.0"], ["1.9.9"]),
        (
            [{"introduced": "1.0.0"}, {"fixed": "1.1.0"}, {"introduced": "2.0.0"}],
            ["1.0.1", "2.5.0"],
            ["1.1.0", "1.5.0"],
        ),
    ],
)
def test_semver_ranges(events: list[dict[str, str]], inside: list[str], outside: list[str]) -> None:
    [record] = parse_record(
        mal("MAL-2024-1", "npm", "pkg", ranges=[{"type": "SEMVER", "events": events}])
    )
    assert not record.all_versions
    for v in inside:
        assert record.matches_exactly(v) == "range", v
    for v in outside:
        assert record.matches_exactly(v) is None, v


def test_pypi_ranges_and_versions_use_pep_440_and_normalised_names() -> None:
    doc = mal(
        "MAL-2024-2",
        "PyPI",
        "Evil_Pkg.Name",
        versions=["1.0"],
        ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.0.post1"}]}],
    )
    [record] = parse_record(doc)
    assert record.package == "evil-pkg-name"
    assert record.matches_exactly("1.0.0") == "version"  # PEP 440: 1.0 == 1.0.0
    assert record.matches_exactly("2.0") is None  # versions listed: ranges are not used
    ranged = parse_record(
        mal(
            "MAL-2024-3",
            "PyPI",
            "x",
            ranges=[
                {"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.0.post1"}]}
            ],
        )
    )[0]
    assert ranged.matches_exactly("2.0.0") == "range"
    assert ranged.matches_exactly("2.0.post1") is None
    assert not in_range(Ecosystem.PYPI, "not a version", ranged.ranges[0])


def test_other_ecosystems_are_left_out_and_git_ranges_never_match() -> None:
    assert parse_record(mal("MAL-2024-4", "crates.io", "evil")) == []
    git = mal(
        "MAL-2024-5",
        "npm",
        "g",
        ranges=[
            {"type": "GIT", "repo": "https://example.invalid/r", "events": [{"introduced": "abc"}]}
        ],
    )
    [record] = parse_record(git)
    assert not record.all_versions and record.matches_exactly("1.0.0") is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"modified": "2024-01-01T00:00:00Z"}, "missing 'id'"),
        ({"id": "MAL-1"}, "'modified'"),
        ({"id": "MAL-1", "modified": "yesterday"}, "RFC 3339"),
        ({"id": "MAL-1", "modified": "2024-01-01T00:00:00Z", "affected": {}}, "must be a list"),
        (
            {"id": "MAL-1", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {}}]},
            "ecosystem and a name",
        ),
        (mal("MAL-1", "npm", "x", versions=["1.0.0", 3]), "versions"),  # type: ignore[list-item]
        (mal("MAL-1", "npm", "x", ranges=[{"type": "SEMVER", "events": []}]), "events"),
        (mal("MAL-1", "npm", "x", ranges=[{"type": "RANGE", "events": []}]), "type"),
        (
            mal("MAL-1", "npm", "x", ranges=[{"type": "SEMVER", "events": [{"fixed": "1"}]}]),
            "no introduced",
        ),
        (
            mal("MAL-1", "npm", "x", ranges=[{"type": "SEMVER", "events": [{"broken": "1"}]}]),
            "expected one of",
        ),
    ],
)
def test_invalid_records_are_refused(doc: object, message: str) -> None:
    with pytest.raises(OsvError, match=message):
        parse_record(doc)


def test_events_are_evaluated_in_version_order_not_file_order() -> None:
    rng = OsvRange("SEMVER", (OsvEvent("fixed", "1.5.0"), OsvEvent("introduced", "1.0.0")))
    assert in_range(Ecosystem.NPM, "1.2.0", rng)
    assert not in_range(Ecosystem.NPM, "1.6.0", rng)
