"""poetry.lock, uv.lock and PEP 751 pylock.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from custody.errors import LockfileError
from custody.lockfiles import read_lockfile, read_lockfile_report
from custody.model import Ecosystem
from tests.lockfiles.helpers import FIXTURES, by_key, copy_fixture, line_text, names

PYTEST_DEPS = {"pytest", "iniconfig", "pluggy", "packaging", "colorama"}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def assert_locations(path: Path, header: str) -> None:
    for dep in read_lockfile(path):
        assert dep.location is not None and dep.location.path == str(path)
        line = dep.location.line
        assert line is not None
        assert line_text(path, line).strip() == header
        following = path.read_text().splitlines()[line]
        assert following.replace(" ", "").lower().startswith("name=")


# ------------------------------------------------------------------------------- poetry


def test_poetry_real_lockfile() -> None:
    path = FIXTURES / "poetry" / "poetry.lock"
    deps = read_lockfile(path)
    got = by_key(deps)
    assert len(deps) == 15
    assert all(d.ecosystem is Ecosystem.PYPI for d in deps)
    assert "pysocks@1.7.1" in got and "charset-normalizer@3.5.2" in got  # PEP 503 names
    assert names(deps, direct=True) == {"requests", "rich", "pytest"}
    assert names(deps, dev=True) == PYTEST_DEPS - {"pygments"}
    assert not got["pygments@2.21.0"].dev  # in both groups
    assert set(got["pygments@2.21.0"].paths) == {("rich", "pygments"), ("pytest", "pygments")}
    assert got["pysocks@1.7.1"].paths == (("requests", "pysocks"),)
    assert got["colorama@0.4.6"].marker == 'sys_platform == "win32"'
    assert got["certifi@2026.10.18"].integrity == (
        "sha256:73191c47aaa79da394e8fee2dbc2ec827432cab56311122c9e47abf79e390f62"
    )
    assert_locations(path, "[[package]]")


def test_poetry_without_pyproject(tmp_path: Path) -> None:
    copy_fixture("poetry", tmp_path, "poetry.lock")
    deps = read_lockfile(tmp_path / "poetry.lock")
    assert names(deps, direct=True) == {"requests", "rich", "pytest"}


def test_poetry_1x_and_sources(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "poetry.lock",
        """[[package]]
name = "Flask"
version = "2.0.0"
description = ""
category = "main"
optional = false
python-versions = "*"

[package.dependencies]
Werkzeug = ">=2.0"
mytool = {git = "https://git.example/mytool.git"}

[[package]]
name = "werkzeug"
version = "2.0.1"
category = "dev"
optional = true
python-versions = "*"

[[package]]
name = "mytool"
version = "0.1.0"
category = "main"
optional = false
python-versions = "*"

[package.source]
type = "git"
url = "https://git.example/mytool.git"
reference = "main"
resolved_reference = "0123abcd"

[metadata]
lock-version = "1.1"
python-versions = "^3.8"
content-hash = "abc"

[metadata.files]
flask = [
    {file = "Flask-2.0.0.tar.gz", hash = "sha256:ffff"},
]
werkzeug = []
""",
    )
    report = read_lockfile_report(path)
    got = by_key(list(report.dependencies))
    assert set(got) == {"flask@2.0.0", "werkzeug@2.0.1"}
    assert got["flask@2.0.0"].integrity == "sha256:ffff"
    assert got["flask@2.0.0"].direct and not got["werkzeug@2.0.1"].direct
    assert got["werkzeug@2.0.1"].dev and got["werkzeug@2.0.1"].optional
    assert got["werkzeug@2.0.1"].paths == (("flask", "werkzeug"),)
    [skipped] = report.skipped
    assert (skipped.name, skipped.kind, skipped.source) == (
        "mytool",
        "git",
        "https://git.example/mytool.git",
    )
    assert skipped.location is not None and skipped.location.line == 20


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[package]]\nname = "a"\nversion = "1"\n', 1, "no [metadata] table"),
        ('[[package]]\nname = "a"\n\n[metadata]\ncontent-hash = "x"\n', 1, "version must be"),
        (
            '[[package]]\nname = "a"\nversion = "1"\n\n[[package]]\nname = "b c"\nversion = "1"\n'
            '[metadata]\ncontent-hash = "x"\n',
            5,
            "'b c' is not a valid Python project name",
        ),
        ('[metadata]\ncontent-hash = "x"\n[[package]]\nname = \n', 4, "not valid TOML"),
        ('package = 3\n[metadata]\ncontent-hash = "x"\n', None, "must be a list"),
        (
            '[[package]]\nname = "a"\nversion = "1"\n[package.source]\ntype = "hg"\n'
            'url = "https://example.invalid/a"\n[metadata]\ncontent-hash = "x"\n',
            1,
            "source of unknown type 'hg'",
        ),
    ],
)
def test_poetry_errors(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    path = write(tmp_path, "poetry.lock", text)
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    assert info.value.path == str(path) and info.value.line == line
    assert message in str(info.value)


POETRY_TWO = """[[package]]
name = "requests"
version = "2.31.0"

