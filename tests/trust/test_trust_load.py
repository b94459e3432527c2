"""Reading custody.toml: the full example, defaults, and every error with its line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from trust_examples import EXAMPLE

from custody.errors import TrustFileError
from custody.model import Severity
from custody.policy import DEFAULT_POLICY, Tier
from custody.trust import (
    EMPTY_TRUST,
    find_trust_file,
    format_duration,
    load_trust_file,
    parse_duration,
    parse_trust_file,
)


def test_full_example(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    path.write_text(EXAMPLE)
    trust = load_trust_file(path)
    assert trust.path == path
    assert trust.policy.cooldown == timedelta(hours=48)
    assert trust.policy.new_packages == "review"
    assert trust.policy.tiers == DEFAULT_POLICY.tiers
    assert [e.custodian for e in trust.trusted_everywhere] == ["github:my-org/*"]
    (entry,) = trust.trusted["npm:event-stream"]
    assert entry.custodian == "npm:user/dominictarr"
    assert entry.since == datetime(2011, 6, 1, tzinfo=UTC)
    assert entry.until == datetime(2018, 9, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert entry.note == "baseline written by custody init on 2018-09-01"
    assert entry.numeric_id is None
    (approval,) = trust.approved["npm:event-stream"]
    assert approval.version == "4.0.1"
    assert approval.by == "alice@example.com"
    assert approval.reason.startswith("read the diff")
    assert approval.at == datetime(2018, 11, 27, tzinfo=UTC)


def test_empty_file_is_the_default_policy() -> None:
    trust = parse_trust_file("# nothing yet\n")
    assert trust.policy == DEFAULT_POLICY
    assert trust == EMPTY_TRUST


def test_partial_policy_keeps_other_defaults() -> None:
    trust = parse_trust_file('[policy]\ncooldown = "0"\n')
    assert trust.policy.cooldown == timedelta(0)
    assert trust.policy.new_packages == DEFAULT_POLICY.new_packages
    assert trust.policy.tiers == DEFAULT_POLICY.tiers


def test_tiers_merge_by_name_and_sort_by_fan_in() -> None:
    trust = parse_trust_file(
        "[policy]\nnew-packages = 'trust-on-first-use'\n"
        "[policy.tiers.high]\nhold-at = 'high'\n"
        "[policy.tiers.internal]\nmin-fan-in = 50\non-custody-change = 'warn'\n"
    )
    assert trust.policy.new_packages == "trust-on-first-use"
    assert [t.name for t in trust.policy.tiers] == ["internal", "critical", "high", "normal"]
    assert trust.policy.tiers[0] == Tier("internal", 50, Severity.MEDIUM, "warn")
    assert trust.policy.tiers[2] == Tier("high", 5, Severity.HIGH, "review")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("48h", timedelta(hours=48)),
        ("30m", timedelta(minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(hours=36)),
        ("0h", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "48", "h", "48 h", "-1h", "1.5h", "48H", "3s", "1y", " 48h", "9999999999w"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [(timedelta(hours=48), "48h"), (timedelta(0), "0"), (timedelta(weeks=2), "2w")],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


# Each case: the text, the line the error must name, and a fragment of its message.
ERRORS = [
    ("[policy]\ncooldown = \n", 2, "not valid TOML"),
    ('[policy]\ncooldown = "48h\n', 2, "not valid TOML"),
    ("[policy]\n[policy]\n", 2, "not valid TOML"),
    ('a = "x"\n[[trusted."npm:a"]]\ncustodian = "npm:user/a"\n[[trusted."npm:a"]\n', 4, "TOML"),
    ('[policy]\ncooldown = "48h"\n\n[polcy]\nx = 1\n', 4, "unknown key 'polcy'"),
    ('[policy]\ncooldown = "48h"\ncooldwn = "1h"\n', 3, "did you mean 'cooldown'"),
    ('[policy]\n\ncooldown = "2 days"\n', 3, "not a duration"),
    ("[policy]\ncooldown = 48\n", 2, "must be a string"),
    ('[policy]\nnew-packages = "allow"\n', 2, "new-packages must be one of"),
    ('[policy.tiers.critical]\nmin-fan-in = 20\nhold-at = "severe"\n', 3, "hold-at must be"),
    ('[policy.tiers.critical]\non-custody-change = "block"\n', 2, "on-custody-change"),
    ("[policy.tiers.critical]\nmin-fan-in = -1\n", 2, "min-fan-in"),
    ('[policy.tiers.critical]\nmin-fan-in = "20"\n', 2, "min-fan-in"),
    ("[policy.tiers.critical]\nmin-fan-in = 20\nhold_at = 'low'\n", 3, "did you mean 'hold-at'"),
    ("[policy.tiers.mine]\nhold-at = 'low'\n", 1, "needs a min-fan-in"),
    ("[policy.tiers.critical]\nmin-fan-in = 5\n", 1, "both start at min-fan-in = 5"),
    ("[policy.tiers.normal]\nmin-fan-in = 1\n", 1, "no tier starts at min-fan-in = 0"),
    ("policy = 3\n", 1, "must be a table"),
    ('\n[[trusted."cargo:serde"]]\ncustodian = "npm:user/a"\n', 2, "unknown ecosystem 'cargo'"),
    ('[[trusted."event-stream"]]\ncustodian = "npm:user/a"\n', 1, "has no ecosystem"),
    ('[[approved."npm:event-stream@3.3.6"]]\nversion = "1"\n', 1, "names a version"),
    ('[[trusted."pypi:not a name"]]\ncustodian = "pypi:user/a"\n', 1, "not a valid PyPI"),
    ('[trusted."npm:a"]\ncustodian = "npm:user/a"\n', 1, "must be an array of tables"),
    ('[[trusted."npm:a"]]\ncustodian = "dominictarr"\n', 2, "has no namespace"),
    ('[[trusted."npm:a"]]\nnote = "x"\n\ncustodian = ":x"\n', 4, "has no namespace"),
    ('[[trusted."npm:a"]]\ncustodian = "gihub:o/r"\n', 2, "unknown custodian namespace"),
    ('[[trusted."npm:a"]]\nnote = "who?"\n', 1, "has no custodian"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:user/acme-*"\n', 2, "not allowed in an account"),
    ('[[trusted-everywhere]]\ncustodian = "github:*/tools"\n', 2, "not allowed in the owner"),
    ('[[trusted-everywhere]]\ncustodian = "github:my-org"\n', 2, "github:OWNER/REPO"),
    ('[[trusted-everywhere]]\ncustodian = "github:o/r?"\n', 2, "only wildcard"),
    ('[[trusted-everywhere]]\ncustodian = "github:o/r:release.yml"\n', 2, ".github/workflows"),
    ('[[trusted-everywhere]]\ncustodian = "npm:user/a:x"\n', 2, "not an account name"),
    ('[[trusted."npm:a"]]\ncustodian = "pypi:user/a"\n', 2, "cannot publish npm:a"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:trusted-publisher/*"\n', 2, "not allowed in a trust"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:trusted-publisher/"\n', 2, "trusted-publisher/ID"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:trusted-publisher/a/b"\n', 2, "letters, digits"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:trusted-publisher/GitHub Actions"\n', 2, "white"),
    ('[[trusted."pypi:a"]]\ncustodian = "pypi:trusted-publisher/github"\n', 2, "pypi:user/NAME"),
    ('[[trusted."pypi:a"]]\ncustodian = "npm:trusted-publisher/github"\n', 2, "cannot publish"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:bot/github"\n', 2, "npm:trusted-publisher/ID"),
    ("[[trusted-everywhere]]\ncustodian = 'npm:trusted-publisher/github'\n", 2, "everywhere"),
    (
        '[[trusted."npm:a"]]\ncustodian = "npm:trusted-publisher/github"\nnumeric-id = "1"\n',
        3,
        "repository",
    ),
    ('[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nsince = "2011-06-01"\n', 3, "without quotes"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nsince = 12:00:00\n', 3, "TOML date"),
    (
        '[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nsince = 2020-01-02\nuntil = 2020-01-01\n',
        4,
        "until is before since",
    ),
    ('[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nnte = "x"\n', 3, "did you mean 'note'"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nnote = 3\n', 3, "note must be a string"),
    ('[[trusted."npm:a"]]\ncustodian = "github:o/*"\nnumeric-id = "1"\n', 3, "pattern"),
    ('[[trusted."npm:a"]]\ncustodian = "github:o/r"\nnumeric-id = "12a"\n', 3, "number"),
    ('[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nnumeric-id = "12"\n', 3, "repository"),
    ('[[trusted."npm:a"]]\ncustodian = "github:o/r"\nnumeric-id = 1.5\n', 3, "numeric-id"),
    (
        '[[trusted."pypi:Django"]]\ncustodian = "pypi:user/a"\n'
        '[[trusted."pypi:django"]]\ncustodian = "pypi:user/b"\n',
        3,
        "same package",
    ),
    ('[[approved."npm:a"]]\nby = "me"\nreason = "ok"\n', 1, "has no version"),
    ('[[approved."npm:a"]]\nversion = "1.0.0"\nreason = "ok"\n', 1, "has no by"),
    ('[[approved."npm:a"]]\nversion = "1.0.0"\nby = "me"\n', 1, "has no reason"),
    ('[[approved."npm:a"]]\nversion = "1.0.0"\nby = "me"\nreason = "  "\n', 4, "has no reason"),
    ('[[approved."npm:a"]]\nversion = 1.0\nby = "me"\nreason = "ok"\n', 2, "quote the version"),
    ('[[approved."npm:a"]]\nversion = "^1.0"\nby = "me"\nreason = "ok"\n', 2, "not a version"),
    ('[[approved."npm:a"]]\nversion = "1"\nby = "me"\nreason = "ok"\nat = "today"\n', 5, "at"),
    ('[[approved."npm:a"]]\nversion = "1"\nby = "me"\nreason = "ok"\nwhy = "x"\n', 5, "'why'"),
    (
        '[[approved."pypi:a"]]\nversion = "1.0"\nby = "me"\nreason = "ok"\n\n'
        '[[approved."pypi:a"]]\nversion = "1.0.0"\nby = "me"\nreason = "ok"\n',
        7,
        "approved twice",
    ),
    (
        # the second of several approvals of one package lacks a reason: its header's line
        '[[approved."npm:a"]]\nversion = "1"\nby = "me"\nreason = "ok"\n\n'
        '[[trusted."npm:b"]]\ncustodian = "npm:user/b"\n\n'
        '[[approved."npm:a"]]\nversion = "2"\nby = "me"\n',
        9,
        "has no reason",
    ),
    ('trusted = { "npm:a" = [ { custodian = "x" } ] }\n', 1, "has no namespace"),
    ('[trusted]\n"npm:a" = [\n  { custodian = "npm:user/a" },\n  { custodian = "x" },\n]\n', 2, ""),
    ("unknown = 1\n", 1, "unknown key 'unknown'"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), ERRORS)
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "custody.toml"
    path.write_text(text)
    with pytest.raises(TrustFileError) as caught:
        load_trust_file(path)
    assert caught.value.path == str(path)
    assert caught.value.line == line, str(caught.value)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(TrustFileError) as caught:
        load_trust_file(tmp_path / "missing.toml")
    assert caught.value.line is None
    path = tmp_path / "custody.toml"
    path.write_bytes(b'[policy]\ncooldown = "48h"\nnew-packages = "\xff"\n')
    with pytest.raises(TrustFileError) as caught:
        load_trust_file(path)
    assert caught.value.line == 3
    assert "UTF-8" in str(caught.value)


def test_byte_order_mark_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    path.write_bytes(("\ufeff" + EXAMPLE.replace("\n", "\r\n")).encode())
    assert load_trust_file(path).knows("npm:event-stream")


def test_pypi_names_are_normalised() -> None:
    trust = parse_trust_file(
        '[[trusted."pypi:Django_REST.framework"]]\ncustodian = "pypi:user/tom"\n'
        '[[approved."PyPI:Requests"]]\nversion = "2.0"\nby = "me"\nreason = "ok"\n'
    )
    assert set(trust.trusted) == {"pypi:django-rest-framework"}
    assert set(trust.approved) == {"pypi:requests"}
    assert trust.knows("pypi:django-rest-framework")
    assert trust.knows("pypi:Django.Rest_Framework")
    assert trust.approval("pypi:REQUESTS", "2.0.0") is not None
    # npm names are kept as written
    trust = parse_trust_file('[[trusted."npm:JSONStream"]]\ncustodian = "npm:user/dominictarr"\n')
    assert trust.knows("npm:JSONStream")
    assert not trust.knows("npm:jsonstream")


def test_numeric_id_may_be_an_integer() -> None:
    trust = parse_trust_file('[[trusted."npm:a"]]\ncustodian = "github:o/r"\nnumeric-id = 123\n')
    assert trust.trusted["npm:a"][0].numeric_id == "123"


def test_datetimes_are_utc() -> None:
    trust = parse_trust_file(
        '[[trusted."npm:a"]]\ncustodian = "npm:user/a"\n'
        "since = 2020-01-01T10:00:00+02:00\nuntil = 2020-02-01T00:00:00\n"
    )
    (entry,) = trust.trusted["npm:a"]
    assert entry.since == datetime(2020, 1, 1, 8, tzinfo=UTC)
    assert entry.until == datetime(2020, 2, 1, tzinfo=UTC)


def test_find_trust_file(tmp_path: Path) -> None:
    (tmp_path / "custody.toml").write_text("")
    repo = tmp_path / "repo"
    nested = repo / "packages" / "web"
    nested.mkdir(parents=True)
    (repo / ".git").mkdir()
    # above the git root: not found
    assert find_trust_file(nested) is None
    (repo / "custody.toml").write_text("")
    assert find_trust_file(nested) == (repo / "custody.toml").resolve()
    lockfile = nested / "package-lock.json"
    lockfile.write_text("{}")
    assert find_trust_file(lockfile) == (repo / "custody.toml").resolve()
    (nested / "custody.toml").write_text("")
    assert find_trust_file(nested) == (nested / "custody.toml").resolve()
    # outside any git work tree the search goes up to the root
    lone = tmp_path / "lone" / "deep"
    lone.mkdir(parents=True)
    assert find_trust_file(lone) == (tmp_path / "custody.toml").resolve()
