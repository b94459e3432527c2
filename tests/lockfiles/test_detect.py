"""Format detection, file discovery and unreadable files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from custody.errors import LockfileError
from custody.lockfiles import detect_reader, find_lockfiles, read_lockfile
from tests.lockfiles.helpers import FIXTURES

REAL = {
    "npm-v3/package-lock.json": "package-lock",
    "requirements/requirements.txt": "requirements",
    "requirements/pylock.compile.toml": "pylock",
    "poetry/poetry.lock": "poetry.lock",
    "uv/uv.lock": "uv.lock",
    "uv/pylock.toml": "pylock",
}


@pytest.mark.parametrize(("fixture", "fmt"), REAL.items())
def test_detect_by_name(fixture: str, fmt: str) -> None:
    path = FIXTURES / fixture
    assert detect_reader(path, path.read_text()).format_name == fmt


@pytest.mark.parametrize(("fixture", "fmt"), REAL.items())
def test_detect_by_content_whatever_the_name(tmp_path: Path, fixture: str, fmt: str) -> None:
    path = tmp_path / "renamed.lock"
    shutil.copy(FIXTURES / fixture, path)
    assert detect_reader(path, path.read_text()).format_name == fmt
    assert read_lockfile(path)


@pytest.mark.parametrize(
    "name",
    [
        "requirements.txt",
        "requirements-dev.txt",
        "dev-requirements.txt",
        "requirements/base.txt",
        "requirements-dev.lock",
    ],
)
def test_requirements_names(tmp_path: Path, name: str) -> None:
    assert detect_reader(tmp_path / name, "").format_name == "requirements"


@pytest.mark.parametrize("name", ["yarn.lock", "pnpm-lock.yaml", "bun.lockb", "Pipfile.lock"])
def test_known_but_unsupported(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("{}\n")
    with pytest.raises(LockfileError, match="not supported yet") as info:
        read_lockfile(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    "text",
    ['{"name": "x", "dependencies": {}}', "[tool]\nname = 'x'\n", "key: value\n", "[]"],
)
def test_unknown_format(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mystery.lock"
    path.write_text(text)
    with pytest.raises(LockfileError, match="unknown lockfile format") as info:
        read_lockfile(path)
    assert info.value.path == str(path)


def test_missing_file_directory_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="does not exist") as info:
        read_lockfile(tmp_path / "package-lock.json")
    assert info.value.path == str(tmp_path / "package-lock.json")
    with pytest.raises(LockfileError, match="not a regular file"):
        read_lockfile(tmp_path)
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"six==1.16.0\nca\xffe==1.0\n")
    with pytest.raises(LockfileError, match="not UTF-8") as info:
        read_lockfile(path)
    assert info.value.line == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("six==1.16.0\n")
    path.chmod(0)
    with pytest.raises(LockfileError, match="cannot read"):
        read_lockfile(path)


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"\xef\xbb\xbfsix==1.16.0\n")
    assert [d.key for d in read_lockfile(path)] == ["pypi:six@1.16.0"]


def test_find_lockfiles(tmp_path: Path) -> None:
    for name in [
        "package-lock.json",
        "npm-shrinkwrap.json",
        "requirements.txt",
        "requirements-dev.txt",
        "poetry.lock",
        "uv.lock",
        "pylock.toml",
        "pylock.docs.toml",
        "package.json",
        "pyproject.toml",
        "README.md",
        "yarn.lock",
    ]:
        (tmp_path / name).write_text("")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / ".package-lock.json").write_text("")
    (tmp_path / "node_modules" / "package-lock.json").write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "requirements.txt").write_text("")
    (tmp_path / "requirements").mkdir()  # a folder with a lockfile-like name is not a file
    assert [p.name for p in find_lockfiles(tmp_path)] == [
        "npm-shrinkwrap.json",
        "package-lock.json",
        "poetry.lock",
        "pylock.docs.toml",
        "pylock.toml",
        "requirements-dev.txt",
        "requirements.txt",
        "uv.lock",
    ]


@pytest.mark.parametrize("name", ["yarn.lock", "pnpm-lock.yaml", "bun.lock"])
def test_find_lockfiles_names_a_lockfile_it_cannot_read(tmp_path: Path, name: str) -> None:
    assert find_lockfiles(tmp_path) == []
    (tmp_path / "package.json").write_text("{}\n")
    (tmp_path / name).write_text("")
    with pytest.raises(LockfileError, match="not supported yet") as info:
        find_lockfiles(tmp_path)
    assert info.value.path == str(tmp_path / name)


def test_find_lockfiles_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="cannot list"):
        find_lockfiles(tmp_path / "nope")


def test_an_unsupported_lockfile_beside_a_read_one_is_a_warning(tmp_path: Path) -> None:
    """A project with both package-lock.json and pnpm-lock.yaml: the packages only the pnpm
    lockfile locks are not checked, and the report says so instead of passing in silence."""
    from custody.engine import read_lockfiles

    lock = tmp_path / "package-lock.json"
    lock.write_text('{"name": "a", "lockfileVersion": 3, "packages": {"": {"name": "a"}}}\n')
    assert read_lockfiles([lock]).warnings() == []
    (tmp_path / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\n")
    [warning] = read_lockfiles([lock]).warnings()
    assert str(tmp_path / "pnpm-lock.yaml") in warning and "not checked" in warning
