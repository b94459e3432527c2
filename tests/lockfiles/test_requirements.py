"""pip requirements files: pins, hashes, includes, markers and pip-compile/uv annotations."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.errors import LockfileError
from custody.lockfiles import read_lockfile, read_lockfile_report
from custody.model import Ecosystem
from tests.lockfiles.helpers import FIXTURES, PROPERTY, by_key, line_text, names


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_uv_pip_compile_output() -> None:
    path = FIXTURES / "requirements" / "requirements.txt"
    deps = read_lockfile(path)
    got = by_key(deps)
    assert len(deps) == 16
    assert all(d.ecosystem is Ecosystem.PYPI for d in deps)
    # "# via -r requirements.in" marks what the user asked for
    assert names(deps, direct=True) == {"requests", "rich", "httpx", "colorama"}
    assert got["h11@0.16.0"].paths == (("httpx", "httpcore", "h11"),)
    assert set(got["certifi@2026.10.18"].paths) == {("httpx", "certifi"), ("requests", "certifi")}
    assert len(got["certifi@2026.10.18"].paths[0]) == 2
    assert got["colorama@0.4.6"].marker == "sys_platform == 'win32'"
    assert got["typing-extensions@4.16.0"].marker == "python_full_version < '3.15'"
    # the first --hash of the entry, in the sha256:<hex> form
    assert got["certifi@2026.10.18"].integrity == (
        "sha256:73191c47aaa79da394e8fee2dbc2ec827432cab56311122c9e47abf79e390f62"
    )
    for dep in deps:
        assert dep.location is not None and dep.location.path == str(path)
        assert line_text(path, dep.location.line).startswith(f"{dep.name}==")


def test_hand_written_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "requirements.txt",
        "# a comment\n"
        "--index-url https://index.example/simple\n"
        "--extra-index-url=https://other.example/simple\n"
        "--only-binary :all:\n"
        "--require-hashes\n"
        "\n"
        "Requests[socks,security]==2.31.0  # trailing comment\n"
        "Django_Rest.Framework === 3.14.0\n"
        'pywin32==306 ; sys_platform == "win32"\n'
        "urllib3==2.0.7 \\\n"
        "    --hash=sha256:aaaa \\\n"
        "    --hash sha256:bbbb\n"
        "idna==3.4 --hash=sha512:cccc --hash=sha256:dddd\n",
    )
    deps = read_lockfile(path)
    got = by_key(deps)
    assert set(got) == {
        "requests@2.31.0",
        "django-rest-framework@3.14.0",
        "pywin32@306",
        "urllib3@2.0.7",
        "idna@3.4",
    }
    assert all(d.direct and d.paths == ((d.name,),) for d in deps)
    assert got["pywin32@306"].marker == 'sys_platform == "win32"'
    assert got["urllib3@2.0.7"].integrity == "sha256:aaaa"
    assert got["urllib3@2.0.7"].location is not None
    assert got["urllib3@2.0.7"].location.line == 10
    assert got["idna@3.4"].integrity == "sha256:dddd"  # sha256 preferred
    assert got["requests@2.31.0"].location is not None
    assert got["requests@2.31.0"].location.line == 7


def test_includes_relative_and_cycle_safe(tmp_path: Path) -> None:
    main = write(tmp_path, "requirements.txt", "-r reqs/base.txt\nrich==13.7.0\n")
    write(tmp_path, "reqs/base.txt", "--requirement=more.txt\nrequests==2.31.0\n")
    write(tmp_path, "reqs/more.txt", "-r../requirements.txt\n-r base.txt\nidna==3.4\n")
    deps = read_lockfile(main)
    got = by_key(deps)
    assert set(got) == {"rich@13.7.0", "requests@2.31.0", "idna@3.4"}
    idna = got["idna@3.4"].location
    assert idna is not None and Path(idna.path).name == "more.txt" and idna.line == 3


def test_constraints_are_not_dependencies(tmp_path: Path) -> None:
    write(tmp_path, "constraints.txt", "urllib3==1.26.0\n")
    path = write(tmp_path, "requirements.txt", "-c constraints.txt\nrequests==2.31.0\n")
    assert set(by_key(read_lockfile(path))) == {"requests@2.31.0"}


def test_non_registry_requirements_are_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "requirements.txt",
        "-e .\n"
        "-e git+https://git.example/org/tool.git@v1#egg=tool\n"
        "mylib @ https://files.example/mylib-1.0-py3-none-any.whl\n"
        "./vendor/local-1.0.tar.gz\n"
        "https://files.example/other-2.0.zip\n"
        "six==1.16.0\n",
    )
    report = read_lockfile_report(path)
    assert [d.key for d in report.dependencies] == ["pypi:six@1.16.0"]
    kinds = [(s.name, s.kind, s.location.line if s.location else None) for s in report.skipped]
    assert kinds == [
        (".", "local", 1),
        ("tool", "git", 2),
        ("mylib", "url", 3),
        ("local-1.0.tar.gz", "file", 4),
        ("other-2.0.zip", "url", 5),
    ]


def test_via_annotations_old_and_new_styles(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "requirements.txt",
        "django==4.2.0\n"
        "    # via -r requirements.in\n"
        "asgiref==3.7.2\n"
        "    # via django\n"
        "sqlparse==0.4.4\n"
        "    # via\n"
        "    #   django\n"
        "    #   myproject (pyproject.toml)\n"
        "tzdata==2023.3\n"
        "    # via -c constraints.txt, django\n"
        "setuptools==68.0.0\n"
        "    # via unknown-parent\n",
    )
    got = by_key(read_lockfile(path))
    assert got["django@4.2.0"].direct
    assert not got["asgiref@3.7.2"].direct
    assert got["asgiref@3.7.2"].paths == (("django", "asgiref"),)
    assert got["sqlparse@0.4.4"].direct
    assert got["sqlparse@0.4.4"].paths == (("sqlparse",),)  # only the shortest paths
    assert not got["tzdata@2023.3"].direct
    assert got["setuptools@68.0.0"].direct  # a parent not in the file is the project itself


def test_via_annotations_inline_style(tmp_path: Path) -> None:
    # ``uv pip compile --annotation-style line`` (pip-compile writes the same)
    path = write(
        tmp_path,
        "requirements.txt",
        "#    uv pip compile l.in --annotation-style line -o requirements.txt\n"
        "certifi==2024.2.2          # via requests, httpx\n"
        "httpx==0.27.0              # via -r l.in\n"
        "idna==3.7 \\\n"
        "    --hash=sha256:aa        # via requests\n"
        "requests==2.31.0           # via -r l.in\n"
        "sqlparse==0.4.4            # via myproject (pyproject.toml)\n"
        "six==1.16.0                # pinned by hand\n",
    )
    deps = read_lockfile(path)
    got = by_key(deps)
    assert names(deps, direct=True) == {"httpx", "requests", "sqlparse", "six"}
    assert set(got["certifi@2024.2.2"].paths) == {("requests", "certifi"), ("httpx", "certifi")}
    assert got["idna@3.7"].paths == (("requests", "idna"),)
    assert got["idna@3.7"].integrity == "sha256:aa"


PINNED = ["alpha", "beta", "gamma", "delta"]
PARENTS = [*PINNED, "-r requirements.in", "app (pyproject.toml)"]
VIA = st.lists(st.sampled_from(PARENTS), max_size=3, unique=True)


@PROPERTY
@given(st.lists(VIA, min_size=len(PINNED), max_size=len(PINNED)))
def test_inline_and_split_via_agree(tmp_path: Path, parents: list[list[str]]) -> None:
    split, inline = [], []
    for name, via in zip(PINNED, parents, strict=True):
        split.append(f"{name}==1.0")
        if len(via) == 1:
            split.append(f"    # via {via[0]}")
        elif via:
            split.extend(["    # via", *(f"    #   {item}" for item in via)])
        inline.append(f"{name}==1.0  # via {', '.join(via)}" if via else f"{name}==1.0")

    def summary(lines: list[str]) -> list[tuple[object, ...]]:
        deps = read_lockfile(write(tmp_path, "requirements.txt", "\n".join(lines) + "\n"))
        return [(d.name, d.direct, d.paths) for d in deps]

    assert summary(inline) == summary(split)


def test_short_options_with_attached_values(tmp_path: Path) -> None:
    # pip (optparse) reads "-eVALUE" as "-e VALUE", whatever VALUE holds
    write(tmp_path, "reqs=1.txt", "idna==3.4\n")
    path = write(
        tmp_path,
        "requirements.txt",
        "-egit+https://git.example/a/b.git#egg=b\n"
        "-ihttps://index.example/simple?a=b\n"
        "-rreqs=1.txt\n"
        "six==1.16.0\n",
    )
    report = read_lockfile_report(path)
    assert [d.key for d in report.dependencies] == ["pypi:idna@3.4", "pypi:six@1.16.0"]
    assert [(s.name, s.kind, s.source) for s in report.skipped] == [
        ("b", "git", "git+https://git.example/a/b.git#egg=b")
    ]


def test_arbitrary_equality_may_hold_a_slash(tmp_path: Path) -> None:
    report = read_lockfile_report(write(tmp_path, "requirements.txt", "foo===1.0/abc\n"))
    assert [d.key for d in report.dependencies] == ["pypi:foo@1.0/abc"]
    assert report.skipped == ()


def test_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"# pins\r\nsix==1.16.0 \\\r\n    --hash=sha256:aa\r\nidna==3.4\r\n")
    got = by_key(read_lockfile(path))
    assert got["six@1.16.0"].integrity == "sha256:aa"
    assert got["idna@3.4"].location is not None and got["idna@3.4"].location.line == 4


def test_continuation_at_end_of_file(tmp_path: Path) -> None:
    path = write(tmp_path, "requirements.txt", "six==1.16.0 \\")
    assert [d.key for d in read_lockfile(path)] == ["pypi:six@1.16.0"]


def test_same_pin_twice_is_one_dependency(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "requirements.txt",
        'numpy==1.26.0 ; python_version >= "3.9"\nnumpy==1.26.0 ; python_version < "3.9"\n',
    )
    [dep] = read_lockfile(path)
    assert dep.marker is None  # the two markers together cover everything


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("six==1.16.0\nrequests>=2\n", 2, "'requests>=2' is not pinned"),
        ("requests\n", 1, "not pinned"),
        ("six==1.16.0\nrequests==2.*\n", 2, "not pinned"),
        ("foo==1.0,==2.0\n", 1, "'foo==1.0,==2.0' is not pinned"),
        ("six==1.16.0\nfoo==1.0, >=2\n", 2, "not pinned"),
        ("flask~=2.0 ; python_version > '3'\n", 1, "pip-compile"),
        ("six==1.16.0\n\nnot a requirement!!\n", 3, "not a valid requirement"),
        ("--frobnicate\n", 1, "unknown option '--frobnicate'"),
        ("six==1.16.0 --no-deps\n", 1, "unknown option '--no-deps'"),
        ("-r\n", 1, "needs a value"),
        ("six==1.16.0\n-r missing.txt\n", 2, "not found: missing.txt"),
        ("-r https://example.invalid/reqs.txt\n", 1, "remote requirement files"),
        ("six==1.16.0 --hash 'unclosed\n", 1, "cannot split"),
    ],
)
def test_errors(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "requirements.txt", text)
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert message in str(info.value)


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    main = write(tmp_path, "requirements.txt", "-r sub/dev.txt\n")
    sub = write(tmp_path, "sub/dev.txt", "# dev tools\npytest\n")
    with pytest.raises(LockfileError) as info:
        read_lockfile(main)
    assert info.value.path == str(sub) and info.value.line == 2


def test_included_file_not_utf8(tmp_path: Path) -> None:
    main = write(tmp_path, "requirements.txt", "-r latin.txt\n")
    (tmp_path / "latin.txt").write_bytes(b"six==1.16.0\n# caf\xe9\n")
    with pytest.raises(LockfileError) as info:
        read_lockfile(main)
    assert info.value.path == str(tmp_path / "latin.txt") and info.value.line == 2