[package.dependencies]
urllib3 = "*"

[[package]]
name = "urllib3"
version = "2.0.0"

[metadata]
lock-version = "2.1"
content-hash = "x"
"""
PYLOCK_TWO = """lock-version = "1.0"

[[packages]]
name = "requests"
version = "2.31.0"
dependencies = [{ name = "urllib3" }]

[[packages]]
name = "urllib3"
version = "2.0.0"
"""


@pytest.mark.parametrize(
    ("name", "lock"), [("poetry.lock", POETRY_TWO), ("pylock.toml", PYLOCK_TWO)]
)
@pytest.mark.parametrize(
    "pyproject",
    [
        None,  # what the others must match: no pyproject.toml at all
        "[tool.ruff]\nline-length = 100\n",
        '[project]\nname = "app"\nversion = "1"\ndynamic = ["dependencies"]\n',
        '[project]\nname = "app"\ndynamic = ["dependencies"]\n'
        '[dependency-groups]\ndev = ["pytest"]\n',
        '[tool.poetry]\nname = "app"\n\n[tool.poetry.dependencies]\npython = "^3.11"\n',
    ],
)
def test_pyproject_without_readable_dependencies(
    tmp_path: Path, name: str, lock: str, pyproject: str | None
) -> None:
    path = write(tmp_path, name, lock)
    if pyproject is not None:
        write(tmp_path, "pyproject.toml", pyproject)
    got = by_key(read_lockfile(path))
    assert got["requests@2.31.0"].direct and got["requests@2.31.0"].paths == (("requests",),)
    assert not got["urllib3@2.0.0"].direct
    assert got["urllib3@2.0.0"].paths == (("requests", "urllib3"),)


def test_poetry2_dynamic_dependencies_in_tool_poetry(tmp_path: Path) -> None:
    path = write(tmp_path, "poetry.lock", POETRY_TWO)
    write(
        tmp_path,
        "pyproject.toml",
        '[project]\nname = "app"\ndynamic = ["dependencies"]\n\n'
        '[tool.poetry.dependencies]\nrequests = "*"\nurllib3 = "*"\n',
    )
    assert names(read_lockfile(path), direct=True) == {"requests", "urllib3"}


def test_poetry_cycle_without_pyproject(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "poetry.lock",
        """[[package]]
name = "a"
version = "1.0"
[package.dependencies]
b = "*"

[[package]]
name = "b"
version = "1.0"
[package.dependencies]
a = "*"
c = "*"

[[package]]
name = "c"
version = "1.0"

[metadata]
content-hash = "x"
""",
    )
    deps = read_lockfile(path)
    got = by_key(deps)
    assert names(deps, direct=True) == {"a"}
    assert got["b@1.0"].paths == (("a", "b"),)
    assert got["c@1.0"].paths == (("a", "b", "c"),)


# ----------------------------------------------------------------------------------- uv


def test_uv_real_lockfile() -> None:
    path = FIXTURES / "uv" / "uv.lock"
    report = read_lockfile_report(path)
    deps = list(report.dependencies)
    got = by_key(deps)
    assert len(deps) == 15
    assert "custody-fixture-py" not in {d.name for d in deps}  # the project itself
    assert report.skipped == ()
    assert names(deps, direct=True) == {"requests", "rich", "pytest"}
    assert names(deps, dev=True) == PYTEST_DEPS - {"pygments"}
    assert names(deps, optional=True) == {"pysocks"}  # only through the project's "socks" extra
    assert got["mdurl@0.1.2"].paths == (("rich", "markdown-it-py", "mdurl"),)
    assert got["colorama@0.4.6"].marker == "sys_platform == 'win32'"
    assert got["requests@2.34.2"].integrity == (
        "sha256:f288924cae4e29463698d6d60bc6a4da69c89185ad1e0bcc4104f584e960b9ed"
    )
    assert got["requests@2.34.2"].resolved == (
        "https://files.example/packages/ac/c3/e2a2b89f2d3e2179abd6d00ebd70bff6273f37fb3e0cc209f48b39d00cbf"
        "/requests-2.34.2.tar.gz"
    )
    assert_locations(path, "[[package]]")


UV_WORKSPACE = """version = 1
revision = 3
requires-python = ">=3.11"

