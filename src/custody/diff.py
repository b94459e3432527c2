"""``custody diff``: judge what a lockfile change does to custody.

Each side is a lockfile on disk or ``REV:path`` read from git. Only the packages whose locked
versions changed are fetched and judged; an upgraded or downgraded package is judged with the
custody of the release it replaces as trusted (besides the trust file), so a diff needs no trust
file: a release published by the same accounts as the one it replaces passes, a change of hands
is held. Added packages are judged as ``custody check`` judges them (under the default policy a
package the trust file does not know is held for review: ``deps.new-package``); removed packages
are reported as allowed with an ``info`` finding ``deps.removed``.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_version

from custody import gather, versions
from custody.blast import fan_in
from custody.engine import (
    Fetched,
    FetchOptions,
    Locked,
    coverage_warnings,
    fetch,
    missing_decisions,
    pypi_details,
    read_lockfiles,
    record_observations,
    review_content,
)
from custody.errors import InputError, LockfileError
from custody.judge import Judged, find_release, judge_release, judge_tree, merge_locked
from custody.ledger import Ledger
from custody.lockfiles.registry import detect_reader, is_lockfile_name
from custody.lockfiles.requirements import RequirementsReader
from custody.model import (
    Action,
    Custodian,
    Decision,
    Ecosystem,
    Finding,
    LockedDependency,
    Observation,
    PackageHistory,
    PublishEvent,
    Severity,
    SourceLocation,
)
from custody.osv import KnownBadRecord
from custody.provenance import ProvenanceCheck
from custody.registries.config import RegistrySettings
from custody.report import Report
from custody.signals import RELEASE_SIGNALS
from custody.signals.base import package_id
from custody.signals.lockfile import lockfile_entry
from custody.trust import TrustFile

PackageId = tuple[Ecosystem, str]

REMOVED_RULE = "deps.removed"
GIT_TIMEOUT_S = 60.0
MAX_INCLUDED_FILES = 100  # requirements files followed through ``-r`` in one git blob


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    UPGRADED = "upgraded"
    DOWNGRADED = "downgraded"
    RESOURCED = "resourced"  # the same version, from another integrity or tarball URL
    UNCHANGED = "unchanged"


JUDGED = frozenset(
    {ChangeKind.ADDED, ChangeKind.UPGRADED, ChangeKind.DOWNGRADED, ChangeKind.RESOURCED}
)


@dataclass(frozen=True, slots=True)
class Change:
    """One locked release that appeared, disappeared or stayed between the two sides."""

    ecosystem: Ecosystem
    name: str
    kind: ChangeKind
    old_version: str | None  # the release it replaces (None: added)
    new_version: str | None  # None: removed

    @property
    def package_key(self) -> str:
        return f"{self.ecosystem.value}:{self.name}"

    @property
    def key(self) -> str:
        """``eco:name@version`` of the release this change is about (the old one if removed)."""
        return f"{self.package_key}@{self.new_version or self.old_version}"


# ------------------------------------------------------------------------------ versions


def compare_versions(ecosystem: Ecosystem, a: str, b: str) -> int:
    """-1, 0 or 1 (PEP 440 for PyPI, SemVer for npm); versions that do not parse compare as
    text, after every version that does."""
    result = versions.compare(ecosystem, a, b)
    if result is not None:
        return result
    va, vb = versions.is_valid(ecosystem, a), versions.is_valid(ecosystem, b)
    if va != vb:
        return -1 if va else 1
    return (a > b) - (a < b)


def _same_key(ecosystem: Ecosystem, version: str) -> str:
    """Equal releases get equal keys: PyPI ``1.0`` is ``1.0.0``."""
    if ecosystem is Ecosystem.PYPI:
        try:
            return canonicalize_version(version)
        except ValueError:
            return version.strip()
    return version.strip()


# ------------------------------------------------------------------------------- changes


def compute_changes(
    old: Iterable[LockedDependency], new: Iterable[LockedDependency]
) -> list[Change]:
    """Per ``(ecosystem, name)``: the releases added, removed, upgraded, downgraded and kept.

    A package can be locked at several versions at once (nested npm copies); each new version
    is paired with the old one it most plausibly replaces: the highest old version below it,
    else the lowest above it (a downgrade). Old versions nobody replaced are removed. A kept
    version whose lockfile entry now names an integrity or ``resolved`` URL the old side did not
    is ``resourced``: judged, since the package manager would fetch other bytes under it."""
    old, new = list(old), list(new)
    old_versions = _versions_by_package(old)
    new_versions = _versions_by_package(new)
    old_sources = _sources_by_release(old)
    new_sources = _sources_by_release(new)
    out: list[Change] = []
    for pid in sorted(old_versions.keys() | new_versions.keys()):
        for change in _package_changes(pid, old_versions.get(pid, []), new_versions.get(pid, [])):
            if change.kind is ChangeKind.UNCHANGED:
                before = old_sources.get(_source_key(change, change.old_version), set())
                after = new_sources.get(_source_key(change, change.new_version), set())
                if after - before:
                    change = replace(change, kind=ChangeKind.RESOURCED)
            out.append(change)
    return out


def _source_key(change: Change, version: str | None) -> tuple[Ecosystem, str, str]:
    return (change.ecosystem, change.name, _same_key(change.ecosystem, version or ""))


def _sources_by_release(
    deps: Iterable[LockedDependency],
) -> dict[tuple[Ecosystem, str, str], set[tuple[str | None, str | None]]]:
    """Per release: every ``(integrity, resolved)`` its lockfile entries record."""
    out: dict[tuple[Ecosystem, str, str], set[tuple[str | None, str | None]]] = defaultdict(set)
    for d in deps:
        out[(d.ecosystem, d.name, _same_key(d.ecosystem, d.version))].update(d.sources)
    return out


def _versions_by_package(deps: Iterable[LockedDependency]) -> dict[PackageId, list[str]]:
    out: dict[PackageId, list[str]] = defaultdict(list)
    for d in deps:
        if d.version not in out[(d.ecosystem, d.name)]:
            out[(d.ecosystem, d.name)].append(d.version)
    return out


def _package_changes(pid: PackageId, old: list[str], new: list[str]) -> list[Change]:
    eco, name = pid
    old_by_key = {_same_key(eco, v): v for v in old}
    new_by_key = {_same_key(eco, v): v for v in new}
    order = functools.cmp_to_key(functools.partial(compare_versions, eco))
    out = [
        Change(eco, name, ChangeKind.UNCHANGED, old_by_key[k], new_by_key[k])
        for k in sorted(old_by_key.keys() & new_by_key.keys())
    ]
    old_only = sorted((v for k, v in old_by_key.items() if k not in new_by_key), key=order)
    new_only = sorted((v for k, v in new_by_key.items() if k not in old_by_key), key=order)
    pool = old_only or sorted(old_by_key.values(), key=order)
    replaced: set[str] = set()
    for version in new_only:
        if not pool:
            out.append(Change(eco, name, ChangeKind.ADDED, None, version))
            continue
        before = _replaced_version(eco, version, pool)
        replaced.add(before)
        up = compare_versions(eco, version, before) >= 0
        kind = ChangeKind.UPGRADED if up else ChangeKind.DOWNGRADED
        out.append(Change(eco, name, kind, before, version))
    out += [Change(eco, name, ChangeKind.REMOVED, v, None) for v in old_only if v not in replaced]
    return out


def _replaced_version(eco: Ecosystem, version: str, pool: Sequence[str]) -> str:
    """``pool`` is sorted ascending: the highest version at or below ``version``, else the
    lowest one above it."""
    below = [v for v in pool if compare_versions(eco, v, version) <= 0]
    return below[-1] if below else pool[0]


# ------------------------------------------------------------------------------- judging


def _old_custodians(history: PackageHistory, old_versions: Iterable[str]) -> list[Custodian]:
    """The identities (publisher, provenance source) of the releases being replaced."""
    out: list[Custodian] = []
    for version in old_versions:
        release = find_release(history, version)
        if release is not None:
            out += [c for c in release.identities if c not in out]
    return out


def judge_changes(
    changes: Sequence[Change],
    old: Sequence[LockedDependency],
    new: Sequence[LockedDependency],
    histories: dict[PackageId, PackageHistory],
    trust: TrustFile,
    *,
    observations: dict[PackageId, list[Observation]],
    now: datetime,
    as_of: datetime | None = None,
    known_bad: Mapping[PackageId, Sequence[KnownBadRecord]] | None = None,
    publishes: Mapping[str, Sequence[PublishEvent]] | None = None,
    provenance_checks: Mapping[str, ProvenanceCheck] | None = None,
) -> list[Judged]:
    """The added, upgraded and downgraded releases whose package history is known, judged in
    the same passes as ``check``: each release alone, with the custody of the release it
    replaces trusted, then the tree of changes (``deps.*``, bursts). Pure: everything is
    fetched before. ``from_version`` is the replaced locked version."""
    merged_new = merge_locked(new)
    old_versions = _versions_by_package(old)
    fans = fan_in(new)
    known_bad = known_bad or {}
    publishes = publishes or {}
    checks = provenance_checks or {}
    first: list[Judged] = []
    resourced: list[Judged] = []
    for change in changes:
        history = histories.get((change.ecosystem, change.name))
        if change.kind not in JUDGED or history is None:
            continue
        dep, locations = merged_new[change.key]
        history = history.as_of(as_of)
        candidate = find_release(history, dep.version)
        publisher = candidate.publisher.id if candidate and candidate.publisher else None
        judged = judge_release(
            dep,
            history,
            trust,
            observations=observations.get((change.ecosystem, change.name), ()),
            now=now,
            fan_in=fans.get(dep.package_key, 1),
            implicit=_old_custodians(history, old_versions.get((dep.ecosystem, dep.name), ())),
            locations=locations,
            # a kept version from another source: only its lockfile entry changed
            signals=(lockfile_entry,) if change.kind is ChangeKind.RESOURCED else RELEASE_SIGNALS,
            known_bad=known_bad.get(package_id(dep.ecosystem, dep.name), ()),
            publishes=publishes.get(publisher, ()) if publisher else (),
            known=None if change.kind is ChangeKind.ADDED else True,
            provenance_check=checks.get(candidate.key) if candidate else None,
        )
        decision = replace(judged.decision, from_version=change.old_version)
        judged = replace(judged, decision=decision)
        (resourced if change.kind is ChangeKind.RESOURCED else first).append(judged)
    return judge_tree(first, trust) + resourced


def removed_decisions(changes: Sequence[Change], old: Sequence[LockedDependency]) -> list[Decision]:
    merged_old = merge_locked(old)
    return [_removed(c, merged_old.get(c.key)) for c in changes if c.kind is ChangeKind.REMOVED]


def _removed(
    change: Change, merged: tuple[LockedDependency, tuple[SourceLocation, ...]] | None
) -> Decision:
    version = change.old_version or ""
    return Decision(
        change.ecosystem,
        change.name,
        version,
        None,
        Action.ALLOW,
        (
            Finding(
                REMOVED_RULE,
                Severity.INFO,
                f"{change.package_key} {version} is no longer locked",
                {"version": version},
            ),
        ),
        locations=merged[1] if merged else (),
    )


def _judged_dependencies(
    changes: Sequence[Change], new: Sequence[LockedDependency]
) -> list[LockedDependency]:
    """One merged dependency per judged release (added, upgraded, downgraded)."""
    merged = merge_locked(new)
    return [merged[c.key][0] for c in changes if c.kind in JUDGED]


def ecosystems_to_fetch(old: Locked, new: Locked) -> set[Ecosystem]:
    """The ecosystems whose registries a diff of ``old`` and ``new`` needs (none when only
    removals or nothing changed, so no registry needs to be configured then)."""
    changes = compute_changes(old.dependencies, new.dependencies)
    return {c.ecosystem for c in changes if c.kind in JUDGED}


def diff(
    old: Locked,
    new: Locked,
    trust: TrustFile,
    ledger: Ledger,
    settings: RegistrySettings,
    *,
    as_of: datetime | None = None,
    options: FetchOptions | None = None,
) -> Report:
    """``custody diff``: judge the releases that changed between ``old`` and ``new``.

    Histories are fetched only for the packages whose locked versions changed."""
    options = options or FetchOptions()
    changes = compute_changes(old.dependencies, new.dependencies)
    judged = _judged_dependencies(changes, new.dependencies)
    now = datetime.now(UTC)
    fetched = Fetched({})
    if judged:
        wanted = _ids(judged)
        replaced = [d for d in old.dependencies if (d.ecosystem, d.name) in wanted]
        enrich = pypi_details([*judged, *replaced])  # PyPI dependencies of both sides
        fetched = fetch(judged, settings, ledger, options, enrich=enrich)
    observations = record_observations(ledger, fetched.histories.values(), now)
    gather.record_publishes(ledger, fetched.histories.values(), as_of or now)
    present = [d for d in judged if (d.ecosystem, d.name) in fetched.histories]
    results = judge_changes(
        changes,
        old.dependencies,
        new.dependencies,
        fetched.histories,
        trust,
        observations=observations,
        now=as_of or now,
        as_of=as_of,
        known_bad=gather.known_bad_for(ledger, present),
        publishes=gather.publishes_around(
            ledger, gather.candidates(present, fetched.histories, as_of), as_of or now
        ),
        provenance_checks=fetched.provenance,
    )
    if (
        options.content or trust.policy.fingerprints
    ):  # every upgrade and downgrade: compare the files with the old release
        results = review_content(results, trust, settings, ledger, options, select=_changed)
    decisions = [j.decision for j in results] + removed_decisions(changes, old.dependencies)
    decisions += _missing(changes, judged, fetched)
    decisions.sort(key=lambda d: (-d.action.rank, d.ecosystem.value, d.package, d.version))
    return Report(
        command="diff",
        decisions=tuple(decisions),
        generated_at=now,
        as_of=as_of,
        lockfiles=old.lockfiles + new.lockfiles,
        trust_file=str(trust.path) if trust.path else None,
        warnings=tuple(_new_skipped(old, new).warnings() + coverage_warnings(decisions)),
    )


def _changed(j: Judged) -> bool:
    return j.decision.from_version is not None


def _ids(deps: Iterable[LockedDependency]) -> set[PackageId]:
    return {(d.ecosystem, d.name) for d in deps}


def _missing(
    changes: Sequence[Change], judged: Sequence[LockedDependency], fetched: Fetched
) -> list[Decision]:
    """Judged releases of packages the registry does not know: held (``release.unpublished``)."""
    before = {c.key: c.old_version for c in changes if c.kind in JUDGED}
    return [replace(d, from_version=before.get(d.key)) for d in missing_decisions(judged, fetched)]


def _new_skipped(old: Locked, new: Locked) -> Locked:
    """The new side's non-registry entries that the old side did not have."""
    seen = {(s.name, s.kind, s.source) for s in old.skipped}
    fresh = tuple(s for s in new.skipped if (s.name, s.kind, s.source) not in seen)
    return Locked((), fresh, new.lockfiles)


