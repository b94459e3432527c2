"""The source cache: refused URLs, offline mode, blob ids, submodules left alone."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from pathlib import Path

import pytest

from custody.fingerprint import GitError, GitOptions, SourceRepo, fingerprint
from custody.fingerprint.git import blob_id, check_url
from custody.model import Ecosystem, Release
from tests.fingerprint.helpers import Repo, git


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "ssh://git@example.invalid/o/r",
        "git@example.invalid:o/r.git",
        "/etc",
        "file:///etc",
        "https://user:secret@example.invalid/o/r",
    ],
)
def test_repository_urls_from_metadata_are_restricted(url: str) -> None:
    with pytest.raises(GitError):
        check_url(url, allow_file=False)


def test_refused_url_is_a_note_not_an_error(tmp_path: Path) -> None:
    rel = Release(Ecosystem.NPM, "demo", "1.0.0", repository="ext::sh -c id")
    result = asyncio.run(
        fingerprint(rel, {"index.js": b"x"}, options=GitOptions(cache_dir=tmp_path))
    )
    assert not result.compared and "refusing" in (result.note or "")


def test_blob_ids_are_gits() -> None:
    data = b"hello\n"
    assert blob_id(data) == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert blob_id(data, sha256=True) == hashlib.sha256(b"blob 6\0hello\n").hexdigest()


def test_offline_mode_never_fetches(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "origin")
    repo.commit({"index.js": "x\n"}, tag="v1.0.0")
    options = GitOptions(cache_dir=tmp_path / "cache", allow_file=True, offline=True)
    rel = Release(Ecosystem.NPM, "demo", "1.0.0")
    result = asyncio.run(
        fingerprint(rel, {"index.js": b"x\n"}, options=options, repository=repo.url)
    )
    assert not result.compared and "no source commit" in (result.note or "")


def test_submodules_are_not_followed(tmp_path: Path) -> None:
    inner = Repo(tmp_path / "inner")
    inner.commit({"payload.js": "evil\n"})
    outer = Repo(tmp_path / "outer")
    outer.commit({"index.js": "x\n"})
    subprocess.run(
        ["git", "-C", str(outer.path), "-c", "protocol.file.allow=always", "submodule", "add",
         "--quiet", inner.url, "vendor"],
        check=True, capture_output=True,
    )  # fmt: skip
    git(outer.path, "-c", "user.name=d", "-c", "user.email=d@e", "commit", "-qm", "sub")
    sha = git(outer.path, "rev-parse", "HEAD")

    async def go() -> list[str]:
        source = SourceRepo(outer.url, GitOptions(cache_dir=tmp_path / "cache", allow_file=True))
        assert await source.fetch_commit(sha)
        return sorted(await source.tree(sha))

    assert asyncio.run(go()) == [".gitmodules", "index.js"]
    assert not any((tmp_path / "cache").rglob("payload.js"))
