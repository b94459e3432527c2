"""Evaluating trust: date windows, globs, workflow binding, numeric ids, approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from trust_examples import EXAMPLE

from custody.model import Custodian
from custody.policy import DEFAULT_POLICY
from custody.trust import EMPTY_TRUST, ApprovalEntry, TrustedEntry, TrustFile, parse_trust_file


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def example() -> TrustFile:
    return parse_trust_file(EXAMPLE)


@pytest.mark.parametrize(
    ("at", "valid"),
    [
        (_utc(2011, 5, 31, 23, 59, 59), False),
        (_utc(2011, 6, 1), True),  # since is inclusive: the whole first day
        (_utc(2015, 1, 1), True),
        (_utc(2018, 9, 1, 23, 59, 59, 999999), True),  # until is inclusive: the whole last day
        (_utc(2018, 9, 2), False),
        (datetime(2018, 9, 1, 12), True),  # naive: taken as UTC
        (datetime(2018, 9, 2, 1, tzinfo=UTC).astimezone(), False),  # any zone compares in UTC
    ],
)
def test_date_windows_are_inclusive(example: TrustFile, at: datetime, valid: bool) -> None:
    dominic = Custodian.npm_user("dominictarr")
    entries = example.trusted_for("npm:event-stream", at)
    assert any(e.custodian == "npm:user/dominictarr" for e in entries) is valid
    assert (example.trusting("npm:event-stream", dominic, at) is not None) is valid


def test_datetime_bounds_are_inclusive() -> None:
    trust = parse_trust_file(
        '[[trusted."npm:a"]]\ncustodian = "npm:user/a"\n'
        "since = 2020-01-01T10:00:00Z\nuntil = 2020-01-01T12:00:00Z\n"
    )
    a = Custodian.npm_user("a")
    assert trust.trusting("npm:a", a, _utc(2020, 1, 1, 10)) is not None
    assert trust.trusting("npm:a", a, _utc(2020, 1, 1, 12)) is not None
    assert trust.trusting("npm:a", a, _utc(2020, 1, 1, 12, 0, 1)) is None
    assert trust.trusting("npm:a", a, _utc(2020, 1, 1, 9, 59, 59)) is None


def test_no_time_means_now(example: TrustFile) -> None:
    # dominictarr's window ended in 2018; the organisation's own repositories never end
    assert [e.custodian for e in example.trusted_for("npm:event-stream")] == ["github:my-org/*"]
    future = TrustFile(
        None,
        trusted={
            "npm:a": (TrustedEntry("npm:user/a", since=datetime.now(UTC) + timedelta(days=1)),)
        },
    )
    assert future.trusted_for("npm:a") == ()


def test_package_entries_come_before_everywhere_entries(example: TrustFile) -> None:
    entries = example.trusted_for("npm:event-stream", _utc(2015, 1, 1))
    assert [e.custodian for e in entries] == ["npm:user/dominictarr", "github:my-org/*"]
    assert [e.custodian for e in example.trusted_for("npm:other", _utc(2015, 1, 1))] == [
        "github:my-org/*"
    ]


@pytest.mark.parametrize(
    ("custodian", "trusted"),
    [
        ("github:my-org/tool", True),
        ("github:My-Org/Tool", True),  # GitHub names compare without case
        ("github:my-org-evil/tool", False),
        ("github:other/my-org", False),
        ("github:my-org", False),
        ("npm:user/my-org", False),
    ],
)
def test_glob_patterns(example: TrustFile, custodian: str, trusted: bool) -> None:
    found = example.trusting("npm:anything", Custodian(custodian), _utc(2024, 1, 1))
    assert (found is not None) is trusted


def test_exact_custodian_compares_without_case(example: TrustFile) -> None:
    found = example.trusting(
        "npm:event-stream", Custodian("npm:user/DominicTarr"), _utc(2015, 1, 1)
    )
    assert found is not None


WORKFLOW_FILE = """\
[[trusted."npm:tool"]]
custodian = "github:acme/tool:.github/workflows/release.yml"
numeric-id = "4242"

[[trusted."npm:any-workflow"]]
custodian = "github:acme/tool"

