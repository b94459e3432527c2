"""The GitHub Action and the pre-commit hooks: their scripts run here against a real git
repository (with a stand-in ``gh``), and their lockfile patterns match custody's readers."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from custody.lockfiles.registry import is_lockfile_name

from .gitrepo import GIT_ENV, commit, init_repo, npm_lock

REPO = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
HOOKS = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}

NAMES = [
    "package-lock.json",
    "web/package-lock.json",
    "npm-shrinkwrap.json",
    "poetry.lock",
    "sub/uv.lock",
    "pylock.toml",
    "pylock.dev.toml",
    "requirements.txt",
    "requirements-dev.txt",
    "ci/Dev-Requirements.lock",
    "requirements/base.txt",
    "requirements/prod.lock",
    "package.json",
    "pyproject.toml",
    "pylock.json",
    "notes.txt",
    "requirements.in",
    "yarn.lock",
    "mypackage-lock.json",
    "README.md",
]


@pytest.mark.parametrize("hook", ["custody-check", "custody-diff"])
def test_hook_files_pattern_matches_the_lockfile_readers(hook: str) -> None:
    files = re.compile(HOOKS[hook]["files"])
    exclude = re.compile(HOOKS[hook]["exclude"])
    for name in NAMES:
        assert bool(files.search(name)) == is_lockfile_name(Path(name)), name
    assert exclude.search("node_modules/x/package-lock.json")


def test_hooks_run_the_right_commands() -> None:
    check, diff = HOOKS["custody-check"], HOOKS["custody-diff"]
    assert (check["entry"], check["pass_filenames"]) == ("custody check", True)
    assert (diff["entry"], diff["pass_filenames"]) == ("custody diff --base HEAD", False)
    assert check["language"] == diff["language"] == "python"


def _steps() -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in ACTION["runs"]["steps"]}


def _script(name: str) -> str:
    run: str = _steps()[name]["run"]
    assert "${{" not in run, "expressions belong in env:, never inside a script"
    return run


def test_action_is_a_composite_with_documented_inputs() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) >= {"base", "comment", "comment-only", "sarif", "trust-file"}
    assert "pull_request.base.sha" in ACTION["inputs"]["base"]["default"]
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            done = subprocess.run(["bash", "-n"], input=step["run"], text=True, check=False)
            assert done.returncode == 0, step["name"]
    steps = _steps()
    assert "--format markdown" in steps["custody diff"]["run"]
    assert steps["Upload SARIF"]["uses"].startswith("github/codeql-action/upload-sarif@")
    assert steps["Fail on held or blocked releases"]["if"] == (
        "steps.diff.outputs.exit-code == '1' && inputs.comment-only != 'true'"
    )


def _runner(tmp_path: Path, **env: str) -> dict[str, str]:
    """A GitHub runner's environment, with custody from this checkout's venv."""
    venv = REPO / ".venv"
    if not (venv / "bin" / "custody").exists():
        pytest.skip("no custody in .venv")
    temp = tmp_path / "runner"
    temp.mkdir(parents=True)
    (temp / "custody-venv").symlink_to(venv)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTODY_", "GITHUB_"))}
    return {
        **base,
        **GIT_ENV,
        "HOME": str(tmp_path),
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(temp / "output"),
        "GITHUB_STEP_SUMMARY": str(temp / "summary"),
        "CUSTODY_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "TRUST_FILE": "",
        "EXTRA_ARGS": "",
        "WANT_SARIF": "true",
        "ACTION_SERVER": "https://github.com",
        "ACTION_REPOSITORY": "",
        "ACTION_REF": "",
        **env,
    }


def _outputs(env: dict[str, str]) -> dict[str, str]:
    lines = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_action_diff_step_reports_and_records_outputs(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    (repo / "package-lock.json").write_text(npm_lock({"diff-kit": "1.0.0", "gone": "2.0.0"}))
    base = commit(repo, "base")
    (repo / "package-lock.json").write_text(npm_lock({"diff-kit": "1.0.0"}))
    env = _runner(tmp_path, BASE=base)
    done = subprocess.run(
        ["bash", "-c", _script("custody diff")], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    out = _outputs(env)
    assert (out["exit-code"], out["verdict"]) == ("0", "allowed")
    report = Path(out["report"]).read_text()
    assert report.startswith("<!-- custody-report verdict=allowed -->")
    assert "npm:gone@2.0.0" in report
    assert Path(env["GITHUB_STEP_SUMMARY"]).read_text() == report
    assert Path(out["sarif-file"]).is_file()


def test_action_diff_step_fails_on_a_bad_base(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    commit(repo, "base")
    env = _runner(tmp_path, BASE="0" * 40)
    done = subprocess.run(
        ["bash", "-c", _script("custody diff")], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    env = _runner(tmp_path / "again", BASE="")
    done = subprocess.run(
        ["bash", "-c", _script("custody diff")], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "no base revision" in done.stdout


FAKE_GH = """#!/usr/bin/env bash
echo "$*" >>"$GH_LOG"
case "$*" in
  *--paginate*) printf '%s' "$FAKE_IDS" ;;
  *body=@*) all="$*"; body="${all##*body=@}"; cp "${body%% *}" "$GH_LOG.body" ;;
esac
"""


@pytest.mark.parametrize(
    ("ids", "verdict", "expected"),
    [
        ("", "held", "api --method POST repos/o/r/issues/7/comments"),
        ("111\n222\n", "held", "api --method PATCH repos/o/r/issues/comments/111"),
        ("111\n", "empty", "api --method PATCH repos/o/r/issues/comments/111"),
        ("", "empty", None),
    ],
)
def test_action_keeps_one_comment(
    tmp_path: Path, ids: str, verdict: str, expected: str | None
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    report = tmp_path / "report.md"
    report.write_text(f"<!-- custody-report verdict={verdict} -->\n### report\n")
    log = tmp_path / "gh.log"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GH_LOG": str(log),
        "FAKE_IDS": ids,
        "PR": "7",
        "REPO": "o/r",
        "REPORT": str(report),
        "VERDICT": verdict,
        "GH_TOKEN": "x",
    }
    script = _script("Comment on the pull request")
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("api --paginate repos/o/r/issues/7/comments")
    writes = [c for c in calls if "--method" in c]
    if expected is None:
        assert writes == []
        return
    assert len(writes) == 1 and writes[0].startswith(expected)
    assert Path(f"{log}.body").read_text() == report.read_text()


def test_action_comment_without_gh_only_warns(tmp_path: Path) -> None:
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    for tool in ("bash", "env"):
        found = shutil.which(tool)
        assert found
        (empty_path / tool).symlink_to(found)
    script = _script("Comment on the pull request")
    done = subprocess.run(
        [str(empty_path / "bash"), "-c", script],
        env={"PATH": str(empty_path), "PR": "7", "REPO": "o/r", "REPORT": "x", "VERDICT": "held"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "gh is not installed" in done.stdout
