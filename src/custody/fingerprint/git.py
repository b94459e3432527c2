"""A cache of source repositories, read with ``git`` without ever checking anything out.

Each repository is a bare partial clone under ``<user cache dir>/custody/sources/`` (
``CUSTODY_CACHE_DIR`` overrides the cache dir), holding only the commits Custody asked for:
``git fetch --depth=1 --filter=blob:none`` brings a commit and its trees, no file contents. Files
are compared by their git blob ids, so most blobs are never downloaded; the few that are read
(``package.json``, ``.gitignore``) are fetched on demand by git.

Hardening: no hooks (``core.hooksPath=/dev/null``), no submodules, no checkout (so no LFS smudge
and no filters), no credential prompts, and only ``https``/``git`` transports (``file`` only
when the caller allows it: tests and local mirrors). Repository URLs come from package metadata,
which an attacker may write: ``ext::``, ``ssh`` and local paths are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from custody.cache_dir import cache_base

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SAFE_REF = re.compile(r"^[A-Za-z0-9@._+/-]{1,200}$")
_GIT_CONFIG = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "fetch.recurseSubmodules=false",
    "-c", "submodule.recurse=false",
    "-c", "protocol.version=2",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
)  # fmt: skip


class GitError(Exception):
    """A git command failed, timed out, or the repository URL is not allowed."""


def default_sources_dir() -> Path:
    return cache_base() / "sources"


@dataclass(frozen=True, slots=True)
class GitOptions:
    cache_dir: Path = field(default_factory=default_sources_dir)
    allow_file: bool = False
    """Allow ``file://`` repositories (tests, local mirrors); never for metadata-supplied URLs
    in normal runs."""
    timeout: float = 180.0
    """Seconds per git command."""
    offline: bool = False
    """Never fetch: use what the cache already holds."""


@dataclass(frozen=True, slots=True)
class TreeEntry:
    mode: str
    blob: str

    @property
    def is_link(self) -> bool:
        return self.mode == "120000"


def blob_id(data: bytes, *, sha256: bool = False) -> str:
    """The git object id of a file with these bytes."""
    h = hashlib.sha256() if sha256 else hashlib.sha1()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def check_url(url: str, *, allow_file: bool) -> str:
    parts = urlsplit(url)
    allowed = {"https", "git"} | ({"file"} if allow_file else set())
    if parts.scheme not in allowed or (parts.scheme != "file" and not parts.hostname):
        raise GitError(f"refusing repository URL {url!r}: only {', '.join(sorted(allowed))}")
    if parts.username or parts.password:
        raise GitError("refusing a repository URL with credentials in it")
    return url


def _env(allow_file: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") or k in ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH")
    }
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="true",
        SSH_ASKPASS="true",
        GIT_ALLOW_PROTOCOL="https:git" + (":file" if allow_file else ""),
        GIT_LFS_SKIP_SMUDGE="1",
        LC_ALL="C",
    )
    return env


# One lock per repository and event loop (an asyncio.Lock belongs to the loop it waited in).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


class SourceRepo:
    """One cached bare repository for one URL."""

    def __init__(self, url: str, options: GitOptions) -> None:
        self.url = check_url(url, allow_file=options.allow_file)
        self.options = options
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        self.path = options.cache_dir / f"{digest}.git"
        self._env = _env(options.allow_file)
        self._sha256: bool | None = None

    async def _git(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            "git", *_GIT_CONFIG, "-C", str(self.path), *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self.options.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitError(f"git {args[0]} timed out after {self.options.timeout:g}s") from None
        code = proc.returncode if proc.returncode is not None else -1
        if check and code != 0:
            message = err.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {message[-1] if message else code}")
        return code, out, err

    async def ensure(self) -> None:
        """Create the bare repository and point ``origin`` at the URL (idempotent)."""
        if (self.path / "HEAD").exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            "git", "init", "--quiet", "--bare", str(self.path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=self._env,
        )  # fmt: skip
        _out, err = await proc.communicate()
        if proc.returncode != 0:
            raise GitError(f"git init failed: {err.decode('utf-8', 'replace').strip()}")
        await self._git("config", "remote.origin.url", self.url)
        await self._git("config", "remote.origin.promisor", "true")
        await self._git("config", "remote.origin.partialclonefilter", "blob:none")

    @contextlib.asynccontextmanager
    async def _lock(self) -> AsyncIterator[None]:
        """Exclusive use of the cached repository: within this process (asyncio) and across
        processes (an advisory lock file, where the platform has ``fcntl``)."""
        locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(self.path, asyncio.Lock()):
            if fcntl is None:
                yield
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    async def has_commit(self, sha: str) -> bool:
        code, _out, _err = await self._git("cat-file", "-e", f"{sha}^{{commit}}", check=False)
        return code == 0

    async def _fetch(self, *refspecs: str, depth: bool = True) -> bool:
        if self.options.offline:
            return False
        args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=blob:none"]
        if depth:
            args.append("--depth=1")
        code, _out, _err = await self._git(*args, "origin", *refspecs, check=False)
        return code == 0

    async def fetch_commit(self, sha: str) -> bool:
        """Make ``sha`` (a full commit id) available; False when the server does not have it."""
        sha = sha.lower()
        if not _SHA.match(sha):
            return False
        async with self._lock():
            await self.ensure()
            if await self.has_commit(sha):
                return True
            if await self._fetch(f"{sha}:refs/custody/commits/{sha}"):
                return await self.has_commit(sha)
            # a server that refuses unadvertised objects: every branch and tag, trees only
            await self._fetch(
                "+refs/heads/*:refs/custody/heads/*", "+refs/tags/*:refs/tags/*", depth=False
            )
            return await self.has_commit(sha)

    async def resolve_tags(self, names: Sequence[str]) -> dict[str, str]:
        """``{tag: commit}`` for the tags among ``names`` (local cache first, then the server)."""
        names = [n for n in names if _SAFE_REF.match(n) and ".." not in n]
        async with self._lock():
            await self.ensure()
            found = await self._local_tags(names)
            missing = [n for n in names if n not in found]
            if missing and not self.options.offline:
                code, out, _ = await self._git(
                    "ls-remote", "--tags", "origin", *(f"refs/tags/{n}" for n in missing),
                    check=False,
                )  # fmt: skip
                remote = _parse_ls_remote(out.decode("utf-8", "replace")) if code == 0 else {}
                wanted = [n for n in missing if n in remote]
                if wanted and await self._fetch(*(f"+refs/tags/{n}:refs/tags/{n}" for n in wanted)):
                    found.update(await self._local_tags(wanted))
        return {n: found[n] for n in names if n in found}

    async def _local_tags(self, names: Sequence[str]) -> dict[str, str]:
        """``{tag: commit}`` for tags the cache holds (annotated tags peeled)."""
        if not names:
            return {}
        code, out, _ = await self._git(
            "for-each-ref", "--format=%(refname) %(objecttype) %(objectname) %(*objectname)",
            *(f"refs/tags/{n}" for n in names),
            check=False,
        )  # fmt: skip
        found: dict[str, str] = {}
        for line in out.decode("utf-8", "replace").splitlines() if code == 0 else []:
            ref, kind, oid, peeled = [*line.split(" "), "", "", ""][:4]
            commit = peeled if kind == "tag" else oid
            if ref.startswith("refs/tags/") and commit:
                found[ref[len("refs/tags/") :]] = commit
        return found

    async def object_format_sha256(self) -> bool:
        if self._sha256 is None:
            _code, out, _ = await self._git("rev-parse", "--show-object-format", check=False)
            self._sha256 = out.strip() == b"sha256"
        return self._sha256

    async def tree(self, commit: str) -> Mapping[str, TreeEntry]:
        """Every file of the commit: ``{path: TreeEntry}`` (submodules left out)."""
        _code, out, _ = await self._git("ls-tree", "-r", "-z", "--full-tree", commit)
        files: dict[str, TreeEntry] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid = meta.decode().split(" ")
            if kind != "blob":
                continue
            files[raw_path.decode("utf-8", "surrogateescape")] = TreeEntry(mode, oid)
        return MappingProxyType(files)

    async def read_blobs(self, ids: Iterable[str]) -> dict[str, bytes]:
        """Blob contents by id (git fetches missing ones from the promisor remote)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        code, out, _ = await self._git(
            "cat-file", "--batch", stdin=("\n".join(wanted) + "\n").encode(), check=False
        )
        return _parse_batch(out) if code == 0 else {}


def _parse_ls_remote(text: str) -> dict[str, str]:
    """``{tag: commit}``; annotated tags resolve through their ``^{}`` line."""
    plain: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in text.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref[len("refs/tags/") :]
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            plain[name] = sha
    return {**plain, **peeled}


def _parse_batch(out: bytes) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("utf-8", "replace").split(" ")
        pos = end + 1
        if len(header) != 3:  # "<id> missing"
            continue
        oid, _kind, size_text = header
        size = int(size_text)
        blobs[oid] = out[pos : pos + size]
        pos += size + 1
    return blobs