[manifest]
members = ["app", "Lib_Core"]

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "packages/app" }
dependencies = [
    { name = "lib-core" },
    { name = "anyio", version = "4.0.0", source = { registry = "https://index.example/simple" } },
    { name = "vendored" },
    { name = "fromgit" },
]

[[package]]
name = "lib-core"
version = "0.1.0"
source = { editable = "packages/core" }
dependencies = [{ name = "idna", marker = "python_version < '3.12'" }]

[[package]]
name = "anyio"
version = "4.0.0"
source = { registry = "https://index.example/simple" }
dependencies = [{ name = "idna" }]
wheels = [{ url = "https://files.example/anyio-4.0.0-py3-none-any.whl", hash = "sha256:aaaa" }]

[[package]]
name = "anyio"
version = "3.0.0"
source = { registry = "https://index.example/simple" }

[[package]]
name = "idna"
version = "3.4"
source = { registry = "https://index.example/simple" }
sdist = { url = "https://files.example/idna-3.4.tar.gz", hash = "sha256:bbbb" }
wheels = [{ url = "https://files.example/idna-3.4-py3-none-any.whl", hash = "sha256:cccc" }]

[[package]]
name = "vendored"
version = "1.0.0"
source = { path = "vendor/vendored-1.0.0.tar.gz" }
dependencies = [{ name = "six" }]

[[package]]
name = "six"
version = "1.16.0"
source = { registry = "https://index.example/simple" }

[[package]]
name = "fromgit"
version = "0.2.0"
source = { git = "https://git.example/fromgit.git?rev=v0.2#0123abcd" }
"""


def test_uv_workspace_and_sources(tmp_path: Path) -> None:
    path = write(tmp_path, "uv.lock", UV_WORKSPACE)
    report = read_lockfile_report(path)
    got = by_key(list(report.dependencies))
    assert set(got) == {"anyio@4.0.0", "anyio@3.0.0", "idna@3.4", "six@1.16.0"}
    assert got["anyio@4.0.0"].direct and not got["anyio@3.0.0"].direct
    assert got["anyio@3.0.0"].paths == ()  # nothing depends on this version
    assert got["idna@3.4"].direct  # lib-core is a workspace member
    assert got["idna@3.4"].integrity == "sha256:bbbb"
    assert got["idna@3.4"].marker is None  # one edge has a marker, the other none
    assert got["six@1.16.0"].paths == (("vendored", "six"),)
    assert {(s.name, s.kind) for s in report.skipped} == {("vendored", "file"), ("fromgit", "git")}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version = 2\n", 1, "unsupported uv.lock version 2"),
        ('version = 1\n\n[[package]]\nname = "a"\nversion = "1"\n', 3, "source must be"),
        (
            'version = 1\n[[package]]\nname = "a"\nsource = { registry = "x" }\n',
            2,
            "needs a version",
        ),
        (
            'version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { registry = "x" }\n'
            'dependencies = [{ name = "b" }]\n',
            2,
            "depends on 'b', which is not locked",
        ),
        (
            'version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { svn = "x" }\n',
            2,
            "unknown source kind 'svn'",
        ),
    ],
)
def test_uv_errors(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    path = write(tmp_path, "uv.lock", text)
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    assert info.value.path == str(path) and info.value.line == line
    assert message in str(info.value)


# ------------------------------------------------------------------------------- pylock


def test_pylock_from_uv_export() -> None:
    path = FIXTURES / "uv" / "pylock.toml"
    deps = read_lockfile(path)
    got = by_key(deps)
    assert len(deps) == 14
    # the format names no roots: the pyproject.toml beside it does
    assert names(deps, direct=True) == {"requests", "rich", "pytest"}
    assert names(deps, dev=True) == {"pytest"}
    assert got["colorama@0.4.6"].marker == "sys_platform == 'win32'"
    assert got["idna@3.20"].integrity == (
        "sha256:a7db850025b95ded1eae8a46181a1a6c56c92c96f0e2b005d9ff8dc0210cab44"
    )
    assert_locations(path, "[[packages]]")


def test_pylock_from_pip_compile_without_project() -> None:
    deps = read_lockfile(FIXTURES / "requirements" / "pylock.compile.toml")
    assert len(deps) == 11
    assert all(d.direct and d.paths == ((d.name,),) for d in deps)  # no way to tell


def test_pylock_hand_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pylock.dev.toml",
        """lock-version = "1.0"
