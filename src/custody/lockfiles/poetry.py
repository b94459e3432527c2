"""Poetry's ``poetry.lock`` (lock-version 1.x and 2.x).

The lockfile does not list the project's own dependencies: direct ones come from the
``pyproject.toml`` beside it, or, without one, are the packages nothing else depends on.
``dev`` is a package outside the ``main`` group (2.x ``groups``, 1.x ``category = "dev"``);
``optional`` is Poetry's own flag (only installed for an extra). Packages from git, a URL, a file
or a folder (``[package.source] type``) are reported as skipped; ``legacy`` sources are private
indexes, so registry releases; a source type Poetry did not have when this was written is an
error (judging the index's release of that name could judge other bytes than those installed)."""

from __future__ import annotations

from pathlib import Path

from custody.lockfiles._common import (
    LockfileReport,
    expect_dict,
    expect_list,
    expect_str,
    fail,
    first_hash,
    header_lines,
    optional_str,
    parse_toml,
    pypi_name,
    try_parse_toml,
)
from custody.lockfiles._python import (
    PyPackage,
    declared_dependencies,
    finish,
    index_by_name,
    starts_from_names,
    unrequired_starts,
)
from custody.model import Ecosystem, LockedDependency

_SKIPPED_SOURCES = {"git": "git", "url": "url", "file": "file", "directory": "local"}


class PoetryLockReader:
    format_name = "poetry.lock"
    ecosystem = Ecosystem.PYPI

    def matches_name(self, path: Path) -> bool:
        return path.name == "poetry.lock"

    def matches_content(self, text: str) -> bool:
        data = try_parse_toml(text)
        if data is None or "lock-version" in data:
            return False
        metadata = data.get("metadata")
        return isinstance(metadata, dict) and "content-hash" in metadata

    def matches(self, path: Path, text: str) -> bool:
        return self.matches_name(path) or self.matches_content(text)

    def read(self, path: Path, text: str) -> list[LockedDependency]:
        return list(self.read_report(path, text).dependencies)

    def read_report(self, path: Path, text: str) -> LockfileReport:
        data = parse_toml(path, text)
        if "metadata" not in data:
            raise fail(path, "not a poetry.lock: no [metadata] table", 1)
        metadata = expect_dict(data["metadata"], "[metadata]", path, None)
        legacy_files = expect_dict(metadata.get("files", {}), "[metadata.files]", path, None)
        raw_packages = expect_list(data.get("package", []), "[[package]]", path, None)
        lines = header_lines(text, "package", len(raw_packages))
        packages: list[PyPackage] = []
        wanted: list[list[str]] = []
        for raw, line in zip(raw_packages, lines, strict=True):
            pkg, deps = _package(path, raw, line, legacy_files)
            packages.append(pkg)
            wanted.append(deps)
        by_name = index_by_name(packages)
        for pkg, names in zip(packages, wanted, strict=True):
            # a dependency that is not locked was optional or for another platform
            pkg.deps = [j for name in names for j in by_name.get(name, ())]
        declared = declared_dependencies(path)
        if declared is None:
            starts = unrequired_starts(packages)
        else:
            starts = starts_from_names(packages, declared)
        found, skipped = finish(path, packages, starts)
        return LockfileReport(str(path), self.format_name, self.ecosystem, tuple(found), skipped)


def _package(
    path: Path, raw: object, line: int | None, legacy_files: dict[str, object]
) -> tuple[PyPackage, list[str]]:
    entry = expect_dict(raw, "[[package]]", path, line)
    raw_name = entry.get("name")
    name = pypi_name(raw_name, path, line)
    what = f"package {name!r}:"
    version = expect_str(entry.get("version"), f"{what} version", path, line)
    pkg = PyPackage(name=name, version=version, line=line)

    source = entry.get("source")
    if source is not None:
        table = expect_dict(source, f"{what} [package.source]", path, line)
        kind = optional_str(table.get("type"), f"{what} source type", path, line)
        url = optional_str(table.get("url"), f"{what} source url", path, line)
        if kind in _SKIPPED_SOURCES:
            pkg.kind, pkg.source = _SKIPPED_SOURCES[kind], url
        elif kind not in (None, "legacy"):
            # not knowing where it comes from, judging the index's release of that name
            # could judge other bytes than the ones installed
            raise fail(path, f"{what} source of unknown type {kind!r}", line)

    files = entry.get("files")
    if files is None and isinstance(raw_name, str):
        files = legacy_files.get(raw_name, legacy_files.get(name))
    hashes: list[str] = []
    for item in expect_list(files if files is not None else [], f"{what} files", path, line):
        record = expect_dict(item, f"{what} files entry", path, line)
        digest = optional_str(record.get("hash"), f"{what} file hash", path, line)
        if digest:
            hashes.append(digest)
    pkg.integrity = first_hash(hashes)

    groups = entry.get("groups")
    if groups is not None:
        group_list = expect_list(groups, f"{what} groups", path, line)
        pkg.dev = bool(group_list) and "main" not in group_list
    else:
        pkg.dev = entry.get("category") == "dev"
    pkg.optional = entry.get("optional") is True
    pkg.marker = _marker(entry.get("markers"))

    dependencies = expect_dict(entry.get("dependencies", {}), f"{what} dependencies", path, line)
    names = [pypi_name(dep, path, line, f"{what} dependency") for dep in dependencies]
    return pkg, names


def _marker(value: object) -> str | None:
    """Poetry 2 writes one marker string, or a table of markers per group."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        markers = list(value.values())
        if markers and all(isinstance(m, str) and m == markers[0] for m in markers):
            return str(markers[0]) or None
    return None