# ----------------------------------------------------------------------------- the sides

EMPTY = Locked((), (), ())
"""A side with no lockfile: a lockfile that is new (old side) or deleted (new side)."""


def combine(sides: Iterable[Locked]) -> Locked:
    """Several lockfiles read as one side."""
    parts = list(sides)
    return Locked(
        tuple(d for p in parts for d in p.dependencies),
        tuple(s for p in parts for s in p.skipped),
        tuple(f for p in parts for f in p.lockfiles),
    )


def split_git_spec(spec: str, cwd: Path) -> tuple[str, str] | None:
    """``REV:path`` -> ``(REV, path)``; None for a lockfile path. A file that exists is always a
    path, even with a colon in its name."""
    if ":" not in spec or (cwd / spec).exists():
        return None
    rev, path = spec.split(":", 1)
    return rev, path


def read_side(spec: str, cwd: Path) -> Locked:
    """One side of a diff: a lockfile path, or ``REV:path`` read from the git repository of
    ``cwd`` (``path`` as git reads it: from the repository root, or from ``cwd`` when it starts
    with ``./`` or ``../``)."""
    git_spec = split_git_spec(spec, cwd)
    if git_spec is None:
        return read_lockfiles([Path(spec)]) if Path(spec).is_absolute() else read_under(cwd, spec)
    rev, path = git_spec
    repo = GitRepo.at(cwd, what=spec)
    return repo.read_lockfile(rev, repo.root_relative(path, what=spec))


