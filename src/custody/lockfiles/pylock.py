"""PEP 751 ``pylock.toml`` / ``pylock.<name>.toml`` (lock-version 1.x).

The format does not name the project's own dependencies and its per-package ``dependencies`` are
optional. Direct dependencies come from the ``pyproject.toml`` beside it (which also tells ``dev``
and ``optional`` for those), else the packages no other package depends on when ``dependencies``
are recorded, else every package is taken as direct. ``vcs``, ``directory`` and ``archive``
packages are reported as skipped."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

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
    DEV,
    OPTIONAL,
    PyPackage,
    declared_dependencies,
    finish,
    index_by_name,
    starts_from_names,
    unrequired_starts,
)
from custody.model import Ecosystem, LockedDependency


class PylockReader:
    format_name = "pylock"
    ecosystem = Ecosystem.PYPI

    def matches_name(self, path: Path) -> bool:
        name = path.name
        return name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml"))

    def matches_content(self, text: str) -> bool:
        data = try_parse_toml(text)
        return data is not None and "lock-version" in data

    def matches(self, path: Path, text: str) -> bool:
        return self.matches_name(path) or self.matches_content(text)

    def read(self, path: Path, text: str) -> list[LockedDependency]:
        return list(self.read_report(path, text).dependencies)

    def read_report(self, path: Path, text: str) -> LockfileReport:
        data = parse_toml(path, text)
        lock_version = expect_str(data.get("lock-version"), "lock-version", path, 1)
        if lock_version.split(".", 1)[0].strip() != "1":
            raise fail(path, f"unsupported lock-version {lock_version!r} (known: 1.x)", 1)
        raw_packages = expect_list(data.get("packages"), "[[packages]]", path, None)
        lines = header_lines(text, "packages", len(raw_packages))
        packages: list[PyPackage] = []
        wanted: list[list[str] | None] = []
        for raw, line in zip(raw_packages, lines, strict=True):
            pkg, deps = _package(path, raw, line)
            packages.append(pkg)
            wanted.append(deps)
        by_name = index_by_name(packages)
        for pkg, names in zip(packages, wanted, strict=True):
            pkg.deps = [j for name in names or () for j in by_name.get(name, ())]
        declared = declared_dependencies(path)
        if declared is not None:
            starts = starts_from_names(packages, declared)
            for pkg in packages:
                pkg.dev = declared.get(pkg.name) == DEV
                pkg.optional = declared.get(pkg.name) == OPTIONAL
        elif any(names is not None for names in wanted):
            starts = unrequired_starts(packages)
        else:
            starts = [(i, (p.name,)) for i, p in enumerate(packages)]
        found, skipped = finish(path, packages, starts)
        return LockfileReport(str(path), self.format_name, self.ecosystem, tuple(found), skipped)


def _package(path: Path, raw: object, line: int | None) -> tuple[PyPackage, list[str] | None]:
    table = expect_dict(raw, "[[packages]]", path, line)
    name = pypi_name(table.get("name"), path, line)
    what = f"package {name!r}:"
    version = optional_str(table.get("version"), f"{what} version", path, line)
    pkg = PyPackage(name=name, version=version, line=line)
    pkg.marker = optional_str(table.get("marker"), f"{what} marker", path, line) or None

    for key, kind in (("vcs", "git"), ("directory", "local"), ("archive", None)):
        if key in table:
            source = expect_dict(table[key], f"{what} {key}", path, line)
            url = optional_str(source.get("url"), f"{what} {key} url", path, line)
            local = optional_str(source.get("path"), f"{what} {key} path", path, line)
            pkg.kind = kind or ("url" if url else "file")
            pkg.source = url or local
            break

    artifacts: list[dict[str, object]] = []
    if "sdist" in table:
        artifacts.append(expect_dict(table["sdist"], f"{what} sdist", path, line))
    for wheel in expect_list(table.get("wheels", []), f"{what} wheels", path, line):
        artifacts.append(expect_dict(wheel, f"{what} wheel", path, line))
    for artifact in artifacts:
        hashes = expect_dict(artifact.get("hashes", {}), f"{what} hashes", path, line)
        digests = [f"{algo}:{digest}" for algo, digest in hashes.items() if isinstance(digest, str)]
        url = optional_str(artifact.get("url"), f"{what} url", path, line)
        pkg.integrity = pkg.integrity or first_hash(digests)
        pkg.resolved = pkg.resolved or url
    if pkg.kind == "registry" and not pkg.version:
        pkg.version = _version_from_files(path, name, artifacts, line)
        if pkg.version is None:
            raise fail(path, f"{what} no version (and none in its file names)", line)

    dependencies = table.get("dependencies")
    if dependencies is None:
        return pkg, None
    names = []
    for item in expect_list(dependencies, f"{what} dependencies", path, line):
        dep = expect_dict(item, f"{what} dependency", path, line)
        names.append(pypi_name(dep.get("name"), path, line, f"{what} dependency name"))
    return pkg, names


def _version_from_files(
    path: Path, name: str, artifacts: list[dict[str, object]], line: int | None
) -> str | None:
    """PEP 751 makes ``version`` optional: fall back to the name of a wheel or sdist of this
    project (a file named for another project says nothing about this one's version)."""
    for artifact in artifacts:
        filename = optional_str(artifact.get("name"), "file name", path, line)
        url = optional_str(artifact.get("url"), "file url", path, line)
        filename = filename or (url.rsplit("/", 1)[-1] if url else None)
        if not filename:
            continue
        try:
            if filename.endswith(".whl"):
                project, version, *_ = parse_wheel_filename(filename)
            else:
                project, version = parse_sdist_filename(filename)
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if canonicalize_name(project) == name:
            return str(version)
    return None
