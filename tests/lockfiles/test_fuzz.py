"""Hypothesis: whatever the input, a reader returns dependencies or raises ``LockfileError``
with the file named; never another exception."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.errors import LockfileError
from custody.lockfiles.npm import PackageLockReader
from custody.lockfiles.poetry import PoetryLockReader
from custody.lockfiles.pylock import PylockReader
from custody.lockfiles.registry import DetectingReader, detect_reader
from custody.lockfiles.requirements import RequirementsReader
from custody.lockfiles.uv import UvLockReader
from custody.model import LockedDependency

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

READERS: dict[str, DetectingReader] = {
    "package-lock.json": PackageLockReader(),
    "requirements.txt": RequirementsReader(),
    "poetry.lock": PoetryLockReader(),
    "uv.lock": UvLockReader(),
    "pylock.toml": PylockReader(),
}


def check(reader: DetectingReader, path: Path, text: str) -> None:
    try:
        deps = reader.read(path, text)
    except LockfileError as exc:
        assert exc.path == str(path)
        assert exc.line is None or exc.line >= 1
        return
    assert isinstance(deps, list)
    assert all(isinstance(d, LockedDependency) for d in deps)
    assert len({(d.name, d.version) for d in deps}) == len(deps)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------ arbitrary text


@pytest.mark.parametrize("name", READERS)
@FUZZ
@given(text=st.text())
def test_any_text(workdir: Path, name: str, text: str) -> None:
    check(READERS[name], workdir / name, text)


@FUZZ
@given(text=st.text())
def test_any_text_through_detection(workdir: Path, text: str) -> None:
    path = workdir / "unknown.lock"
    try:
        reader = detect_reader(path, text)
    except LockfileError as exc:
        assert exc.path == str(path)
        return
    check(reader, path, text)


REQUIREMENT_PIECES = [
    "requests", "Django_x", "pkg.name", "==", "===", ">=", "1.0", "2.*", "[extra]", "[a,b]",
    ";", " python_version < '3.9'", ' sys_platform == "win32"', " --hash=sha256:ab",
    " --hash", " sha512:cd", " \\", "\\\n", "\n", " ", "#", "# via", "#   requests",
    "-r", "-r ", "--requirement=", "-c ", "-e ", ".", "x.txt", "../", "-i ", "--pre",
    "@", " @ ", "https://files.example/x-1.0.whl", "git+https://git.example/x.git",
    "'", '"', "--", "-", "file:", ".tar.gz",
]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(REQUIREMENT_PIECES), max_size=40))
def test_requirement_like_lines(workdir: Path, pieces: list[str]) -> None:
    (workdir / "x.txt").write_text("six==1.16.0\n-r requirements.txt\n")
    check(READERS["requirements.txt"], workdir / "requirements.txt", "".join(pieces))


GOOD_LINE = st.tuples(
    st.sampled_from(["requests", "Rich", "idna", "six"]),
    st.sampled_from(["==1.0", "===2.0", "==1.0.post1", ">=1"]),
    st.sampled_from(["", " ; python_version < '3.12'", ";sys_platform=='win32'"]),
    st.sampled_from(["", " --hash=sha256:ab", " \\\n    --hash=sha256:ab \\\n    --hash=md5:cd"]),
    st.sampled_from(
        ["", "\n    # via requests", "\n    # via\n    #   rich\n    #   -r x.in", "  # c"]
    ),
).map("".join)


@FUZZ
@given(st.lists(GOOD_LINE | st.sampled_from(REQUIREMENT_PIECES), max_size=12))
def test_mostly_pinned_lines(workdir: Path, lines: list[str]) -> None:
    check(READERS["requirements.txt"], workdir / "requirements.txt", "\n".join(lines))


# ------------------------------------------------------------- structured but wrong JSON

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.sampled_from(["", "1.0.0", "npm:x@1.0.0", "npm:@s/y", "git+https://g.example/x.git",
                     "file:../x", "x/y", "https://files.example/x.tgz", "sha512-x", "^1.0.0"]),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
NPM_KEYS = st.sampled_from(
    ["", "node_modules/a", "node_modules/b", "node_modules/a/node_modules/b", "node_modules/@s/c",
     "packages/w", "node_modules/w", "node_modules/", "a", "node_modules/a/node_modules/a"]
)  # fmt: skip
DEP_NAMES = st.sampled_from(["a", "b", "@s/c", "w", "missing", ""])
NPM_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "version": SCALARS,
    "name": SCALARS,
    "resolved": SCALARS,
    "integrity": SCALARS,
    "link": st.booleans() | SCALARS,
    "dev": st.booleans(),
    "optional": st.booleans(),
    "devOptional": st.booleans(),
    "inBundle": st.booleans(),
    "bundled": st.booleans(),
    "dependencies": st.dictionaries(DEP_NAMES, SCALARS, max_size=3) | JSON,
    "devDependencies": st.dictionaries(DEP_NAMES, SCALARS, max_size=3),
    "peerDependencies": st.dictionaries(DEP_NAMES, SCALARS, max_size=3),
    "requires": st.dictionaries(DEP_NAMES, SCALARS, max_size=3) | st.booleans(),
}
SPECS = st.sampled_from(
    ["^1.0.0", "1.0.0", "npm:b@1.0.0", "file:../w", "git+https://g.example/x.git", "x/y", "*"]
)
# mostly well formed: reaches the graph code, not only the type checks
GOOD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "version": st.sampled_from(["1.0.0", "2.0.0", "npm:b@1.0.0", "file:../w", "x/y"]),
    "resolved": st.sampled_from(["https://files.example/a-1.0.0.tgz", "git+ssh://g/x.git", "w"]),
    "integrity": st.just("sha512-x"),
    "link": st.booleans(),
    "dev": st.booleans(),
    "optional": st.booleans(),
    "devOptional": st.booleans(),
    "inBundle": st.booleans(),
    "bundled": st.booleans(),
    "dependencies": st.dictionaries(DEP_NAMES, SPECS, max_size=3),
    "optionalDependencies": st.dictionaries(DEP_NAMES, SPECS, max_size=2),
    "peerDependencies": st.dictionaries(DEP_NAMES, SPECS, max_size=2),
    "requires": st.dictionaries(DEP_NAMES, SPECS, max_size=3),
}
OPTIONAL_GOOD = {k: v for k, v in GOOD_FIELDS.items() if k != "version"}
NPM_ENTRY = (
    st.fixed_dictionaries({}, optional=NPM_FIELDS)
    | JSON
    | st.fixed_dictionaries({"version": GOOD_FIELDS["version"]}, optional=OPTIONAL_GOOD)
    | st.fixed_dictionaries({"version": GOOD_FIELDS["version"]}, optional=OPTIONAL_GOOD)
)
V1_TREE = st.recursive(
    st.dictionaries(
        DEP_NAMES,
        st.fixed_dictionaries({}, optional=NPM_FIELDS)
        | st.fixed_dictionaries({"version": GOOD_FIELDS["version"]}, optional=OPTIONAL_GOOD),
        max_size=3,
    ),
    lambda inner: st.dictionaries(
        DEP_NAMES,
        st.fixed_dictionaries(
            {"version": GOOD_FIELDS["version"]}, optional={**OPTIONAL_GOOD, "dependencies": inner}
        ),
        max_size=3,
    ),
    max_leaves=8,
)
NPM_LOCK = st.fixed_dictionaries(
    {"lockfileVersion": st.sampled_from([1, 2, 3, 0, 4, "3", None, True])},
    optional={
        "packages": st.dictionaries(NPM_KEYS, NPM_ENTRY, max_size=8) | JSON,
        "dependencies": V1_TREE | JSON,
        "name": SCALARS,
    },
)


@FUZZ
@given(lock=NPM_LOCK, indent=st.booleans())
def test_structured_package_lock(workdir: Path, lock: dict[str, Any], indent: bool) -> None:
    text = json.dumps(lock, indent=2 if indent else None)
    check(READERS["package-lock.json"], workdir / "package-lock.json", text)


# ------------------------------------------------------------- structured but wrong TOML

TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(-2, 3),
    st.floats(allow_nan=False, allow_infinity=False).filter(math.isfinite),
    st.sampled_from(["", "1.0", "a", "Bad Name", "requests", "x-1.0-py3-none-any.whl", ".",
                     "sha256:ab", "https://files.example/x-1.0.tar.gz", "1.0.0", "main", "dev"]),
)  # fmt: skip
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text("abc", max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
PY_NAMES = st.sampled_from(["a", "b", "requests", "A_b", "root", "bad name", ""])
PY_DEP = st.fixed_dictionaries(
    {"name": PY_NAMES},
    optional={"version": TOML_SCALARS, "marker": TOML_SCALARS, "extra": TOML_VALUES,
              "source": TOML_VALUES},
)  # fmt: skip
SOURCES = st.sampled_from(
    [{"registry": "https://index.example/simple"}, {"editable": "."}, {"virtual": "."},
     {"git": "https://git.example/x.git"}, {"path": "x.whl"}, {"url": "https://x"}, {},
     {"registry": "a", "git": "b"}, {"nope": "x"}]
) | TOML_VALUES  # fmt: skip
ARTIFACT = st.fixed_dictionaries(
    {}, optional={"url": TOML_SCALARS, "hash": TOML_SCALARS, "name": TOML_SCALARS,
                  "hashes": st.dictionaries(st.sampled_from(["sha256", "md5"]), TOML_SCALARS)
                  | TOML_VALUES}
)  # fmt: skip
PY_PACKAGE = st.fixed_dictionaries(
    {"name": PY_NAMES},
    optional={
        "version": st.sampled_from(["1.0", "2.0"]) | TOML_SCALARS,
        "source": SOURCES,
        "dependencies": st.lists(PY_DEP, max_size=3)
        | st.dictionaries(PY_NAMES, TOML_VALUES, max_size=3)
        | TOML_VALUES,
        "optional-dependencies": st.dictionaries(
            st.sampled_from(["x", "y"]), st.lists(PY_DEP, max_size=2)
        ),
        "dev-dependencies": st.dictionaries(st.sampled_from(["dev"]), st.lists(PY_DEP, max_size=2)),
        "sdist": ARTIFACT | TOML_VALUES,
        "wheels": st.lists(ARTIFACT, max_size=2) | TOML_VALUES,
        "files": st.lists(
            st.fixed_dictionaries({"file": TOML_SCALARS, "hash": TOML_SCALARS}), max_size=2
        )
        | TOML_VALUES,
        "groups": st.lists(st.sampled_from(["main", "dev"]), max_size=2) | TOML_VALUES,
        "category": TOML_SCALARS,
        "optional": TOML_SCALARS,
        "markers": TOML_VALUES,
        "marker": TOML_SCALARS,
        "vcs": TOML_VALUES,
        "directory": TOML_VALUES,
        "archive": TOML_VALUES,
        "index": TOML_SCALARS,
    },
)
GOOD_DEP = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "requests", "root"])},
    optional={"marker": st.just("python_version < '3.12'"), "extra": st.just(["x"])},
)
GOOD_PACKAGE = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "b", "requests", "root", "A_b"]),
        "version": st.sampled_from(["1.0", "2.0"]),
        "source": st.sampled_from(
            [{"registry": "https://index.example/simple"}, {"editable": "."}, {"virtual": "."},
             {"git": "https://git.example/x.git"}]
        ),
    },
    optional={
        "dependencies": st.lists(GOOD_DEP, max_size=3),
        "optional-dependencies": st.dictionaries(st.just("x"), st.lists(GOOD_DEP, max_size=2)),
        "dev-dependencies": st.dictionaries(st.just("dev"), st.lists(GOOD_DEP, max_size=2)),
        "sdist": st.just({"url": "https://f.example/a.tar.gz", "hash": "sha256:ab"}),
        "wheels": st.lists(st.just({"name": "a-1.0-py3-none-any.whl", "hashes": {"a": "c"}})),
        "files": st.lists(st.just({"file": "a.whl", "hash": "sha256:ef"}), max_size=2),
        "groups": st.lists(st.sampled_from(["main", "dev"]), max_size=2),
        "markers": st.just("sys_platform == 'win32'"),
        "marker": st.just("sys_platform == 'win32'"),
        "vcs": st.just({"type": "git", "url": "https://git.example/x.git", "commit-id": "0"}),
    },
)  # fmt: skip
PY_PACKAGES = (
    st.lists(PY_PACKAGE, max_size=5)
    | TOML_VALUES
    | st.lists(GOOD_PACKAGE, max_size=6)
    | st.lists(GOOD_PACKAGE, max_size=6)
)
TOML_LOCKS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "uv.lock": st.fixed_dictionaries(
        {"version": st.sampled_from([1, 2, "1"])},
        optional={
            "package": PY_PACKAGES,
            "manifest": st.fixed_dictionaries(
                {}, optional={"members": st.lists(PY_NAMES, max_size=2)}
            )
            | TOML_VALUES,
        },
    ),
    "poetry.lock": st.fixed_dictionaries(
        {"package": PY_PACKAGES},
        optional={
            "metadata": st.fixed_dictionaries(
                {"content-hash": st.just("x")},
                optional={"files": st.dictionaries(PY_NAMES, TOML_VALUES, max_size=2)},
            )
            | TOML_VALUES
        },
    ),
    "pylock.toml": st.fixed_dictionaries(
        {"lock-version": st.sampled_from(["1.0", "1", "2.0", "", "x"]) | TOML_SCALARS},
        optional={"packages": PY_PACKAGES, "created-by": TOML_SCALARS},
    ),
}


@pytest.mark.parametrize("name", TOML_LOCKS)
@FUZZ
@given(data=st.data())
def test_structured_toml_locks(workdir: Path, name: str, data: st.DataObject) -> None:
    lock: dict[str, Any] = data.draw(TOML_LOCKS[name])
    text = tomlkit.dumps(lock)
    check(READERS[name], workdir / name, text)
