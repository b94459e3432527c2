"""``custody rollback ECO:NAME``: pin every recorded project that locks an untrusted release of a
package back to the last release by a trusted custodian, then re-read the lockfile to confirm.

Trusted means: published by a custodian the project's trust file trusts at that time (or by a
trusted provenance source), or approved in it. Each project is judged by its own trust file
(the ``custody.toml`` found from its lockfile's folder up), unless ``--trust-file`` names one.
The edits themselves are in custody.rollback_edits."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from custody.errors import CustodyError, InputError
from custody.judge import find_release, trusted_set
from custody.ledger import InventoryEntry
from custody.lockfiles import read_lockfile_report
from custody.model import Ecosystem, PackageHistory, Release
from custody.rollback_edits import npm_override, requirements_pin, uv_override
from custody.trust import TrustFile, find_trust_file, load_trust_file

NPM_LOCKS = ("package-lock.json", "npm-shrinkwrap.json")


@dataclass(frozen=True, slots=True)
class Target:
    """The release to go back to, and why it is trusted."""

    version: str
    why: str  # "published by npm:user/alice (trusted: npm:user/alice)" / "approved by ..."


@dataclass(frozen=True, slots=True)
class Change:
    """What rollback does (or would do) to one lockfile of one project."""

    project: str
    lockfile: str
    locked: tuple[str, ...]  # the untrusted versions it locks now
    target: Target | None
    edit_path: str | None = None  # the file edited (package.json, requirements.txt, ...)
    old_text: str | None = None
    new_text: str | None = None
    relock: tuple[str, ...] | None = None  # the command that updates the lockfile
    install: str | None = None  # what the user runs afterwards to install it
    problem: str | None = None  # why this lockfile cannot be rolled back automatically

    def diff(self) -> str:
        if self.old_text is None or self.new_text is None or self.edit_path is None:
            return ""
        return "".join(
            difflib.unified_diff(
                self.old_text.splitlines(keepends=True),
                self.new_text.splitlines(keepends=True),
                f"a/{self.edit_path}",
                f"b/{self.edit_path}",
            )
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change
    written: bool = False
    relocked: bool = False
    confirmed: bool | None = None  # None: not checked (lockfile not updated yet)
    now_locked: tuple[str, ...] = ()
    message: str = ""


def is_trusted(history: PackageHistory, release: Release, trust: TrustFile) -> str | None:
    """Why ``release`` is trusted by ``trust``, or None."""
    key = f"{history.ecosystem.value}:{history.name}"
    approval = trust.approval(key, release.version)
    if approval is not None:
        return f"approved by {approval.by}"
    trusted = trusted_set(trust, key)
    if trusted.trusts_release(release):
        who = release.publisher.id if release.publisher else "its provenance source"
        return f"published by {who}, trusted in {trust.path or 'the trust file'}"
    return None


def last_trusted(history: PackageHistory, trust: TrustFile) -> Target | None:
    """The most recently published trusted release that is neither unpublished, yanked nor
    deprecated; a pre-release only when no final release qualifies."""
    candidates = [r for r in history.releases if not (r.unpublished or r.yanked or r.deprecated)]
    finals = [r for r in candidates if not _prerelease(r.version)]
    for pool in (finals, candidates):
        for r in reversed(pool):
            why = is_trusted(history, r, trust)
            if why is not None:
                return Target(r.version, why)
    return None


def _prerelease(version: str) -> bool:
    return bool(re.search(r"[a-zA-Z]", version.split("+", 1)[0]))


def _trust_for(lockfile: Path, given: Path | None, cache: dict[Path, TrustFile]) -> TrustFile:
    path = given or find_trust_file(lockfile.parent)
    if path is None:
        raise InputError(
            f"no custody.toml for {lockfile} (none in its folder or above): pass --trust-file",
        )
    if path not in cache:
        cache[path] = load_trust_file(path)
    return cache[path]


def _format(lockfile: Path) -> str:
    if lockfile.name in NPM_LOCKS:
        return "npm"
    if lockfile.name == "uv.lock":
        return "uv"
    if lockfile.suffix == ".txt" or lockfile.name.endswith(".txt"):
        return "requirements"
    return lockfile.name


def _sha256s(release: Release | None) -> list[str]:
    if release is None:
        return []
    return sorted({a.digests["sha256"] for a in release.artifacts if "sha256" in a.digests})


def _edit(
    fmt: str, lockfile: Path, name: str, target: Target, history: PackageHistory
) -> tuple[Path, str, str, tuple[str, ...] | None, str]:
    """``(file, old, new, relock command, install hint)``; raises ``InputError``."""
    folder = lockfile.parent
    if fmt == "npm":
        manifest = folder / "package.json"
        old = _read(manifest)
        new = npm_override(old, name, target.version, path=str(manifest))
        relock = ("npm", "install", "--package-lock-only", "--no-audit", "--no-fund")
        return manifest, old, new, relock, f"cd {folder} && npm install"
    if fmt == "uv":
        manifest = folder / "pyproject.toml"
        old = _read(manifest)
        new = uv_override(old, name, target.version, path=str(manifest))
        return manifest, old, new, ("uv", "lock"), f"cd {folder} && uv sync"
    if fmt == "requirements":
        old = _read(lockfile)
        release = find_release(history, target.version)
        new = requirements_pin(old, name, target.version, _sha256s(release), path=str(lockfile))
        return lockfile, old, new, None, f"pip install -r {lockfile}"
    raise InputError(
        f"{lockfile.name}: rollback cannot edit this format; pin {name}=={target.version} in "
        "the project's own requirements and re-lock with the tool that wrote it"
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None


def plan(
    ecosystem: Ecosystem,
    name: str,
    entries: Sequence[InventoryEntry],
    history: PackageHistory,
    *,
    trust_file: Path | None = None,
    to_version: str | None = None,
) -> tuple[list[Change], list[str]]:
    """The change per lockfile locking an untrusted release, and notes about the others."""
    by_lock: dict[tuple[str, str], list[InventoryEntry]] = defaultdict(list)
    for e in entries:
        by_lock[(e.project, e.lockfile)].append(e)
    trusts: dict[Path, TrustFile] = {}
    changes: list[Change] = []
    notes: list[str] = []
    for (project, lockfile), group in sorted(by_lock.items()):
        path = Path(lockfile)
        versions = tuple(sorted({e.version for e in group}))
        try:
            trust = _trust_for(path, trust_file, trusts)
        except CustodyError as exc:
            changes.append(Change(project, lockfile, versions, None, problem=str(exc)))
            continue
        untrusted = []
        for v in versions:
            release = find_release(history, v)
            if release is None or is_trusted(history, release, trust) is None:
                untrusted.append(v)
        if not untrusted:
            notes.append(f"{project}: {lockfile} already locks a trusted {name}@{versions[0]}")
            continue
        if to_version is not None:
            chosen = find_release(history, to_version)
            if chosen is None:
                raise InputError(f"--to {to_version}: {name} has no such release")
            target: Target | None = Target(chosen.version, "chosen with --to")
        else:
            target = last_trusted(history, trust)
        if target is None:
            changes.append(
                Change(
                    project,
                    lockfile,
                    tuple(untrusted),
                    None,
                    problem=f"no release of {name} was published by a custodian the trust "
                    "file trusts, nor approved in it",
                )
            )
            continue
        try:
            edit_path, old, new, relock, install = _edit(_format(path), path, name, target, history)
        except CustodyError as exc:
            changes.append(Change(project, lockfile, tuple(untrusted), target, problem=str(exc)))
            continue
        changes.append(
            Change(
                project,
                lockfile,
                tuple(untrusted),
                target,
                str(edit_path),
                old,
                new,
                relock,
                install,
            )
        )
    return changes, notes


def locked_versions(lockfile: Path, ecosystem: Ecosystem, name: str) -> tuple[str, ...]:
    report = read_lockfile_report(lockfile)
    return tuple(
        sorted(
            {d.version for d in report.dependencies if d.ecosystem is ecosystem and d.name == name}
        )
    )


Runner = Callable[[Sequence[str], Path], tuple[int, str]]


def run_command(argv: Sequence[str], cwd: Path) -> tuple[int, str]:
    """Run a re-lock command in ``cwd`` with the user's environment; ``(exit code, output)``."""
    exe = shutil.which(argv[0])
    if exe is None:
        return 127, f"{argv[0]} not found on PATH"
    try:
        done = subprocess.run(
            [exe, *argv[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return 1, str(exc)
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def apply(
    change: Change,
    ecosystem: Ecosystem,
    name: str,
    *,
    relock: bool,
    runner: Runner = run_command,
) -> Outcome:
    """Write the edit, optionally re-lock, then re-read the lockfile to confirm."""
    if change.problem or change.edit_path is None or change.new_text is None:
        return Outcome(change, message=change.problem or "nothing to write")
    assert change.target is not None
    Path(change.edit_path).write_text(change.new_text, encoding="utf-8")
    lockfile = Path(change.lockfile)
    relocked = False
    if change.relock is not None and relock:
        code, output = runner(change.relock, lockfile.parent)
        if code != 0:
            return Outcome(
                change,
                written=True,
                message=f"`{' '.join(change.relock)}` failed (exit {code}): {output.strip()}",
            )
        relocked = True
    if change.relock is not None and not relocked:
        return Outcome(
            change,
            written=True,
            message=f"wrote {change.edit_path}; now run: cd {lockfile.parent} && "
            f"{' '.join(change.relock)}   (or {change.install})",
        )
    now = locked_versions(lockfile, ecosystem, name)
    ok = now == (change.target.version,)
    message = (
        f"confirmed: {lockfile} now locks {name}@{change.target.version}; install with: "
        f"{change.install}"
        if ok
        else f"{lockfile} still locks {name}@{', '.join(now) or 'nothing'}"
    )
    return Outcome(change, True, relocked, ok, now, message)
