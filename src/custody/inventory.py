"""The inventory of scanned projects (``custody check --record``) and ``custody where``: every
project, lockfile and dependency path that includes a package, optionally within a version range
(npm ranges by node-semver, PyPI specifiers by PEP 440)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nodesemver
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from custody.errors import InputError
from custody.ledger import InventoryEntry, Ledger
from custody.model import Ecosystem, LockedDependency


@dataclass(frozen=True, slots=True)
class Recorded:
    project: str
    lockfile: str
    dependencies: int


def lockfile_key(path: str | Path) -> str:
    """How the inventory names a lockfile: its absolute path (rollback edits files beside it)."""
    return str(Path(path).resolve())


def default_project(lockfile: str | Path) -> str:
    """A project is named by the folder its lockfile is in, unless ``--project`` says."""
    return str(Path(lockfile).resolve().parent)


def record_locked(
    ledger: Ledger,
    lockfiles: Sequence[str],
    deps: Sequence[LockedDependency],
    *,
    project: str | None,
    scanned_at: datetime,
) -> list[Recorded]:
    """Replace each lockfile's inventory with what it locks now."""
    by_file: dict[str, list[LockedDependency]] = defaultdict(list)
    for d in deps:
        path = d.location.path if d.location else (lockfiles[0] if len(lockfiles) == 1 else None)
        if path is not None:
            by_file[lockfile_key(path)].append(d)
    out = []
    for lockfile in lockfiles:
        key = lockfile_key(lockfile)
        name = project or default_project(lockfile)
        ledger.record_inventory(name, key, by_file.get(key, []), scanned_at)
        out.append(Recorded(name, key, len(by_file.get(key, []))))
    return out


def normalise_name(ecosystem: Ecosystem, name: str) -> str:
    return canonicalize_name(name) if ecosystem is Ecosystem.PYPI else name


def check_range(ecosystem: Ecosystem, spec: str | None) -> None:
    """Raise ``InputError`` unless ``spec`` is a valid range for the ecosystem (None: any)."""
    if spec is None:
        return
    if ecosystem is Ecosystem.NPM:
        try:
            nodesemver.make_range(spec, loose=True)
        except (ValueError, TypeError):
            raise InputError(f"not an npm version range: {spec!r}") from None
        return
    _specifier(spec)


def _specifier(spec: str) -> SpecifierSet:
    text = spec.strip()
    if text and text[0] not in "<>=!~":
        text = f"=={text}"  # a bare version means exactly that version
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise InputError(f"not a PEP 440 version specifier: {spec!r}") from None


def in_range(ecosystem: Ecosystem, version: str, spec: str | None) -> bool:
    """Does ``version`` fall within ``spec`` (None: any)? Pre-releases count."""
    if spec is None:
        return True
    if ecosystem is Ecosystem.NPM:
        try:
            return bool(nodesemver.satisfies(version, spec, loose=True, include_prerelease=True))
        except (ValueError, TypeError):
            return version == spec
    try:
        return _specifier(spec).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def where(
    ledger: Ledger, ecosystem: Ecosystem, name: str, spec: str | None = None
) -> list[InventoryEntry]:
    """Every recorded lockfile entry of ``name`` within ``spec``."""
    check_range(ecosystem, spec)
    entries = ledger.where(ecosystem, normalise_name(ecosystem, name))
    return [e for e in entries if in_range(ecosystem, e.version, spec)]


def path_text(path: Sequence[str]) -> str:
    return " > ".join(path)
