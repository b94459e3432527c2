"""``REV:path`` and ``--base REV`` against a real git repository made in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from custody.diff import compute_changes, read_changed_since, read_side
from custody.errors import InputError, LockfileError
from tests.support.clients import clean_env, custody

from .gitrepo import commit, git, init_repo, npm_lock


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    (root / "package-lock.json").write_text(npm_lock({"diff-kit": "1.0.0", "left-pad": "1.3.0"}))
    (root / "README.md").write_text("app\n")
    commit(root, "old")
    (root / "package-lock.json").write_text(npm_lock({"diff-kit": "1.0.1", "left-pad": "1.3.0"}))
    return root


def versions(side: object) -> dict[str, str]:
    return {d.name: d.version for d in side.dependencies}  # type: ignore[attr-defined]


def test_rev_path_reads_the_committed_lockfile(repo: Path) -> None:
    old = read_side("HEAD:package-lock.json", repo)
    new = read_side("package-lock.json", repo)
    assert versions(old) == {"diff-kit": "1.0.0", "left-pad": "1.3.0"}
    assert versions(new)["diff-kit"] == "1.0.1"
    assert old.lockfiles == ("HEAD:package-lock.json",)
    [kit] = [d for d in old.dependencies if d.name == "diff-kit"]
    assert kit.location is not None
    assert kit.location.path == "HEAD:package-lock.json" and kit.location.line
    changes = compute_changes(old.dependencies, new.dependencies)
    assert {(c.name, c.kind.value) for c in changes} == {
        ("diff-kit", "upgraded"),
        ("left-pad", "unchanged"),
    }


def test_paths_after_the_colon_are_from_the_root_or_from_here_with_dot(repo: Path) -> None:
    sub = repo / "web"
    sub.mkdir()
    (sub / "package-lock.json").write_text(npm_lock({"web-kit": "2.0.0"}))
    commit(repo, "web")
    assert versions(read_side("HEAD:web/package-lock.json", sub)) == {"web-kit": "2.0.0"}
    here = read_side("HEAD:./package-lock.json", sub)
    assert versions(here) == {"web-kit": "2.0.0"}
    assert here.lockfiles == ("HEAD:web/package-lock.json",)
    root_file = read_side("HEAD:../package-lock.json", sub)
    assert "diff-kit" in versions(root_file)


def test_errors_name_the_rev_and_the_path(repo: Path) -> None:
    with pytest.raises(InputError, match=r"^nosuchrev:package-lock\.json: "):
        read_side("nosuchrev:package-lock.json", repo)
    with pytest.raises(InputError, match=r"^HEAD:missing-lock\.json: .*does not exist"):
        read_side("HEAD:missing-lock.json", repo)
    (repo / "dir").mkdir()
    (repo / "dir" / "x").write_text("x")
    commit(repo, "dir")
    with pytest.raises(InputError, match=r"^HEAD:dir: not a file in git \(a tree\)"):
        read_side("HEAD:dir", repo)
    with pytest.raises(InputError, match="cannot start with '-'"):
        read_side("--output=x:package-lock.json", repo)
    with pytest.raises(InputError, match="no path after"):
        read_side("HEAD:", repo)


def test_a_broken_lockfile_in_git_names_rev_path_and_line(repo: Path) -> None:
    (repo / "package-lock.json").write_text('{\n  "lockfileVersion": 3,\n  "packages": }\n')
    commit(repo, "broken")
    with pytest.raises(LockfileError) as caught:
        read_side("HEAD:package-lock.json", repo)
    assert str(caught.value).startswith("HEAD:package-lock.json:3: ")
    assert "custody-diff-" not in str(caught.value)  # no temporary path leaks into the message


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^HEAD:package-lock\.json: .*not a git repository"):
        read_side("HEAD:package-lock.json", tmp_path)


def test_an_existing_file_with_a_colon_is_a_path(tmp_path: Path) -> None:
    (tmp_path / "odd:name.json").write_text(npm_lock({"a": "1.0.0"}))
    assert versions(read_side("odd:name.json", tmp_path)) == {"a": "1.0.0"}


def test_requirements_includes_are_read_from_the_same_rev(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "py")
    (repo / "requirements").mkdir()
    (repo / "requirements" / "base.txt").write_text("six==1.16.0\n")
    (repo / "requirements" / "prod.txt").write_text("-r base.txt\nidna==3.7\n")
    commit(repo, "py")
    (repo / "requirements" / "base.txt").write_text("six==1.17.0\n")
    old = read_side("HEAD:requirements/prod.txt", repo)
    assert versions(old) == {"six": "1.16.0", "idna": "3.7"}
    [six] = [d for d in old.dependencies if d.name == "six"]
    assert six.location is not None and six.location.path == "HEAD:requirements/base.txt"


def test_base_finds_changed_new_deleted_and_untracked_lockfiles(repo: Path) -> None:
    (repo / "legacy").mkdir()
    (repo / "legacy" / "requirements.txt").write_text("six==1.15.0\n")
    lock = (repo / "package-lock.json").read_text()
    git(repo, "checkout", "--", "package-lock.json")  # back to 1.0.0 for the base commit
    base = commit(repo, "base")
    (repo / "package-lock.json").write_text(lock)  # changed since base
    (repo / "legacy" / "requirements.txt").unlink()  # deleted since base
    (repo / "web").mkdir()
    (repo / "web" / "package-lock.json").write_text(npm_lock({"web-kit": "2.0.0"}))  # new
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / ".package-lock.json").write_text(npm_lock({"x": "1.0.0"}))
    (repo / "README.md").write_text("changed, not a lockfile\n")
    commit(repo, "after base")
    (repo / "tools-requirements.txt").write_text("idna==3.7\n")  # untracked
    old, new = read_changed_since(base, repo / "web")
    assert old.lockfiles == (f"{base}:legacy/requirements.txt", f"{base}:package-lock.json")
    assert new.lockfiles == (
        "../package-lock.json",
        "../tools-requirements.txt",
        "package-lock.json",
    )
    assert versions(old) == {"diff-kit": "1.0.0", "left-pad": "1.3.0", "six": "1.15.0"}
    assert versions(new) == {
        "diff-kit": "1.0.1",
        "left-pad": "1.3.0",
        "web-kit": "2.0.0",
        "idna": "3.7",
    }
    kinds = {c.name: c.kind.value for c in compute_changes(old.dependencies, new.dependencies)}
    assert kinds == {
        "diff-kit": "upgraded",
        "left-pad": "unchanged",
        "six": "removed",
        "web-kit": "added",
        "idna": "added",
    }


def test_base_with_nothing_changed_is_empty(repo: Path) -> None:
    commit(repo, "now")
    old, new = read_changed_since("HEAD", repo)
    assert old.dependencies == () and new.dependencies == ()


def test_base_must_be_a_commit(repo: Path) -> None:
    with pytest.raises(InputError, match=r"^--base nosuch: not a commit"):
        read_changed_since("nosuch", repo)


def run(repo: Path, *args: str) -> tuple[int, str, str]:
    env = clean_env(
        repo.parent / "home",
        CUSTODY_DATABASE_URL=f"sqlite:///{repo.parent / 'ledger.sqlite3'}",
        CUSTODY_NPM_REGISTRY="http://127.0.0.1:9/",
    )
    result = custody("diff", *args, cwd=repo, env=env)
    return result.code, result.stdout, result.stderr


def test_cli_bad_rev_is_exit_2_naming_it(repo: Path) -> None:
    code, out, err = run(repo, "nosuchrev:package-lock.json", "package-lock.json")
    assert code == 2 and out == ""
    assert "nosuchrev:package-lock.json" in err


def test_cli_usage_errors_are_exit_2(repo: Path) -> None:
    assert run(repo, "package-lock.json")[0] == 2
    assert run(repo, "HEAD:package-lock.json", "package-lock.json", "--base", "HEAD")[0] == 2
    assert run(repo, "--base", "HEAD", "--format", "yaml")[0] == 2
    code, _, err = run(repo, "--base", "HEAD", "--trust-file", "nope.toml")
    assert code == 2 and "nope.toml" in err


def test_cli_removals_only_need_no_registry(repo: Path) -> None:
    (repo / "package-lock.json").write_text(npm_lock({"diff-kit": "1.0.0"}))
    code, out, err = run(repo, "--base", "HEAD", "--format", "json")
    assert code == 0, err
    assert "left-pad" in out and "deps.removed" in out


def test_cli_no_change_is_exit_0_in_markdown(repo: Path) -> None:
    commit(repo, "now")
    code, out, err = run(repo, "--base", "HEAD", "--format", "markdown")
    assert code == 0, err
    assert out.startswith("<!-- custody-report verdict=empty -->")
