"""npm package-lock.json / npm-shrinkwrap.json, lockfileVersion 1, 2 and 3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.errors import LockfileError
from custody.lockfiles import read_lockfile, read_lockfile_report
from custody.model import Ecosystem
from tests.lockfiles.helpers import FIXTURES, PROPERTY, by_key, copy_fixture, line_text, names

WORKSPACES = ["npm-workspaces-v1", "npm-workspaces-v2", "npm-workspaces-v3"]


def write_lock(directory: Path, data: dict[str, Any], name: str = "package-lock.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def test_v3_real_lockfile() -> None:
    path = FIXTURES / "npm-v3" / "package-lock.json"
    deps = read_lockfile(path)
    got = by_key(deps)
    assert set(got) == {
        "duplexer@0.1.2",
        "event-stream@3.3.5",
        "from@0.1.7",
        "is-number@7.0.0",
        "left-pad@1.3.0",
        "map-stream@0.0.7",
        "pause-stream@0.0.11",
        "split@1.0.1",
        "stream-combiner@0.2.2",
        "through@2.3.8",
    }
    assert all(d.ecosystem is Ecosystem.NPM for d in deps)
    assert names(deps, direct=True) == {"event-stream", "left-pad", "is-number"}
    assert names(deps, dev=True) == {"left-pad"}
    assert names(deps, optional=True) == {"is-number"}
    es = got["event-stream@3.3.5"]
    assert es.paths == (("event-stream",),)
    assert es.integrity is not None and es.integrity.startswith("sha512-")
    assert es.resolved == "https://registry.example/event-stream/-/event-stream-3.3.5.tgz"
    assert got["split@1.0.1"].paths == (("event-stream", "split"),)
    assert not got["split@1.0.1"].direct
    for dep in deps:
        assert dep.location is not None and dep.location.path == str(path)
        assert f'"node_modules/{dep.name}": {{' in line_text(path, dep.location.line)


@pytest.mark.parametrize("folder", WORKSPACES)
def test_workspaces_nesting_aliases_links(folder: str) -> None:
    path = FIXTURES / folder / "package-lock.json"
    report = read_lockfile_report(path)
    got = by_key(list(report.dependencies))
    # nested node_modules: one release, three parents, all kept
    through = got["through@2.3.8"]
    assert not through.direct
    assert set(through.paths) == {
        ("event-stream", "through"),
        ("event-stream", "pause-stream", "through"),
        ("event-stream", "stream-combiner", "through"),
    }
    assert got["through@2.2.7"].direct
    assert got["through@2.2.7"].paths == (("through",),)
    # the alias "lp": "npm:left-pad@1.2.0" is the release left-pad@1.2.0
    assert got["left-pad@1.2.0"].direct
    assert got["left-pad@1.2.0"].paths == (("left-pad",),)
    # a workspace's own dependencies are direct, reached through the workspace
    assert got["left-pad@1.3.0"].direct
    assert got["left-pad@1.3.0"].paths == (("@fixture/app", "left-pad"),)
    assert got["is-number@7.0.0"].dev
    assert "lp" not in {d.name for d in report.dependencies}
    # the workspace and the file: folder are not registry releases: reported, not returned
    assert {(s.name, s.kind) for s in report.skipped} == {
        ("@fixture/app", "local"),
        ("localdep", "local"),
    }
    assert "localdep" not in got and "@fixture/app" not in {d.name for d in report.dependencies}


def test_all_lockfile_versions_agree() -> None:
    def summary(folder: str) -> set[tuple[Any, ...]]:
        deps = read_lockfile(FIXTURES / folder / "package-lock.json")
        return {(d.name, d.version, d.direct, frozenset(d.paths), d.dev, d.integrity) for d in deps}

    v1, v2, v3 = (summary(f) for f in WORKSPACES)
    assert v1 == v2 == v3


@pytest.mark.parametrize("folder", WORKSPACES)
def test_locations_point_at_the_entry(folder: str) -> None:
    path = FIXTURES / folder / "package-lock.json"
    for dep in read_lockfile(path):
        assert dep.location is not None
        text = line_text(path, dep.location.line)
        assert text.strip().endswith("{")
        key = text.strip().split('"')[1]
        assert key.rsplit("/", 1)[-1] in (dep.name, "lp", dep.name.rsplit("/", 1)[-1])


def test_v1_without_package_json_guesses_direct(tmp_path: Path) -> None:
    copy_fixture("npm-workspaces-v1", tmp_path, "package-lock.json")
    deps = read_lockfile(tmp_path / "package-lock.json")
    # nothing requires these top-level entries, so they are taken as the project's own; the
    # guess misses through@2.2.7, which split's "through": "2" also resolves to
    assert names(deps, direct=True) == {"event-stream", "left-pad", "is-number"}
    assert by_key(deps)["through@2.2.7"].paths == (("event-stream", "split", "through"),)


def test_v1_cycle_without_package_json(tmp_path: Path) -> None:
    # x and y require each other and nothing requires them: one of them is the project's own.
    # a and b are a cycle below them (y requires a): reached through y, not taken as direct.
    lock = {
        "lockfileVersion": 1,
        "dependencies": {
            "a": {"version": "1.0.0", "requires": {"b": "1.0.0"}},
            "b": {"version": "1.0.0", "requires": {"a": "1.0.0", "c": "^1.0.0"}},
            "c": {"version": "1.0.0"},
            "d": {"version": "1.0.0"},
            "x": {"version": "1.0.0", "requires": {"y": "1.0.0"}},
            "y": {"version": "1.0.0", "requires": {"x": "1.0.0", "a": "1.0.0"}},
        },
    }
    deps = read_lockfile(write_lock(tmp_path, lock))
    got = by_key(deps)
    assert names(deps, direct=True) == {"d", "x"}
    assert got["y@1.0.0"].paths == (("x", "y"),)
    assert got["b@1.0.0"].paths == (("x", "y", "a", "b"),)
    assert got["c@1.0.0"].paths == (("x", "y", "a", "b", "c"),)


TOP_NAMES = ["a", "b", "c", "d", "e", "f"]


@PROPERTY
@given(st.dictionaries(st.sampled_from(TOP_NAMES), st.sets(st.sampled_from(TOP_NAMES)), min_size=1))
def test_v1_without_package_json_every_package_has_a_path(
    tmp_path: Path, requires: dict[str, set[str]]
) -> None:
    lock = {
        "lockfileVersion": 1,
        "dependencies": {
            name: {"version": "1.0.0", "requires": {n: "1.0.0" for n in sorted(wanted)}}
            for name, wanted in requires.items()
        },
    }
    deps = read_lockfile(write_lock(tmp_path, lock))
    direct = names(deps, direct=True)
    for dep in deps:
        assert dep.paths and all(p[0] in direct and p[-1] == dep.name for p in dep.paths)
    for start in direct:  # no package taken as direct is below another one
        seen, work = {start}, [start]
        while work:
            for child in requires[work.pop()] & requires.keys():
                if child not in seen:
                    seen.add(child)
                    work.append(child)
        assert not (seen - {start}) & direct


def test_shrinkwrap_is_the_same_format(tmp_path: Path) -> None:
    copy_fixture("npm-v3", tmp_path)
    shutil.move(tmp_path / "package-lock.json", tmp_path / "npm-shrinkwrap.json")
    deps = read_lockfile(tmp_path / "npm-shrinkwrap.json")
    assert (
        by_key(deps).keys()
        == by_key(read_lockfile(FIXTURES / "npm-v3" / "package-lock.json")).keys()
    )


def test_v3_non_registry_sources(tmp_path: Path) -> None:
    lock = {
        "name": "edge",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {
                "name": "edge",
                "dependencies": {
                    "gitdep": "git+https://git.example/user/gitdep.git#v1",
                    "shorthand": "user/shorthand#main",
                    "tarball": "https://files.example/tarball-1.0.0.tgz",
                    "localtgz": "file:vendor/localtgz-1.0.0.tgz",
                    "withbundle": "^1.0.0",
                    "@scope/pkg": "^2.0.0",
                },
                "devDependencies": {"devopt": "^1.0.0", "devdep": "^1.0.0"},
                "optionalDependencies": {"devopt": "^1.0.0"},
            },
            "node_modules/@scope/pkg": {
                "version": "2.0.0",
                "integrity": "sha512-scope",
                "dependencies": {"ms": "^1.0.0"},
                "peerDependencies": {"peer-dep": "*", "missing-peer": "*"},
            },
            "node_modules/@scope/pkg/node_modules/ms": {"version": "1.0.0"},
            "node_modules/devdep": {
                "version": "1.0.0",
                "dev": True,
                "optionalDependencies": {"dev-opt-child": "^1.0.0"},
            },
            "node_modules/dev-opt-child": {"version": "1.0.0", "dev": True, "optional": True},
            "node_modules/devopt": {"version": "1.0.0", "devOptional": True},
            "node_modules/gitdep": {
                "version": "1.0.0",
                "resolved": "git+ssh://git@git.example/user/gitdep.git#0123abc",
                "dependencies": {"ms": "^2.0.0"},
            },
            "node_modules/localtgz": {
                "version": "1.0.0",
                "resolved": "file:vendor/localtgz-1.0.0.tgz",
                "integrity": "sha512-local",
            },
            "node_modules/ms": {"version": "2.0.0", "integrity": "sha512-ms"},
            "node_modules/peer-dep": {"version": "3.0.0", "peer": True},
            "node_modules/shorthand": {"version": "0.1.0", "resolved": "user/shorthand#main"},
            "node_modules/tarball": {
                "version": "1.0.0",
                "resolved": "https://files.example/tarball-1.0.0.tgz",
                "integrity": "sha512-tarball",
            },
            "node_modules/withbundle": {
                "version": "1.0.0",
                "bundleDependencies": ["inner"],
                "dependencies": {"inner": "^1.0.0"},
            },
            "node_modules/withbundle/node_modules/inner": {"version": "1.0.0", "inBundle": True},
        },
    }
    path = write_lock(tmp_path, lock)
    report = read_lockfile_report(path)
    got = by_key(list(report.dependencies))
    assert set(got) == {
        "@scope/pkg@2.0.0",
        "ms@1.0.0",
        "ms@2.0.0",
        "devdep@1.0.0",
        "dev-opt-child@1.0.0",
        "devopt@1.0.0",
        "peer-dep@3.0.0",
        "withbundle@1.0.0",
    }
    assert {s.name: s.kind for s in report.skipped} == {
        "gitdep": "git",
        "shorthand": "git",
        "tarball": "url",
        "localtgz": "file",
        "inner": "bundled",
    }
    tarball = next(s for s in report.skipped if s.name == "tarball")
    assert tarball.source == "https://files.example/tarball-1.0.0.tgz"
    assert tarball.location is not None and tarball.location.line is not None
    # a registry dependency of a git dependency is still checked, with its path
    assert got["ms@2.0.0"].paths == (("gitdep", "ms"),)
    assert not got["ms@2.0.0"].direct
    assert got["ms@1.0.0"].paths == (("@scope/pkg", "ms"),)
    assert got["peer-dep@3.0.0"].paths == (("@scope/pkg", "peer-dep"),)
    assert got["devopt@1.0.0"].optional and not got["devopt@1.0.0"].dev
    assert got["dev-opt-child@1.0.0"].dev and got["dev-opt-child@1.0.0"].optional
    assert got["devdep@1.0.0"].dev and not got["devdep@1.0.0"].optional


def test_v1_edge_cases(tmp_path: Path) -> None:
    lock = {
        "name": "old",
        "lockfileVersion": 1,
        "requires": True,
        "dependencies": {
            "a": {
                "version": "1.0.0",
                "integrity": "sha512-a",
                "requires": {"b": "^1.0.0", "c": "git+https://git.example/c.git"},
                "dependencies": {
                    "b": {
                        "version": "1.5.0",
                        "bundled": True,
                    },
                    "c": {"version": "git+https://git.example/c.git#abc", "from": "git+..."},
                },
            },
            "b": {"version": "2.0.0", "dev": True},
            "remote": {"version": "https://files.example/remote-1.0.0.tgz"},
            "alias": {"version": "npm:real-name@3.1.4", "integrity": "sha512-real"},
        },
    }
    (tmp_path / "package.json").write_text(
        json.dumps({"dependencies": {"a": "^1", "remote": "https://x", "alias": "npm:real-name@3"}})
    )
    report = read_lockfile_report(write_lock(tmp_path, lock))
    got = by_key(list(report.dependencies))
    assert set(got) == {"a@1.0.0", "b@2.0.0", "real-name@3.1.4"}
    assert names(list(report.dependencies), direct=True) == {"a", "real-name"}
    assert got["b@2.0.0"].dev and got["b@2.0.0"].paths == ()
    assert {(s.name, s.kind) for s in report.skipped} == {
        ("b", "bundled"),
        ("c", "git"),
        ("remote", "url"),
    }


RESOLVED_KINDS: dict[str, str | None] = {
    # http(s) tarballs stay registry releases that keep ``resolved``: a tarball that is not
    # the registry's own for this release is found by comparing them, never skipped
    "https://registry.example/ms/-/ms-2.0.0.tgz": None,
    "https://evil.example/ms-2.1.3.tgz": None,
    "git+ssh://git@git.example/user/ms.git#0123abc": "git",
    "git://git.example/user/ms.git#0123abc": "git",
    "github:user/ms#0123abc": "git",
    "file:vendor/ms-2.1.3.tgz": "file",
    "link:../ms": "local",
}


@pytest.mark.parametrize("lockfile_version", [1, 3])
@pytest.mark.parametrize(("resolved", "kind"), RESOLVED_KINDS.items())
def test_resolved_is_recorded_or_skipped(
    tmp_path: Path, lockfile_version: int, resolved: str, kind: str | None
) -> None:
    entry = {"version": "2.1.3", "resolved": resolved, "integrity": "sha512-ms"}
    if lockfile_version == 1:
        lock: dict[str, Any] = {"lockfileVersion": 1, "dependencies": {"ms": entry}}
    else:
        root = {"dependencies": {"ms": "^2.1.0"}}
        lock = {"lockfileVersion": 3, "packages": {"": root, "node_modules/ms": entry}}
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"ms": "^2.1.0"}}))
    path = write_lock(tmp_path, lock)
    report = read_lockfile_report(path)
    if kind is None:
        [dep] = report.dependencies
        assert (dep.key, dep.resolved, dep.integrity) == ("npm:ms@2.1.3", resolved, "sha512-ms")
        assert dep.direct and report.skipped == ()
    else:
        assert report.dependencies == ()
        [skipped] = report.skipped
        assert (skipped.name, skipped.kind, skipped.source) == ("ms", kind, resolved)
        assert skipped.location is not None
        assert line_text(path, skipped.location.line).endswith('ms": {')


def test_duplicates_are_merged(tmp_path: Path) -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"dependencies": {"x": "1", "y": "1"}},
            "node_modules/x": {"version": "1.0.0", "dependencies": {"z": "1"}},
            "node_modules/x/node_modules/z": {"version": "1.0.0", "dev": True},
            "node_modules/y": {"version": "1.0.0", "dependencies": {"z": "1"}},
            "node_modules/y/node_modules/z": {"version": "1.0.0"},
        },
    }
    path = write_lock(tmp_path, lock)
    deps = read_lockfile(path)
    z = by_key(deps)["z@1.0.0"]
    assert len([d for d in deps if d.name == "z"]) == 1
    assert set(z.paths) == {("x", "z"), ("y", "z")}
    assert not z.dev  # one copy is needed in production
    assert z.location is not None  # the first copy
    assert '"node_modules/x/node_modules/z": {' in line_text(path, z.location.line)


def test_minified_json_still_has_lines(tmp_path: Path) -> None:
    lock = {"lockfileVersion": 3, "packages": {"": {}, "node_modules/x": {"version": "1.0.0"}}}
    path = tmp_path / "package-lock.json"
    path.write_text(json.dumps(lock))
    [dep] = read_lockfile(path)
    assert dep.location is not None and dep.location.line == 1
    assert dep.direct is False and dep.paths == ()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            '{\n  "lockfileVersion": 3,\n  "packages": {\n    "": {}\n    "node_modules/a": {}\n'
            "  }\n}",
            5,
            "not valid JSON",
        ),
        ('{\n  "lockfileVersion": 3,\n  "packages": {\n', 4, "not valid JSON"),
        ("[]", 1, "must be a table/object"),
        ('{\n  "name": "x",\n  "lockfileVersion": 4\n}', 3, "unsupported lockfileVersion 4"),
        ('{\n  "lockfileVersion": "3"\n}', 2, "lockfileVersion must be"),
        ('{\n  "lockfileVersion": 3\n}', 2, "needs a 'packages' object"),
        ('{\n  "lockfileVersion": 3,\n  "packages": []\n}', 3, '"packages" must be'),
        (
            '{\n "lockfileVersion": 3,\n "packages": {\n  "": {},\n  "node_modules/a": {\n'
            '   "resolved": "x"\n  }\n }\n}',
            5,
            "version must be a non-empty string",
        ),
        (
            '{\n "lockfileVersion": 3,\n "packages": {\n  "node_modules/a": {\n'
            '   "version": "1.0.0",\n   "dependencies": ["b"]\n  }\n }\n}',
            4,
            "dependencies must be a table/object",
        ),
        (
            '{\n "lockfileVersion": 1,\n "dependencies": {\n  "a": {\n   "version": "1"\n  },\n'
            '  "b": 7\n }\n}',
            7,
            "dependency 'b' must be a table/object",
        ),
        (
            '{\n "lockfileVersion": 1,\n "dependencies": {\n  "a": {\n   "version": "npm:b"\n'
            "  }\n }\n}",
            4,
            "has no exact version",
        ),
        # a registry release has one exact version, not a range or a tag
        (
            '{\n "lockfileVersion": 3,\n "packages": {\n  "": {"dependencies": {"ms": "^2"}},\n'
            '  "node_modules/ms": {\n   "version": "^2.1.0"\n  }\n }\n}',
            5,
            "package 'ms': version '^2.1.0' is not an exact version",
        ),
        (
            '{\n "lockfileVersion": 1,\n "dependencies": {\n  "a": {\n   "version": "latest"\n'
            "  }\n }\n}",
            4,
            "version 'latest' is not an exact version",
        ),
        (
            '{\n "lockfileVersion": 1,\n "dependencies": {\n  "a": {\n'
            '   "version": "npm:b@^1.0.0"\n  }\n }\n}',
            4,
            "package 'b': version '^1.0.0' is not an exact version",
        ),
        # an entry that is not an object still has its line
        (
            '{\n "lockfileVersion": 3,\n "packages": {\n  "": {},\n  "node_modules/a": null\n }\n}',
            5,
            "package entry 'node_modules/a' must be a table/object, not null",
        ),
        ('{\n "lockfileVersion": 3,\n "packages": {\n  "": "x"\n }\n}', 4, "not a string"),
        (
            '{\n "lockfileVersion": 1,\n "dependencies": {\n  "a": {\n   "version": "1.0.0",\n'
            '   "requires": {"b": "1.0.0"},\n   "dependencies": {\n    "b": null\n   }\n  },\n'
            '  "b": {"version": "1.0.0"}\n }\n}',
            8,  # the nested "b", not the name in "requires" nor the top-level "b"
            "dependency 'b' must be a table/object, not null",
        ),
    ],
)
def test_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    path = tmp_path / "package-lock.json"
    path.write_text(text)
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert message in str(info.value)


def test_empty_project(tmp_path: Path) -> None:
    path = write_lock(tmp_path, {"lockfileVersion": 3, "packages": {"": {"name": "empty"}}})
    assert read_lockfile(path) == []
