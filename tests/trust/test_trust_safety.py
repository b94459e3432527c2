"""The trust file's edge cases: durations too long to use, symbolic links, locks, concurrent and
read-only files, byte-order marks, inline arrays, one spelling of a package per file, and a
``custody.toml`` that is not a file."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from custody.errors import TrustFileError
from custody.trust import (
    TrustFileEditor,
    find_trust_file,
    load_trust_file,
    parse_duration,
    parse_trust_file,
)
from custody.trust._ids import check_release_version
from custody.trust._lock import lock_path, locked

TRUST = '# ours\n[[trusted."npm:leftish"]]\ncustodian = "npm:user/alice"\n'


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "custody.toml"
    p.write_text(TRUST)
    return p


# -- 3. durations ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["521w", "5000000w", "99999999w", "999999999d", "1w999999999d"])
def test_durations_longer_than_ten_years_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="too long: at most 520w"):
        parse_duration(text)


def test_ten_years_is_the_longest_duration() -> None:
    assert parse_duration("520w") == timedelta(weeks=520)
    assert parse_duration("3640d") == timedelta(weeks=520)


def test_a_huge_cooldown_is_refused_with_file_and_line(path: Path) -> None:
    path.write_text(TRUST + '[policy]\ncooldown = "5000000w"\n')
    with pytest.raises(TrustFileError) as caught:
        load_trust_file(path)
    assert str(caught.value).startswith(f"{path}:5: cooldown: '5000000w' is too long")


def test_the_editor_refuses_a_huge_cooldown(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    with pytest.raises(TrustFileError, match="too long"):
        editor.set_policy("cooldown", timedelta(weeks=600))
    with pytest.raises(TrustFileError, match="too long"):
        editor.set_policy("cooldown", "9999w")


# -- 5. symbolic links ---------------------------------------------------------------------------


def test_saving_through_a_symlink_writes_its_target(tmp_path: Path, path: Path) -> None:
    link = tmp_path / "sub" / "custody.toml"
    link.parent.mkdir()
    link.symlink_to(path)
    editor = TrustFileEditor.open(link)
    editor.add_approval("npm:leftish", "1.0.1", "me", "ok")
    editor.save()
    assert link.is_symlink() and link.resolve() == path.resolve()
    assert load_trust_file(path).approval("npm:leftish", "1.0.1") is not None
    assert sorted(p.name for p in link.parent.iterdir()) == ["custody.toml"]


# -- 6. locks and concurrent edits --------------------------------------------------------------


def test_editing_waits_for_the_lock_then_times_out_with_a_clear_error(path: Path) -> None:
    with locked(path.resolve()):
        started = time.monotonic()
        with (
            pytest.raises(TrustFileError, match="another process has been editing it"),
            TrustFileEditor.editing(path, timeout=0.3),
        ):
            pass
        assert time.monotonic() - started >= 0.3
    with TrustFileEditor.editing(path) as editor:  # released: free again
        editor.add_trusted("npm:leftish", "npm:user/bob")
        editor.save()
    assert not lock_path(path.resolve()).exists()
    assert len(load_trust_file(path).trusted["npm:leftish"]) == 2


def test_a_waiting_edit_sees_the_edit_before_it(path: Path) -> None:
    """A second editor (another descriptor: flock excludes it as it would another process)
    opens the file only once the first one has saved, so both approvals are kept."""
    first_saved = threading.Event()
    seen: list[bool] = []

    def second() -> None:
        with TrustFileEditor.editing(path) as editor:
            seen.append(first_saved.is_set())
            editor.add_approval("npm:leftish", "1.0.2", "me", "ok")
            editor.save()

    thread = threading.Thread(target=second)
    with TrustFileEditor.editing(path) as editor:
        thread.start()
        editor.add_approval("npm:leftish", "1.0.1", "me", "ok")
        time.sleep(0.3)  # the other edit is waiting for the lock now
        editor.save()
        first_saved.set()
    thread.join(10)
    assert seen == [True]
    trust = load_trust_file(path)
    assert {a.version for a in trust.approved["npm:leftish"]} == {"1.0.1", "1.0.2"}


def test_save_refuses_a_file_that_changed_since_it_was_read(path: Path) -> None:
    editor = TrustFileEditor.open(path)
    editor.add_approval("npm:leftish", "1.0.1", "me", "ok")
    changed = TRUST + '[[approved."npm:leftish"]]\nversion = "9.9.9"\nby = "x"\nreason = "y"\n'
    path.write_text(changed)
    with pytest.raises(TrustFileError, match="changed on disk"):
        editor.save()
    assert path.read_text() == changed


def test_a_new_file_is_not_saved_over_one_made_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "custody.toml"
    editor = TrustFileEditor.open_or_new(path)
    editor.add_trusted("npm:leftish", "npm:user/alice")
    path.write_text(TRUST)
    with pytest.raises(TrustFileError, match="changed on disk"):
        editor.save()
    assert path.read_text() == TRUST


# -- 10. read-only files, byte-order marks, inline arrays, spellings, directories ------------------


def test_a_read_only_file_is_refused(path: Path) -> None:
    path.chmod(0o444)
    editor = TrustFileEditor.open(path)
    editor.add_approval("npm:leftish", "1.0.1", "me", "ok")
    with pytest.raises(TrustFileError, match="read-only"):
        editor.save()
    assert path.read_text() == TRUST
    assert os.stat(path).st_mode & 0o777 == 0o444


def test_a_byte_order_mark_is_kept(path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + TRUST.replace("\n", "\r\n").encode())
    editor = TrustFileEditor.open(path)
    editor.add_approval("npm:leftish", "1.0.1", "me", "ok")
    editor.save()
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf# ours\r\n")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert load_trust_file(path).approval("npm:leftish", "1.0.1") is not None


@pytest.mark.parametrize(
    ("text", "edit"),
    [
        ('[trusted]\n"npm:x" = [{custodian = "npm:user/a"}]\n', "trust"),
        ('[approved]\n"npm:x" = [{version = "1.0.0", by = "a", reason = "r"}]\n', "approve"),
        ('trusted-everywhere = [{custodian = "github:o/*"}]\n', "everywhere"),
    ],
)
def test_inline_arrays_are_refused_with_the_documented_hint(
    path: Path, text: str, edit: str
) -> None:
    path.write_text(text)
    editor = TrustFileEditor.open(path)
    with pytest.raises(TrustFileError, match=r"is not written as \[\[.*\]\] tables; rewrite"):
        if edit == "trust":
            editor.add_trusted("npm:x", "npm:user/b")
        elif edit == "approve":
            editor.add_approval("npm:x", "1.0.1", "me", "ok")
        else:
            editor.add_trusted_everywhere("github:p/*")
    assert path.read_text() == text


def test_two_spellings_across_tables_are_an_error() -> None:
    text = (
        '[[trusted."pypi:Foo.Bar"]]\ncustodian = "pypi:user/a"\n\n'
        '[[approved."pypi:foo-bar"]]\nversion = "1.0"\nby = "me"\nreason = "ok"\n'
    )
    with pytest.raises(TrustFileError, match="name the same package") as caught:
        parse_trust_file(text, Path("custody.toml"))
    assert str(caught.value).startswith("custody.toml:4:")


def test_the_editor_keeps_one_spelling_across_tables(path: Path) -> None:
    path.write_text('[[trusted."pypi:Foo.Bar"]]\ncustodian = "pypi:user/a"\n')
    editor = TrustFileEditor.open(path)
    editor.add_approval("pypi:foo-bar", "1.0", "me", "ok")
    editor.save()
    assert '[[approved."pypi:Foo.Bar"]]' in path.read_text()
    assert load_trust_file(path).approval("pypi:foo_bar", "1.0.0") is not None
    path.write_text('[[approved."pypi:Foo.Bar"]]\nversion = "1.0"\nby = "me"\nreason = "ok"\n')
    editor = TrustFileEditor.open(path)
    editor.add_trusted("pypi:FOO_BAR", "pypi:user/b")
    editor.save()
    assert '[[trusted."pypi:Foo.Bar"]]' in path.read_text()
    load_trust_file(path)


def test_a_custody_toml_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "custody.toml").write_text(TRUST)
    inner = tmp_path / "inner"
    (inner / "custody.toml").mkdir(parents=True)
    with pytest.raises(TrustFileError, match="is a directory"):
        find_trust_file(inner)
    (inner / "custody.toml").rmdir()
    (inner / "custody.toml").symlink_to(inner / "missing.toml")
    with pytest.raises(TrustFileError, match="not a readable file"):
        find_trust_file(inner)
    assert find_trust_file(tmp_path) == tmp_path / "custody.toml"


# -- 9. exact release versions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "version"),
    [("npm:x", "1.x"), ("npm:x", "1.0.x"), ("npm:x", "latest"), ("npm:x", "v1.0.1"),
     ("npm:x", "1.0"), ("npm:x", "01.0.0"), ("pypi:x", "latest"), ("pypi:x", "1.0.x"),
     ("pypi:x", "1.0-foo-bar")],
)  # fmt: skip
def test_release_versions_refused(key: str, version: str) -> None:
    with pytest.raises(ValueError):
        check_release_version(key, version)


@pytest.mark.parametrize(
    ("key", "version"),
    [("npm:x", "1.0.0"), ("npm:x", "1.0.0-rc.1"), ("npm:x", "0.0.1+build.7"),
     ("pypi:x", "2.31.0"), ("pypi:x", "1.0"), ("pypi:x", "1.0.post1"), ("pypi:x", "2!1.0rc1")],
)  # fmt: skip
def test_release_versions_accepted(key: str, version: str) -> None:
    assert check_release_version(key, version) == version
