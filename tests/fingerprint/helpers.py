"""Local git repositories and archives for the fingerprint tests."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

Files = Mapping[str, bytes | str]

_ENV = {
    "GIT_AUTHOR_NAME": "dev",
    "GIT_AUTHOR_EMAIL": "dev@example.invalid",
    "GIT_COMMITTER_NAME": "dev",
    "GIT_COMMITTER_EMAIL": "dev@example.invalid",
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | _ENV
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def as_bytes(files: Files) -> dict[str, bytes]:
    return {p: d.encode() if isinstance(d, str) else d for p, d in files.items()}


class Repo:
    """A work tree with commits and tags, served as ``file://``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "--quiet", "--initial-branch=main")
        git(path, "config", "uploadpack.allowFilter", "true")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def commit(self, files: Files, *, tag: str | None = None, message: str = "commit") -> str:
        for rel, data in as_bytes(files).items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        git(self.path, "add", "--all")
        git(self.path, "commit", "--quiet", "--allow-empty", "-m", message)
        if tag:
            git(self.path, "tag", "-a", tag, "-m", tag)
        return git(self.path, "rev-parse", "HEAD")


def tgz(files: Files, root: str = "package") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, data in sorted(as_bytes(files).items()):
            info = tarfile.TarInfo(f"{root}/{path}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def wheel(files: Files) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for path, data in sorted(as_bytes(files).items()):
            zf.writestr(path, data)
    return raw.getvalue()