created-by = "hand"

[[packages]]
name = "Top"
version = "1.0"
dependencies = [{ name = "leaf" }]
index = "https://index.example/simple"
wheels = [{ name = "top-1.0-py3-none-any.whl", hashes = { sha512 = "eeee", sha256 = "ffff" } }]

[[packages]]
name = "leaf"
wheels = [{ url = "https://files.example/leaf-2.5-py3-none-any.whl", hashes = { sha256 = "0000" } }]

[[packages]]
name = "fromvcs"
vcs = { type = "git", url = "https://git.example/x.git", commit-id = "0123" }

[[packages]]
name = "localdir"
directory = { path = "../localdir", editable = true }

[[packages]]
name = "archived"
archive = { path = "dist/archived-1.0.tar.gz", hashes = { sha256 = "1111" } }
""",
    )
    report = read_lockfile_report(path)
    got = by_key(list(report.dependencies))
    assert set(got) == {"top@1.0", "leaf@2.5"}  # leaf's version from its wheel's name
    assert got["top@1.0"].direct and not got["leaf@2.5"].direct
    assert got["leaf@2.5"].paths == (("top", "leaf"),)
    assert got["top@1.0"].integrity == "sha256:ffff"
    assert {(s.name, s.kind, s.source) for s in report.skipped} == {
        ("fromvcs", "git", "https://git.example/x.git"),
        ("localdir", "local", "../localdir"),
        ("archived", "file", "dist/archived-1.0.tar.gz"),
    }


def test_pylock_version_only_from_its_own_file_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pylock.toml",
        """lock-version = "1.0"
[[packages]]
name = "a"
sdist = { name = "other-9.9.tar.gz", hashes = { sha256 = "aa" } }
wheels = [{ name = "A-1.2-py3-none-any.whl", hashes = { sha256 = "bb" } }]
""",
    )
    assert [d.key for d in read_lockfile(path)] == ["pypi:a@1.2"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('lock-version = "2.0"\npackages = []\n', 1, "unsupported lock-version '2.0'"),
        ("lock-version = 1\n", 1, "lock-version must be a non-empty string"),
        ('lock-version = "1.0"\n', None, "[[packages]] must be a list"),
        ('lock-version = "1.0"\n\n[[packages]]\nname = "x"\n', 3, "no version"),
        (
            'lock-version = "1.0"\n[[packages]]\nname = "x"\n'
            'sdist = { name = "other-9.9.tar.gz" }\n',
            2,
            "no version (and none in its file names)",
        ),
        ('lock-version = "1.0"\n[[packages]]\nname = "x"\nversion = 1\n', 2, "version must be"),
        ('lock-version = "1.0"\n[[packages]]\nname = "x"\nwheels = 3\n', 2, "wheels must be"),
        ('lock-version = "1.0"\nlock-version = "1.0"\n', 2, "not valid TOML"),
    ],
)
def test_pylock_errors(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    path = write(tmp_path, "pylock.toml", text)
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    assert info.value.path == str(path) and info.value.line == line
    assert message in str(info.value)


def test_toml_error_at_end_of_document(tmp_path: Path) -> None:
    path = write(tmp_path, "uv.lock", "version = 1\n[[package]]\nname = ")
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    assert info.value.line == 3


def test_pyproject_beside_is_optional_and_may_be_broken(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "uv" / "pylock.toml", tmp_path / "pylock.toml")
    (tmp_path / "pyproject.toml").write_text("[project\n")
    deps = read_lockfile(tmp_path / "pylock.toml")
    assert all(d.direct for d in deps)
