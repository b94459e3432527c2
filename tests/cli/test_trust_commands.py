"""``custody approve`` / ``trust`` / ``init --merge`` edit the trust file safely: through a
symbolic link, under a lock (concurrent runs keep every entry), never a read-only file, with
messages that print paths as they are; ``history`` and ``check`` spell UTC one way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from custody.demo.registry import serve
from custody.demo.story import documents, lockfile, tarballs
from custody.trust import load_trust_file
from tests.support.clients import Result, custody, project_env

TRUST = '# ours\n[[trusted."npm:leftish"]]\ncustodian = "npm:user/alice"\n'
LOCK = {
    "name": "app",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "packages": {
        "": {"name": "app", "version": "1.0.0", "dependencies": {"leftish": "1.0.0"}},
        "node_modules/leftish": {"version": "1.0.0"},
    },
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "custody.toml").write_text(TRUST)
    return root


def run(project: Path, *args: str) -> Result:
    return custody(*args, cwd=project, env=project_env(project))


def _approve(project: Path, ref: str, *extra: str) -> Result:
    return run(project, "approve", ref, "--reason", "read the diff", "--by", "me", *extra)


# -- 5. symbolic links ---------------------------------------------------------------------------


def test_approve_through_a_symlink_edits_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "org-trust.toml"
    shared.parent.mkdir()
    shared.write_text(TRUST)
    project = tmp_path / "app"
    project.mkdir()
    (project / "custody.toml").symlink_to(Path("..") / "shared" / "org-trust.toml")
    assert _approve(project, "npm:leftish@1.0.1").code == 0
    assert (project / "custody.toml").is_symlink()
    assert load_trust_file(shared).approval("npm:leftish", "1.0.1") is not None
    assert "# ours" in shared.read_text()
    assert sorted(p.name for p in shared.parent.iterdir()) == ["org-trust.toml"]


# -- 6. concurrent edits ------------------------------------------------------------------------


def test_concurrent_approvals_and_trusts_keep_every_entry(project: Path) -> None:
    env = project_env(project)
    argv = [sys.executable, "-m", "custody"]
    runs = [
        [*argv, "approve", f"npm:leftish@1.0.{i}", "-r", f"reason {i}", "--by", "me"]
        for i in range(6)
    ] + [[*argv, "trust", "npm:leftish", "-c", f"npm:user/u{i}"] for i in range(4)]
    procs = [
        subprocess.Popen(a, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for a in runs
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    trust = load_trust_file(project / "custody.toml")
    assert sorted(a.version for a in trust.approved["npm:leftish"]) == [
        f"1.0.{i}" for i in range(6)
    ]
    custodians = {e.custodian for e in trust.trusted["npm:leftish"]}
    assert custodians == {"npm:user/alice", *(f"npm:user/u{i}" for i in range(4))}
    assert sorted(p.name for p in project.iterdir()) == ["custody.toml"]


# -- 7. Rich markup in user data ------------------------------------------------------------------


def test_a_path_with_markup_is_printed_as_it_is(tmp_path: Path) -> None:
    project = tmp_path / "m[/x]" / "[red]app"
    project.mkdir(parents=True)
    (project / "custody.toml").write_text(TRUST)
    result = _approve(project, "npm:leftish@1.0.1")
    assert result.code == 0, result.stderr
    assert f"in {project / 'custody.toml'}" in result.stderr


# -- 8. trust --everywhere ----------------------------------------------------------------------


def test_trust_everywhere_writes_an_organisation_wide_entry(project: Path) -> None:
    result = run(project, "trust", "--everywhere", "-c", "github:my-org/*", "--note", "our CI")
    assert result.code == 0, result.stderr
    assert "github:my-org/* for every package" in result.stderr
    trust = load_trust_file(project / "custody.toml")
    assert [(e.custodian, e.note) for e in trust.trusted_everywhere] == [
        ("github:my-org/*", "our CI")
    ]
    again = run(project, "trust", "--everywhere", "-c", "github:my-org/*", "--note", "our CI")
    assert again.code == 0 and "already trusted" in again.stderr


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--everywhere", "-c", "npm:trusted-publisher/github"), "cannot be trusted everywhere"),
        (("--everywhere", "npm:leftish", "-c", "github:my-org/*"), "leave out"),
        (("-c", "github:my-org/*"), "--everywhere"),
        (("--everywhere", "-c", "npm:user/acme-*"), "not allowed in an account"),
    ],
)
def test_trust_everywhere_refuses_what_the_loader_refuses(
    project: Path, argv: tuple[str, ...], fragment: str
) -> None:
    result = run(project, "trust", *argv)
    assert result.code == 2, result.stderr
    assert fragment in result.stderr
    assert (project / "custody.toml").read_text() == TRUST


# -- 9. approve: exact versions, and a warning for what no lockfile here locks -----------------


@pytest.mark.parametrize(
    "ref",
    ["npm:leftish@1.x", "npm:leftish@1.0.x", "npm:leftish@latest", "npm:leftish@v1.0.1",
     "npm:leftish@1.0", "pypi:requests@latest", "pypi:requests@1.0.x", "npm:leftish@^1.0.0"],
)  # fmt: skip
def test_approve_refuses_what_cannot_be_an_exact_release(project: Path, ref: str) -> None:
    result = _approve(project, ref)
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert (project / "custody.toml").read_text() == TRUST


@pytest.mark.parametrize(
    "ref", ["npm:leftish@1.0.1", "npm:leftish@2.0.0-beta.1+build.5", "pypi:Requests@2.31.0"]
)
def test_approve_accepts_exact_releases(project: Path, ref: str) -> None:
    assert _approve(project, ref).code == 0


def test_approve_warns_when_no_lockfile_here_locks_the_release(project: Path) -> None:
    (project / "package-lock.json").write_text(json.dumps(LOCK))
    locked = _approve(project, "npm:leftish@1.0.0")
    assert locked.code == 0 and "warning" not in locked.stderr
    version = _approve(project, "npm:leftish@1.0.1")
    assert version.code == 0
    assert "warning: npm:leftish@1.0.1 is not locked here" in version.stderr
    assert "1.0.0" in version.stderr
    name = _approve(project, "npm:leftsh@1.0.0")
    assert name.code == 0
    assert "warning: npm:leftsh is in none of the lockfiles here" in name.stderr
    trust = load_trust_file(project / "custody.toml")
    assert trust.approval("npm:leftsh", "1.0.0") is not None


# -- 10. read-only files, directories ------------------------------------------------------------


def test_a_read_only_trust_file_is_refused(project: Path) -> None:
    path = project / "custody.toml"
    path.chmod(0o444)
    result = _approve(project, "npm:leftish@1.0.1")
    assert result.code == 2 and "read-only" in result.stderr
    assert path.read_text() == TRUST
    result = run(project, "trust", "npm:leftish", "-c", "npm:user/bob")
    assert result.code == 2 and "read-only" in result.stderr
    assert path.read_text() == TRUST and os.stat(path).st_mode & 0o777 == 0o444


def test_a_custody_toml_directory_is_an_error_not_skipped(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "custody.toml").write_text(TRUST)  # the parent's file must not be used
    project = tmp_path / "inner"
    (project / "custody.toml").mkdir(parents=True)
    (project / "package-lock.json").write_text(json.dumps(LOCK))
    for argv in (("check",), ("approve", "npm:leftish@1.0.1", "-r", "x", "--by", "me")):
        result = run(project, *argv)
        assert result.code == 2, result.stderr
        assert "custody.toml: is a directory" in result.stderr
    assert (tmp_path / "custody.toml").read_text() == TRUST


# -- init --merge, and UTC spelled Z --------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_registry() -> Iterator[str]:
    with serve(documents(), tarballs()) as base:
        yield base


def _demo_project(root: Path, registry: str) -> Path:
    project = root / "wallet"
    project.mkdir()
    text = json.dumps(lockfile("3.3.5", None)).replace("{REGISTRY}", registry.rstrip("/"))
    (project / "package-lock.json").write_text(text)
    return project


def test_init_merge_that_adds_nothing_does_not_say_wrote(
    tmp_path: Path, demo_registry: str
) -> None:
    project = _demo_project(tmp_path, demo_registry)
    env = project_env(project, demo_registry)
    first = custody("init", cwd=project, env=env)
    assert first.code == 0, first.stderr
    assert "wrote" in first.stderr
    before = (project / "custody.toml").read_bytes()
    again = custody("init", "--merge", cwd=project, env=env)
    assert again.code == 0, again.stderr
    assert "wrote" not in again.stderr and "unchanged" in again.stderr
    assert (project / "custody.toml").read_bytes() == before


def test_history_and_check_spell_utc_as_z(tmp_path: Path, demo_registry: str) -> None:
    project = _demo_project(tmp_path, demo_registry)
    env = project_env(project, demo_registry)
    assert custody("init", cwd=project, env=env).code == 0
    history = custody(
        "history", "npm:event-stream", "-f", "json", "--as-of", "2018-10-01", cwd=project, env=env
    )
    assert history.code == 0, history.stderr
    doc = history.json()
    assert doc["as_of"] == "2018-10-01T00:00:00Z"
    assert doc["events"] and all(e["at"].endswith("Z") for e in doc["events"] if e["at"])
    text = custody("check", "--as-of", "2018-10-01T00:00:00+02:00", cwd=project, env=env)
    assert "as of 2018-09-30T22:00:00Z" in text.stdout, text.stdout + text.stderr
    assert "+00:00" not in text.stdout