[[trusted."npm:any-yml"]]
custodian = "github:acme/tool:.github/workflows/*.yml"
"""


@pytest.mark.parametrize(
    ("package", "custodian", "workflow", "trusted"),
    [
        ("npm:tool", "github:acme/tool", ".github/workflows/release.yml", True),
        ("npm:tool", "github:acme/tool", "./.github/workflows/release.yml", True),
        ("npm:tool", "github:acme/tool", ".github/workflows/release.yml@refs/tags/v1", True),
        ("npm:tool", "github:acme/tool:.github/workflows/release.yml", None, True),
        ("npm:tool", "github:acme/tool", ".github/workflows/other.yml", False),
        ("npm:tool", "github:acme/tool", ".github/workflows/Release.yml", False),
        ("npm:tool", "github:acme/tool", None, False),  # workflow unknown: not trusted
        ("npm:tool", "github:acme/other", ".github/workflows/release.yml", False),
        ("npm:any-workflow", "github:acme/tool", ".github/workflows/x.yml", True),
        ("npm:any-workflow", "github:acme/tool", None, True),
        ("npm:any-workflow", "github:acme/tool:.github/workflows/x.yml", None, True),
        ("npm:any-yml", "github:acme/tool", ".github/workflows/publish.yml", True),
        ("npm:any-yml", "github:acme/tool", ".github/workflows/publish.yaml", False),
    ],
)
def test_workflow_binding(
    package: str, custodian: str, workflow: str | None, trusted: bool
) -> None:
    trust = parse_trust_file(WORKFLOW_FILE)
    found = trust.trusting(package, Custodian(custodian), _utc(2024, 1, 1), workflow=workflow)
    assert (found is not None) is trusted


@pytest.mark.parametrize(
    ("numeric_id", "trusted"),
    [("4242", True), (None, True), ("9999", False)],  # 9999: deleted and re-registered
)
def test_numeric_id(numeric_id: str | None, trusted: bool) -> None:
    trust = parse_trust_file(WORKFLOW_FILE)
    custodian = Custodian("github:acme/tool", numeric_id)
    found = trust.trusting(
        "npm:tool", custodian, _utc(2024, 1, 1), workflow=".github/workflows/release.yml"
    )
    assert (found is not None) is trusted


def test_approvals(example: TrustFile) -> None:
    approval = example.approval("npm:event-stream", "4.0.1")
    assert approval == ApprovalEntry(
        "4.0.1",
        "alice@example.com",
        "read the diff: the flatmap-stream dependency is gone",
        _utc(2018, 11, 27),
    )
    assert example.approval("npm:event-stream", "3.3.6") is None
    assert example.approval("npm:event-stream", "v4.0.1") is None  # npm versions are exact
    assert example.approval("npm:flatmap-stream", "4.0.1") is None
    assert example.approval("not a key", "4.0.1") is None


def test_pypi_versions_compare_by_pep_440() -> None:
    trust = parse_trust_file(
        '[[approved."pypi:ultralytics"]]\nversion = "8.3.41"\nby = "me"\nreason = "ok"\n'
        '[[approved."pypi:ultralytics"]]\nversion = "1.0"\nby = "me"\nreason = "ok"\n'
    )
    assert trust.approval("pypi:Ultralytics", "8.3.41") is not None
    assert trust.approval("pypi:ultralytics", "1.0.0") is not None
    assert trust.approval("pypi:ultralytics", "8.3.42") is None


def test_knows(example: TrustFile) -> None:
    assert example.knows("npm:event-stream")
    assert not example.knows("npm:flatmap-stream")  # everywhere entries do not count
    approvals_only = parse_trust_file(
        '[[approved."npm:a"]]\nversion = "1.0.0"\nby = "me"\nreason = "ok"\n'
    )
    assert approvals_only.knows("npm:a")
    assert not parse_trust_file('[trusted]\n"npm:a" = []\n').knows("npm:a")


def test_empty_trust() -> None:
    assert EMPTY_TRUST.path is None
    assert EMPTY_TRUST.policy == DEFAULT_POLICY
    assert not EMPTY_TRUST.knows("npm:a")
    assert EMPTY_TRUST.trusting("npm:a", Custodian.npm_user("a")) is None
    assert EMPTY_TRUST.approval("npm:a", "1.0.0") is None


def test_keys_are_normalised_when_built_directly() -> None:
    trust = TrustFile(
        None,
        trusted={
            "pypi:Django": (TrustedEntry("pypi:user/a"),),
            "pypi:django": (TrustedEntry("pypi:user/b"),),
        },
    )
    assert [e.custodian for e in trust.trusted["pypi:django"]] == ["pypi:user/a", "pypi:user/b"]
    with pytest.raises(TypeError):
        trust.trusted["pypi:x"] = ()  # type: ignore[index]


def test_entry_properties() -> None:
    entry = TrustedEntry("github:acme/tool:.github/workflows/release.yml")
    assert entry.identity == "github:acme/tool"
    assert entry.workflow == ".github/workflows/release.yml"
    assert TrustedEntry("npm:user/a").workflow is None


def test_trusted_publisher_entries() -> None:
    """``npm:trusted-publisher/ID``: releases of the package npm trusted publishing published
    from that CI system, and nothing else."""
    trust = parse_trust_file(
        '[[trusted."npm:a"]]\ncustodian = "npm:trusted-publisher/github"\nsince = 2025-01-01\n'
    )
    [entry] = trust.trusted["npm:a"]
    at = _utc(2025, 6, 1)
    assert trust.trusting("npm:a", Custodian("npm:trusted-publisher/github"), at) == entry
    assert trust.trusting("npm:a", Custodian("npm:trusted-publisher/GitHub"), at) == entry
    assert trust.trusting("npm:a", Custodian("npm:trusted-publisher/gitlab"), at) is None
    assert trust.trusting("npm:a", Custodian.npm_user("github"), at) is None
    assert trust.trusting("npm:b", Custodian("npm:trusted-publisher/github"), at) is None
    before = _utc(2024, 12, 31)
    assert trust.trusting("npm:a", Custodian("npm:trusted-publisher/github"), before) is None