def read_changed_since(base: str, cwd: Path) -> tuple[Locked, Locked]:
    """``--base REV``: the lockfiles that differ between ``REV`` and the working tree (tracked
    or untracked, anywhere in the repository), each paired with its version at ``REV``. A
    lockfile new since ``REV`` pairs with an empty old side, a deleted one with an empty new
    side."""
    repo = GitRepo.at(cwd, what=f"--base {base}")
    repo.verify_commit(base)
    olds: list[Locked] = []
    news: list[Locked] = []
    for path in repo.changed_lockfiles(base):
        olds.append(repo.read_lockfile(base, path) if repo.has_file(base, path) else EMPTY)
        work = repo.top / path
        news.append(read_under(cwd, os.path.relpath(work, cwd)) if work.is_file() else EMPTY)
    return combine(olds), combine(news)


def _check_rev(rev: str, what: str) -> None:
    if rev.startswith("-"):
        raise InputError(f"{what}: a git revision cannot start with '-'")


@dataclass(frozen=True, slots=True)
class GitRepo:
    """The git repository the current directory is in, read with the ``git`` command."""

    cwd: Path
    top: Path  # the work tree root
    prefix: str  # cwd relative to ``top``, "" or ending in "/"

    @classmethod
    def at(cls, cwd: Path, *, what: str) -> GitRepo:
        out = _git(cwd, "rev-parse", "--show-toplevel", "--show-prefix", what=what)
        lines = out.decode(errors="replace").splitlines()
        if not lines:
            raise InputError(f"{what}: {cwd} is not in a git work tree")
        return cls(cwd, Path(lines[0]), lines[1] if len(lines) > 1 else "")

    def root_relative(self, path: str, *, what: str) -> str:
        """``path`` as git reads it after ``REV:``: ``./x`` and ``../x`` from the current
        directory, anything else from the repository root."""
        if not path:
            raise InputError(f"{what}: no path after the ':' (REV:path)")
        if path.startswith(("./", "../")) or path in (".", ".."):
            path = posixpath.normpath(self.prefix + path)
        if path.startswith("../") or path == "..":
            raise InputError(f"{what}: the path is outside the repository")
        return path

    def run(self, *args: str, what: str) -> bytes:
        return _git(self.cwd, *args, what=what)

    def verify_commit(self, rev: str) -> None:
        what = f"--base {rev}"
        _check_rev(rev, what)
        if not self._succeeds("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"):
            raise InputError(f"{what}: not a commit in the git repository at {self.top}")

    def has_file(self, rev: str, path: str) -> bool:
        return self._succeeds("cat-file", "-e", f"{rev}:{path}")

    def _succeeds(self, *args: str) -> bool:
        try:
            _git(self.cwd, *args, what="git")
        except InputError:
            return False
        return True

    def blob(self, rev: str, path: str) -> bytes:
        """The file ``path`` (from the root) at ``rev``; ``InputError`` naming ``REV:path``."""
        what = f"{rev}:{path}"
        _check_rev(rev, what)
        kind = self.run("cat-file", "-t", what, what=what).decode().strip()
        if kind != "blob":
            raise InputError(f"{what}: not a file in git (a {kind})")
        return self.run("cat-file", "blob", what, what=what)

    def changed_lockfiles(self, base: str) -> list[str]:
        """Lockfile paths (from the root) that differ between ``base`` and the working tree,
        plus untracked ones; never inside ``node_modules``."""
        what = f"--base {base}"
        # Run from the root: git prints paths from there (unless diff.relative is set, which is
        # then relative to the root too).
        changed = _git(self.top, "diff", "--name-only", "--no-renames", "-z", base, "--", what=what)
        untracked = _git(self.top, "ls-files", "--others", "--exclude-standard", "-z", what=what)
        names = {
            p.decode(errors="surrogateescape")
            for p in changed.split(b"\0") + untracked.split(b"\0")
        }
        return sorted(
            p
            for p in names
            if p and is_lockfile_name(Path(p)) and "node_modules" not in PurePosixPath(p).parts
        )

    def read_lockfile(self, rev: str, path: str) -> Locked:
        """Read ``REV:path`` with the lockfile readers. The blob (and the requirements files it
        includes) is written under a temporary directory at the same relative path, so format
        detection by name works; locations and errors name ``REV:path`` and the line."""
        with tempfile.TemporaryDirectory(prefix="custody-diff-") as tmp:
            root = Path(tmp)
            self._materialise(rev, path, root, set())
            return read_under(root, path, f"{rev}:")

    def _materialise(self, rev: str, path: str, root: Path, seen: set[str]) -> None:
        seen.add(path)
        data = self.blob(rev, path)
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        text = data.decode("utf-8", errors="replace")
        try:
            reader = detect_reader(target, text)
        except LockfileError:
            return  # the reader will say what is wrong, naming REV:path
        if not isinstance(reader, RequirementsReader):
            return
        for include in _requirement_includes(text):
            wanted = posixpath.normpath(posixpath.join(posixpath.dirname(path), include))
            if wanted in seen or wanted.startswith("../") or len(seen) >= MAX_INCLUDED_FILES:
                continue
            if self.has_file(rev, wanted):
                self._materialise(rev, wanted, root, seen)


