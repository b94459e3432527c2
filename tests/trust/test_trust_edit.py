"""Editing custody.toml: comments and layout survive, entries land in a stable order."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from trust_examples import EXAMPLE

from custody.errors import TrustFileError
from custody.model import Custodian, Severity
from custody.trust import (
    NEW_FILE_HEADER,
    TrustedEntry,
    TrustFileEditor,
    load_trust_file,
    parse_trust_file,
    write_baseline,
)

COMMENTS = [line[line.index("#") :] for line in EXAMPLE.splitlines() if "#" in line]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "custody.toml"
    p.write_text(EXAMPLE)
    return p


def _comments_kept(text: str) -> None:
    for comment in COMMENTS:
        assert comment in text, comment


def test_every_edit_keeps_the_comments(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    assert editor.add_trusted("npm:event-stream", "npm:user/right9ctrl", since=date(2018, 9, 1))
    assert editor.add_trusted("npm:aaa", "npm:user/a")
    assert editor.add_trusted_everywhere("npm:user/my-bot")
    assert not editor.add_approval("npm:event-stream", "4.0.1", "bob@example.com", "checked")
    assert editor.add_approval("npm:zzz", "1.0.0", "bob@example.com", "checked")
    assert editor.set_policy("cooldown", "24h")
    assert editor.set_policy("tiers.critical.hold-at", Severity.LOW)
    assert editor.set_policy("tiers.high.min-fan-in", 10)
    assert editor.remove_trusted("npm:aaa", "npm:user/a")
    editor.save()
    text = path.read_text()
    _comments_kept(text)
    # a replaced value keeps the column of the comment after it
    assert 'cooldown = "24h"                 # releases younger' in text
    assert 'hold-at = "low"                  # severity at which' in text
    trust = load_trust_file(path)
    assert trust.policy.cooldown == timedelta(hours=24)
    assert trust.policy.tiers[0].hold_at is Severity.LOW
    assert [t.min_fan_in for t in trust.policy.tiers] == [20, 10, 0]
    assert not trust.knows("npm:aaa")


def test_untouched_text_stays_byte_for_byte(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    editor.add_trusted("npm:zzz", "npm:user/z")
    assert editor.text.startswith(EXAMPLE)
    assert editor.text == EXAMPLE + '\n[[trusted."npm:zzz"]]\ncustodian = "npm:user/z"\n'


def test_identical_entries_are_not_added_twice(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    assert not editor.add_trusted(
        "npm:event-stream",
        "npm:user/DominicTarr",
        since=date(2011, 6, 1),
        until=date(2018, 9, 1),
        note="a different note does not make a different entry",
    )
    assert not editor.changed
    assert not editor.add_trusted_everywhere("github:my-org/*")
    # another window for the same custodian is another decision
    assert editor.add_trusted("npm:event-stream", "npm:user/dominictarr", since=date(2020, 1, 1))
    assert len(editor.trust_file.trusted["npm:event-stream"]) == 2


def test_layout_is_sorted_and_stable(tmp_path: Path) -> None:
    editor = TrustFileEditor.new(tmp_path / "custody.toml")
    editor.add_approval("npm:b", "1.0.0", "me", "ok")
    editor.add_trusted("npm:c", "npm:user/c")
    editor.add_trusted("npm:b", "npm:user/b")
    editor.add_trusted("pypi:A", "pypi:user/a")
    editor.add_trusted("npm:a", "npm:user/a")
    editor.add_trusted_everywhere("github:me/*")
    editor.set_policy("tiers.critical.min-fan-in", 30)
    editor.set_policy("cooldown", timedelta(days=1))
    editor.add_trusted("npm:b", "npm:user/b2")
    text = editor.text
    headers = [line for line in text.splitlines() if line.startswith("[")]
    assert headers == [
        "[policy]",
        "[policy.tiers.critical]",
        "[[trusted-everywhere]]",
        '[[trusted."npm:a"]]',
        '[[trusted."npm:b"]]',
        '[[trusted."npm:b"]]',
        '[[approved."npm:b"]]',
        '[[trusted."npm:c"]]',
        '[[trusted."pypi:a"]]',
    ]
    assert "\n\n\n" not in text
    assert text.endswith('custodian = "pypi:user/a"\n')
    trust = parse_trust_file(text)
    assert [e.custodian for e in trust.trusted["npm:b"]] == ["npm:user/b", "npm:user/b2"]
    assert trust.policy.cooldown == timedelta(hours=24)


def test_new_file_header(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    editor = TrustFileEditor.new(path)
    editor.save()
    text = path.read_text()
    assert text == NEW_FILE_HEADER
    assert text.endswith("\n")
    assert all(line.startswith("#") or not line for line in text.splitlines())
    for needle in (
        "review changes to it like code",
        "decision someone made",
        'cooldown = "48h"',
        'new-packages = "review"',
        "[policy.tiers.critical]",
        "custody init",
        "custody trust",
        "custody approve",
        "github:OWNER/REPO:.github/workflows/",
    ):
        assert needle in text, needle
    assert parse_trust_file(text).policy == parse_trust_file("").policy
    # the header survives later edits
    editor.add_trusted("npm:a", "npm:user/a")
    editor.set_policy("new-packages", "trust-on-first-use")
    assert editor.text.startswith(NEW_FILE_HEADER + "\n[policy]\n")


def test_approval_of_a_version_is_updated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    path.write_text(
        '[[approved."pypi:tool"]]\nversion = "1.0"   # the first one\nby = "alice"\n'
        'reason = "looked"  # short\n\n# next\n[[trusted."pypi:tool"]]\ncustodian = "pypi:user/a"\n'
    )
    editor = TrustFileEditor.open(path)
    when = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert not editor.add_approval("pypi:Tool", "1.0.0", "bob", "read the diff", when)
    text = editor.text
    assert "# the first one" in text and "# short" in text and "# next" in text
    assert text.index("at = 2024-05-01T09:30:00Z") < text.index("# next")
    (approval,) = editor.trust_file.approved["pypi:tool"]
    assert (approval.version, approval.by, approval.reason, approval.at) == (
        "1.0",
        "bob",
        "read the diff",
        when,
    )
    # approving again without a time drops the old time
    assert not editor.add_approval("pypi:tool", "1.0", "bob", "read the diff")
    assert editor.trust_file.approved["pypi:tool"][0].at is None
    assert editor.add_approval("pypi:tool", "2.0", "bob", "ok", date(2024, 6, 1))
    assert "at = 2024-06-01\n" in editor.text
    assert editor.remove_approval("pypi:tool", "1.0.0")
    assert not editor.remove_approval("pypi:tool", "1.0.0")
    assert [a.version for a in editor.trust_file.approved["pypi:tool"]] == ["2.0"]
    assert "# next" in editor.text


def test_remove_trusted(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    assert not editor.remove_trusted("npm:event-stream", "npm:user/nobody")
    assert not editor.remove_trusted("npm:nothing", "npm:user/nobody")
    assert editor.remove_trusted("npm:event-stream", "npm:user/DOMINICTARR")
    text = editor.text
    assert "dominictarr" not in text
    assert "\n\n\n" not in text
    assert not editor.trust_file.trusted
    assert editor.trust_file.approval("npm:event-stream", "4.0.1") is not None
    assert editor.remove_trusted_everywhere("github:my-org/*")
    assert "[[trusted-everywhere]]" not in editor.text
    assert editor.trust_file.trusted_everywhere == ()


def test_bad_arguments_change_nothing(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    before = editor.text
    cases = [
        lambda: editor.add_trusted("cargo:serde", "npm:user/a"),
        lambda: editor.add_trusted("npm:a", "dominictarr"),
        lambda: editor.add_trusted("npm:a", "pypi:user/a"),
        lambda: editor.add_trusted("npm:a", "github:o/*", numeric_id="12"),
        lambda: editor.add_trusted(
            "npm:a", "npm:user/a", since=date(2020, 2, 1), until=date(2020, 1, 1)
        ),
        lambda: editor.add_approval("npm:a", ">=1.0", "me", "ok"),
        lambda: editor.add_approval("npm:a", "1.0.0", " ", "ok"),
        lambda: editor.add_approval("npm:a", "1.0.0", "me", ""),
        lambda: editor.set_policy("cooldwn", "1h"),
        lambda: editor.set_policy("cooldown", "1 hour"),
        lambda: editor.set_policy("cooldown", timedelta(seconds=5)),
        lambda: editor.set_policy("tiers.critical.hold-at", "severe"),
        lambda: editor.set_policy("tiers.normal.min-fan-in", 3),
        lambda: editor.set_policy("tiers.mine.hold-at", "low"),
        lambda: editor.set_policy("new-packages", True),
    ]
    for case in cases:
        with pytest.raises(TrustFileError):
            case()
    assert editor.text == before
    assert not editor.changed


def test_set_policy_unchanged_value(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    assert not editor.set_policy("cooldown", "48h")
    assert not editor.set_policy("tiers.critical.min-fan-in", 20)
    assert editor.set_policy("tiers.mine.min-fan-in", 100)
    assert editor.set_policy("tiers.mine.hold-at", "info")
    assert editor.trust_file.policy.tiers[0].name == "mine"
    assert '[policy.tiers.mine]\nmin-fan-in = 100\nhold-at = "info"\n' in editor.text


def test_policy_table_is_added_before_its_sub_tables(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    path.write_text(
        "# my trust file\n[policy.tiers.critical]\nmin-fan-in = 40\n\n"
        '[[trusted."npm:a"]]\ncustodian = "npm:user/a"\n'
    )
    editor = TrustFileEditor.open(path)
    editor.set_policy("cooldown", "0")
    assert editor.text.startswith('# my trust file\n\n[policy]\ncooldown = "0"\n\n[policy.tiers')
    assert editor.trust_file.policy.cooldown == timedelta(0)


def test_layouts_the_editor_cannot_change_safely_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    original = 'trusted."npm:a" = [{ custodian = "npm:user/a" }]\n'
    path.write_text(original)
    editor = TrustFileEditor.open(path)
    with pytest.raises(TrustFileError):
        editor.add_trusted("npm:a", "npm:user/b")
    with pytest.raises(TrustFileError):
        editor.remove_trusted("npm:a", "npm:user/a")
    assert editor.text == original
    path.write_text("[policy]\ntiers.critical.min-fan-in = 30\n")
    editor = TrustFileEditor.open(path)
    assert editor.set_policy("tiers.critical.min-fan-in", 25)  # replaced in place
    with pytest.raises(TrustFileError):
        editor.set_policy("tiers.critical.hold-at", "low")  # would need a new table
    assert editor.trust_file.policy.tiers[0].min_fan_in == 25


def test_open_refuses_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    path.write_text('[policy]\ncooldown = "soon"\n')
    with pytest.raises(TrustFileError) as caught:
        TrustFileEditor.open(path)
    assert caught.value.line == 2


def test_save_is_atomic_and_keeps_permissions(path: Path) -> None:
    os.chmod(path, 0o640)
    editor = TrustFileEditor.open(path)
    editor.add_trusted("npm:a", "npm:user/a")
    editor.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["custody.toml"]
    assert not editor.changed


def test_crlf_files_stay_crlf(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    path.write_bytes(EXAMPLE.replace("\n", "\r\n").encode())
    editor = TrustFileEditor.open(path)
    editor.add_trusted("npm:a", "npm:user/a")
    editor.save()
    raw = path.read_bytes()
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert load_trust_file(path).knows("npm:a")


def test_file_without_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    path.write_text('[policy]\ncooldown = "1h" # short')
    editor = TrustFileEditor.open(path)
    editor.set_policy("new-packages", "review")
    editor.add_trusted("npm:a", "npm:user/a")
    editor.save()
    assert path.read_text() == (
        '[policy]\ncooldown = "1h" # short\nnew-packages = "review"\n\n'
        '[[trusted."npm:a"]]\ncustodian = "npm:user/a"\n'
    )


def test_written_dates_read_back(tmp_path: Path) -> None:
    editor = TrustFileEditor.new(tmp_path / "custody.toml")
    editor.add_trusted(
        "npm:a",
        "github:acme/a:.github/workflows/release.yml",
        since=datetime(2020, 1, 1, 10, 30, tzinfo=UTC),
        until=date(2021, 1, 1),
        note='multi\nline "note"',
        numeric_id="77",
    )
    text = editor.text
    assert "since = 2020-01-01T10:30:00Z\n" in text
    assert "until = 2021-01-01\n" in text
    (entry,) = parse_trust_file(text).trusted["npm:a"]
    assert entry.note == 'multi\nline "note"'
    assert entry.until == datetime(2021, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)
    trust = parse_trust_file(text)
    release = Custodian("github:acme/a", "77")
    at = datetime(2020, 6, 1, tzinfo=UTC)
    assert trust.trusting("npm:a", release, at, workflow=".github/workflows/release.yml")


# -- write_baseline ---------------------------------------------------------------------------

WHEN = datetime(2024, 3, 1, 12, tzinfo=UTC)


def test_baseline_new_file(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    entries = {
        "pypi:Requests": [
            TrustedEntry("pypi:user/nateprewitt", since=datetime(2019, 1, 1, tzinfo=UTC))
        ],
        "npm:event-stream": [
            TrustedEntry("npm:user/dominictarr"),
            TrustedEntry("npm:user/dominictarr"),  # duplicates are dropped
            TrustedEntry("github:acme/es", numeric_id="5", note="from provenance"),
        ],
    }
    added = write_baseline(path, entries, generated_by="custody init", when=WHEN, merge=False)
    assert added == 3
    text = path.read_text()
    assert text.startswith(NEW_FILE_HEADER)
    trust = load_trust_file(path)
    assert list(trust.trusted) == ["npm:event-stream", "pypi:requests"]
    es = trust.trusted["npm:event-stream"]
    assert es[0].note == "baseline written by custody init on 2024-03-01"
    assert es[1].note == "from provenance"
    assert es[1].numeric_id == "5"
    assert trust.trusted["pypi:requests"][0].since == datetime(2019, 1, 1, tzinfo=UTC)
    assert "since = 2019-01-01\n" in text
    with pytest.raises(TrustFileError) as caught:
        write_baseline(path, entries, generated_by="custody init", when=WHEN, merge=False)
    assert caught.value.path == str(path)
    assert path.read_text() == text


def test_baseline_merge_leaves_existing_entries_alone(path: Path) -> None:
    entries = {
        "npm:event-stream": [
            TrustedEntry("npm:user/DominicTarr", since=datetime(2011, 1, 1, tzinfo=UTC))
        ],
        "npm:aaa": [TrustedEntry("npm:user/a")],
        "npm:zzz": [TrustedEntry("npm:user/z")],
    }
    added = write_baseline(path, entries, generated_by="custody init", when=WHEN, merge=True)
    assert added == 2
    text = path.read_text()
    _comments_kept(text)
    # the original text is still there, in order, with the new tables between its sections
    lines = iter(text.splitlines())
    assert all(any(line == kept for line in lines) for kept in EXAMPLE.splitlines())
    trust = load_trust_file(path)
    assert len(trust.trusted["npm:event-stream"]) == 1
    headers = [line for line in text.splitlines() if line.startswith("[[")]
    assert headers.index('[[trusted."npm:aaa"]]') < headers.index('[[trusted."npm:event-stream"]]')
    assert headers[-1] == '[[trusted."npm:zzz"]]'
    assert write_baseline(path, entries, generated_by="custody init", when=WHEN, merge=True) == 0
    assert path.read_text() == text


def test_baseline_rejects_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    with pytest.raises(TrustFileError):
        write_baseline(
            path, {"npm:a": [TrustedEntry("a")]}, generated_by="x", when=WHEN, merge=False
        )
    with pytest.raises(TrustFileError):
        write_baseline(
            path, {"a": [TrustedEntry("npm:user/a")]}, generated_by="x", when=WHEN, merge=False
        )
    assert not path.exists()


def test_baseline_errors_name_the_package(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    entries = {
        "npm:aaa": [TrustedEntry("npm:user/a")],
        "npm:tp-kit": [TrustedEntry("npm:user/GitHub Actions")],
    }
    with pytest.raises(TrustFileError) as caught:
        write_baseline(path, entries, generated_by="x", when=WHEN, merge=False)
    assert "npm:tp-kit" in str(caught.value) and "npm:user/GitHub Actions" in str(caught.value)
    assert not path.exists()


def test_baseline_writes_trusted_publishers(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    since = datetime(2025, 3, 1, tzinfo=UTC)
    entries = {
        "npm:tp-kit": [
            TrustedEntry("npm:trusted-publisher/github", since=since),
            TrustedEntry("github:acme/tp-kit", since=since, numeric_id="42"),
        ]
    }
    assert write_baseline(path, entries, generated_by="custody init", when=WHEN, merge=False) == 2
    trust = load_trust_file(path)
    publisher, source = trust.trusted["npm:tp-kit"]
    assert publisher.custodian == "npm:trusted-publisher/github" and publisher.since == since
    assert publisher.numeric_id is None
    assert source.custodian == "github:acme/tp-kit" and source.numeric_id == "42"
    at = datetime(2025, 4, 1, tzinfo=UTC)
    assert trust.trusting("npm:tp-kit", Custodian("npm:trusted-publisher/github"), at)


def test_trusted_publishers_are_trusted_per_package_only(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    assert editor.add_trusted("npm:event-stream", "npm:trusted-publisher/github")
    with pytest.raises(TrustFileError, match="everywhere"):
        editor.add_trusted_everywhere("npm:trusted-publisher/github")
    with pytest.raises(TrustFileError, match="not allowed in a trusted publisher"):
        editor.add_trusted("npm:event-stream", "npm:trusted-publisher/*")
    editor.save()
    entries = load_trust_file(path).trusted["npm:event-stream"]
    assert [e.custodian for e in entries][-1] == "npm:trusted-publisher/github"


def test_baseline_of_many_packages_is_quick(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    entries = {f"npm:pkg-{i:04d}": [TrustedEntry(f"npm:user/u{i % 50}")] for i in range(1500)}
    started = datetime.now(UTC)
    assert (
        write_baseline(path, entries, generated_by="custody init", when=WHEN, merge=False) == 1500
    )
    more = {f"npm:pkg-{i:04d}b": [TrustedEntry("npm:user/x")] for i in range(0, 1500, 3)}
    assert write_baseline(path, more, generated_by="custody init", when=WHEN, merge=True) == 500
    assert datetime.now(UTC) - started < timedelta(seconds=20)
    trust = load_trust_file(path)
    assert len(trust.trusted) == 2000
    keys = [line for line in path.read_text().splitlines() if line.startswith("[[")]
    assert keys == sorted(keys)


def test_multi_line_strings_are_not_mistaken_for_tables(tmp_path: Path) -> None:
    text = (
        '[[trusted."npm:a"]]\ncustodian = "npm:user/a"\nnote = """\n'
        '[[trusted."npm:b"]]\ncustodian = "npm:user/b"\n"""\n\n'
        "[[approved.'npm:a']]\nversion = '1.0.0'\nby = 'me'\nreason = '''\n[policy]\n'''\n"
    )
    editor = TrustFileEditor(tmp_path / "custody.toml", text)
    assert editor.add_trusted("npm:a", "npm:user/c")
    assert not editor.add_approval("npm:a", "1.0.0", "you", "again")  # updated
    trust = editor.trust_file
    assert [e.custodian for e in trust.trusted["npm:a"]] == ["npm:user/a", "npm:user/c"]
    assert trust.approved["npm:a"][0].by == "you"
    assert "npm:b" not in trust.trusted
    assert editor.text.index('custodian = "npm:user/c"') > editor.text.index('"""\n\n')
    with pytest.raises(TrustFileError) as caught:
        parse_trust_file(text + "[[approved.'npm:a']]\nby = 'me'\n")
    assert caught.value.line == 14


def test_devpi_groups_and_account_ids_in_a_baseline(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    entries = {
        "pypi:tool": [
            TrustedEntry("pypi:group/:maintainers"),
            TrustedEntry("pypi:user/alice", numeric_id="17"),  # not a repository: id dropped
        ]
    }
    assert write_baseline(path, entries, generated_by="custody init", when=WHEN, merge=False) == 2
    trust = load_trust_file(path)
    group, alice = trust.trusted["pypi:tool"]
    assert alice.numeric_id is None
    assert group.workflow is None
    assert trust.trusting("pypi:tool", Custodian("pypi:group/:maintainers"), WHEN) == group
