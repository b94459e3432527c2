"""npm tarballs against local git repositories over file://: equal, extra code, build outputs,
modified files and manifests, and how the commit is found."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from custody.fingerprint import FileStatus, FingerprintResult, GitOptions, fingerprint
from custody.judge import decide
from custody.model import Action, Custodian, Ecosystem, LockedDependency, Provenance, Release
from custody.model import Severity as S
from custody.policy import DEFAULT_POLICY, tier_for
from custody.trust import parse_trust_file
from tests.fingerprint.helpers import Files, Repo, tgz

MANIFEST: dict[str, Any] = {
    "name": "demo",
    "version": "1.0.0",
    "main": "index.js",
    "files": ["index.js", "lib/", "dist/"],
    "scripts": {"build": "tsc -p .", "test": "node test/a.test.js"},
}
SOURCE: dict[str, bytes | str] = {
    "package.json": json.dumps(MANIFEST, indent=2) + "\n",
    "index.js": "module.exports = require('./lib/util');\n",
    "lib/util.js": "module.exports = (a) => a + 1;\n",
    "src/main.ts": "export const x = 1;\n",
    "README.md": "# demo\n",
    ".gitignore": "dist/\nnode_modules/\n",
    "test/a.test.js": "require('assert')(true);\n",
}
PUBLISHED = {p: SOURCE[p] for p in ("package.json", "index.js", "lib/util.js", "README.md")}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "origin")
    r.commit(SOURCE, tag="v1.0.0")
    return r


@pytest.fixture
def options(tmp_path: Path) -> GitOptions:
    return GitOptions(cache_dir=tmp_path / "cache", allow_file=True)


def release(**kw: Any) -> Release:
    return Release(Ecosystem.NPM, "demo", "1.0.0", **kw)


def check(
    files: Files, repo: Repo, options: GitOptions, rel: Release | None = None
) -> FingerprintResult:
    data = {p: d.encode() if isinstance(d, str) else d for p, d in files.items()}
    return asyncio.run(fingerprint(rel or release(), data, options=options, repository=repo.url))


def by_path(result: FingerprintResult) -> dict[str, Any]:
    return {f.path: f for f in result.files}


def test_artifact_equal_to_its_tag_passes(repo: Repo, options: GitOptions) -> None:
    result = check(PUBLISHED, repo, options)
    assert result.compared and result.resolved_from == "tag v1.0.0"
    assert result.matched == 4 and result.files == ()
    assert result.finding() is None


def test_archive_bytes_are_read_safely(repo: Repo, options: GitOptions) -> None:
    result = asyncio.run(
        fingerprint(release(), tgz(PUBLISHED), options=options, repository=repo.url)
    )
    assert result.compared and result.matched == 4 and result.files == ()


def test_extra_code_file_is_reported_by_name(repo: Repo, options: GitOptions) -> None:
    result = check({**PUBLISHED, "lib/evil.js": "require('child_process')\n"}, repo, options)
    finding = result.finding()
    assert finding is not None and finding.rule == "content.not-in-source"
    assert finding.severity is S.HIGH
    assert "lib/evil.js" in finding.message
    assert finding.evidence["unexplained"] == ["lib/evil.js"]
    report = by_path(result)["lib/evil.js"]
    assert report.status is FileStatus.EXTRA and not report.explained


def test_declared_build_output_is_not_held(repo: Repo, options: GitOptions) -> None:
    files = {**PUBLISHED, "dist/index.js": "var x=1;\n", "dist/index.js.map": "{}"}
    result = check(files, repo, options)
    finding = result.finding()
    assert finding is not None and finding.severity is S.INFO
    assert finding.evidence["unexplained"] == []
    assert set(finding.evidence["build_outputs"]) == {"dist/index.js", "dist/index.js.map"}
    assert "built by the `build` script" in by_path(result)["dist/index.js"].reason
    dep = LockedDependency(Ecosystem.NPM, "demo", "1.0.0", direct=True)
    decision = decide(dep, [finding], tier_for(DEFAULT_POLICY, 1), parse_trust_file(""), None)
    assert decision.action is Action.ALLOW


def test_build_output_without_a_build_script_is_not_explained(
    tmp_path: Path, options: GitOptions
) -> None:
    manifest = {k: v for k, v in MANIFEST.items() if k != "scripts"}
    source = {**SOURCE, "package.json": json.dumps(manifest)}
    repo = Repo(tmp_path / "nobuild")
    repo.commit(source, tag="v1.0.0")
    files = {**{p: source[p] for p in PUBLISHED}, "dist/index.js": "steal()\n"}
    result = check(files, repo, options)
    report = by_path(result)["dist/index.js"]
    assert not report.explained and report.severity is S.MEDIUM
    assert "no build script" in report.reason


def test_modified_code_file_is_high(repo: Repo, options: GitOptions) -> None:
    index = str(SOURCE["index.js"]) + "require('https').get('https://x.invalid/p')\n"
    result = check({**PUBLISHED, "index.js": index}, repo, options)
    report = by_path(result)["index.js"]
    assert report.status is FileStatus.DIFFERS and report.severity is S.HIGH
    assert result.finding() is not None


def test_manifest_with_a_new_install_script_is_high(repo: Repo, options: GitOptions) -> None:
    manifest = {**MANIFEST, "scripts": {**MANIFEST["scripts"], "postinstall": "node x.js"}}
    result = check({**PUBLISHED, "package.json": json.dumps(manifest)}, repo, options)
    report = by_path(result)["package.json"]
    assert report.severity is S.HIGH and "postinstall" in report.reason


def test_manifest_rewritten_at_publish_is_low(repo: Repo, options: GitOptions) -> None:
    manifest = {**MANIFEST, "gitHead": "abc"}
    result = check({**PUBLISHED, "package.json": json.dumps(manifest)}, repo, options)
    report = by_path(result)["package.json"]
    assert report.severity is S.LOW and report.explained and "gitHead" in report.reason


def test_line_ending_changes_are_info(repo: Repo, options: GitOptions) -> None:
    crlf = str(SOURCE["lib/util.js"]).replace("\n", "\r\n")
    result = check({**PUBLISHED, "lib/util.js": crlf}, repo, options)
    assert by_path(result)["lib/util.js"].reason == "line endings only"
    assert result.severity is S.INFO


def test_git_head_and_provenance_commits_come_first(repo: Repo, options: GitOptions) -> None:
    later = repo.commit({"lib/util.js": "module.exports = 2;\n"}, message="after the tag")
    files = {**PUBLISHED, "lib/util.js": "module.exports = 2;\n"}
    by_head = check(files, repo, options, release(git_head=later))
    assert (by_head.resolved_from, by_head.commit, by_head.files) == ("gitHead", later, ())

    prov = Provenance(
        "npm-attestation", verified=True, source=Custodian("github:o/r", "1"), commit=later
    )
    by_prov = check(files, repo, options, release(provenance=prov, git_head="0" * 40))
    assert by_prov.resolved_from == "provenance" and by_prov.files == ()


def test_missing_commit_falls_back_to_the_tag_with_a_note(repo: Repo, options: GitOptions) -> None:
    result = check(PUBLISHED, repo, options, release(git_head="1" * 40))
    assert result.resolved_from == "tag v1.0.0" and result.files == ()
    assert any("no commit 111111111111" in n for n in result.notes)


def test_no_tag_and_no_commit_is_a_note(repo: Repo, options: GitOptions) -> None:
    result = check(PUBLISHED, repo, options, Release(Ecosystem.NPM, "demo", "9.9.9"))
    assert not result.compared and result.finding() is None
    assert result.note is not None and "no source commit" in result.note


def test_monorepo_package_directory(tmp_path: Path, options: GitOptions) -> None:
    repo = Repo(tmp_path / "mono")
    inner = {f"packages/demo/{p}": d for p, d in SOURCE.items() if p != ".gitignore"}
    root = {"package.json": json.dumps({"private": True, "scripts": {"build": "nx build"}})}
    repo.commit({**inner, **root, ".gitignore": "dist/\n"}, tag="demo@1.0.0")
    files = {**PUBLISHED, "dist/x.js": "1\n"}
    result = check(files, repo, options)
    assert result.resolved_from == "tag demo@1.0.0" and result.package_dir == "packages/demo"
    assert result.matched == 4
    assert by_path(result)["dist/x.js"].explained


def test_warm_cache_needs_no_origin(repo: Repo, options: GitOptions) -> None:
    first = check(PUBLISHED, repo, options)
    shutil.rmtree(repo.path)
    second = check({**PUBLISHED, "evil.js": "x()\n"}, repo, options)
    assert second.commit == first.commit
    assert [f.path for f in second.files] == ["evil.js"]


def test_source_over_git_daemon_on_loopback(repo: Repo, options: GitOptions) -> None:
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
         "--export-all", f"--base-path={repo.path.parent}", str(repo.path.parent)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"git://127.0.0.1:{port}/{repo.path.name}"
        result = asyncio.run(
            fingerprint(
                release(), {p: str(d).encode() for p, d in PUBLISHED.items()},
                options=GitOptions(cache_dir=options.cache_dir), repository=url,
            )
        )  # fmt: skip
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    assert result.compared, result.note
    assert result.matched == 4 and result.files == ()