_INCLUDE = re.compile(r"^\s*(?:-r|--requirement)(?:\s*=\s*|\s+|(?=[^\s=]))(\S+)", re.MULTILINE)


def _requirement_includes(text: str) -> list[str]:
    """Targets of ``-r FILE`` / ``--requirement FILE`` lines (local files only)."""
    return [m.group(1) for m in _INCLUDE.finditer(text) if "://" not in m.group(1)]


def read_under(root: Path, relative: str, label: str = "") -> Locked:
    """Read the lockfile ``root/relative``; every path under ``root`` in its locations, its
    name and its errors is shown as ``label`` + the path from ``root`` (``REV:path`` for a git
    blob written to a temporary ``root``, a path from the current directory otherwise)."""
    prefix = str(root) + os.sep

    def shown(path: str) -> str:
        if not path.startswith(prefix):
            return path
        return label + posixpath.normpath(Path(path[len(prefix) :]).as_posix())

    def where(loc: SourceLocation | None) -> SourceLocation | None:
        return replace(loc, path=shown(loc.path)) if loc else None

    try:
        locked = read_lockfiles([root / relative])
    except LockfileError as exc:
        path = shown(exc.path) if exc.path else None
        reason = exc.reason.replace(prefix, label)
        raise LockfileError(reason, path=path, line=exc.line) from None
    return Locked(
        tuple(replace(d, location=where(d.location)) for d in locked.dependencies),
        tuple(replace(s, location=where(s.location)) for s in locked.skipped),
        tuple(shown(p) for p in locked.lockfiles),
    )


def _git(cwd: Path, *args: str, what: str) -> bytes:
    """Run ``git -C cwd ARGS``; any failure is an ``InputError`` (exit 2) starting with
    ``what`` and ending with git's own message."""
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise InputError(f"{what}: git is not installed (needed to read REV:path)") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"{what}: git did not answer within {GIT_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise InputError(f"{what}: {_git_message(done.stderr)}")
    return done.stdout


def _git_message(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line.removeprefix("fatal: ").removeprefix("error: ") for line in lines if line]
    return lines[-1] if lines else "git failed"
