"""uv's ``uv.lock`` (``version = 1``).

The project and its workspace members (``[manifest] members``, or the ``editable``/``virtual``
package at ``.``) are roots, not dependencies. Direct dependencies are what the roots list in
``dependencies``, ``optional-dependencies`` and ``dev-dependencies``. ``optional``/``dev`` follow
reachability: reached from the roots' main dependencies (following extras as the edges request
them) is neither; otherwise reached through a root's extras is ``optional``, through a
dependency group ``dev``. Git, URL, path and directory sources are reported as skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from custody.lockfiles._common import (
    LockfileReport,
    expect_dict,
    expect_list,
    fail,
    first_hash,
    header_lines,
    optional_str,
    parse_toml,
    pypi_name,
    try_parse_toml,
)
from custody.lockfiles._python import PyPackage, finish, index_by_name, unrequired_starts
from custody.model import Ecosystem, LockedDependency

_LOCAL_SOURCES = ("editable", "virtual", "directory")
_SOURCE_KINDS = {"registry": "registry", "git": "git", "url": "url", "path": "file"}


@dataclass(frozen=True, slots=True)
class _Edge:
    target: int
    extras: frozenset[str]
    marker: str | None


@dataclass(slots=True)
class _Groups:
    main: list[_Edge] = field(default_factory=list)
    extras: dict[str, list[_Edge]] = field(default_factory=dict)
    dev: list[_Edge] = field(default_factory=list)


class UvLockReader:
    format_name = "uv.lock"
    ecosystem = Ecosystem.PYPI

    def matches_name(self, path: Path) -> bool:
        return path.name == "uv.lock"

    def matches_content(self, text: str) -> bool:
        data = try_parse_toml(text)
        if data is None or "lock-version" in data or "metadata" in data:
            return False
        packages = data.get("package")
        return (
            isinstance(data.get("version"), int)
            and isinstance(packages, list)
            and any(isinstance(p, dict) and "source" in p for p in packages)
        )

    def matches(self, path: Path, text: str) -> bool:
        return self.matches_name(path) or self.matches_content(text)

    def read(self, path: Path, text: str) -> list[LockedDependency]:
        return list(self.read_report(path, text).dependencies)

    def read_report(self, path: Path, text: str) -> LockfileReport:
        data = parse_toml(path, text)
        version = data.get("version")
        if isinstance(version, bool) or version != 1:
            raise fail(path, f"unsupported uv.lock version {version!r} (known: 1)", 1)
        raw_packages = expect_list(data.get("package", []), "[[package]]", path, None)
        lines = header_lines(text, "package", len(raw_packages))
        tables = [
            expect_dict(raw, "[[package]]", path, line)
            for raw, line in zip(raw_packages, lines, strict=True)
        ]
        packages = [_package(path, t, line) for t, line in zip(tables, lines, strict=True)]
        _mark_roots(path, data, tables, packages)
        by_name = index_by_name(packages)
        groups = [
            _edges(path, t, p, by_name, tables) for t, p in zip(tables, packages, strict=True)
        ]
        for pkg, group in zip(packages, groups, strict=True):
            pkg.deps = [e.target for e in _all_edges(group)]
        _classify(packages, groups)
        starts: list[tuple[int, tuple[str, ...]]] = [
            (edge.target, (packages[edge.target].name,))
            for i, pkg in enumerate(packages)
            if pkg.root
            for edge in _all_edges(groups[i])
            if not packages[edge.target].root
        ]
        if not any(p.root for p in packages):
            starts = unrequired_starts(packages)
        deps, skipped = finish(path, packages, starts)
        return LockfileReport(str(path), self.format_name, self.ecosystem, tuple(deps), skipped)


def _package(path: Path, table: dict[str, object], line: int | None) -> PyPackage:
    name = pypi_name(table.get("name"), path, line)
    what = f"package {name!r}:"
    version = optional_str(table.get("version"), f"{what} version", path, line)
    source = expect_dict(table.get("source"), f"{what} source", path, line)
    if len(source) != 1:
        raise fail(path, f"{what} source must have exactly one kind", line)
    ((kind, where),) = source.items()
    where_text = optional_str(where, f"{what} source {kind}", path, line)
    pkg = PyPackage(name=name, version=version, line=line, source=where_text)
    if kind in _LOCAL_SOURCES:
        pkg.kind = "local"
    elif kind in _SOURCE_KINDS:
        pkg.kind = _SOURCE_KINDS[kind]
    else:
        raise fail(path, f"{what} unknown source kind {kind!r}", line)
    if pkg.kind == "registry":
        pkg.source = None
        if version is None or not version.strip():
            raise fail(path, f"{what} a registry package needs a version", line)
    hashes: list[str] = []
    urls: list[str] = []
    sdist = table.get("sdist")
    artifacts = [] if sdist is None else [expect_dict(sdist, f"{what} sdist", path, line)]
    for wheel in expect_list(table.get("wheels", []), f"{what} wheels", path, line):
        artifacts.append(expect_dict(wheel, f"{what} wheel", path, line))
    for artifact in artifacts:
        digest = optional_str(artifact.get("hash"), f"{what} hash", path, line)
        url = optional_str(artifact.get("url"), f"{what} url", path, line)
        hashes.extend([digest] if digest else [])
        urls.extend([url] if url else [])
    pkg.integrity = first_hash(hashes[:1])
    pkg.resolved = urls[0] if urls else None
    return pkg


def _mark_roots(
    path: Path, data: dict[str, object], tables: list[dict[str, object]], packages: list[PyPackage]
) -> None:
    manifest = expect_dict(data.get("manifest", {}), "[manifest]", path, None)
    members = expect_list(manifest.get("members", []), "[manifest] members", path, None)
    member_names = {pypi_name(m, path, None, "workspace member") for m in members}
    for table, pkg in zip(tables, packages, strict=True):
        source = table.get("source")
        at_root = isinstance(source, dict) and any(source.get(k) == "." for k in _LOCAL_SOURCES)
        if pkg.kind == "local" and (pkg.name in member_names or at_root):
            pkg.root = True


def _edges(
    path: Path,
    table: dict[str, object],
    pkg: PyPackage,
    by_name: dict[str, list[int]],
    tables: list[dict[str, object]],
) -> _Groups:
    what = f"package {pkg.name!r}:"
    groups = _Groups()

    def parse(items: object, label: str) -> list[_Edge]:
        out: list[_Edge] = []
        for item in expect_list(items, f"{what} {label}", path, pkg.line):
            dep = expect_dict(item, f"{what} {label} entry", path, pkg.line)
            name = pypi_name(dep.get("name"), path, pkg.line, f"{what} {label} entry name")
            version = optional_str(dep.get("version"), f"{what} {name} version", path, pkg.line)
            candidates = [
                j
                for j in by_name.get(name, ())
                if (version is None or tables[j].get("version") == version)
                and ("source" not in dep or tables[j].get("source") == dep["source"])
            ]
            if not candidates:
                raise fail(path, f"{what} depends on {name!r}, which is not locked", pkg.line)
            extras = expect_list(dep.get("extra", []), f"{what} {name} extra", path, pkg.line)
            marker = optional_str(dep.get("marker"), f"{what} {name} marker", path, pkg.line)
            wanted = frozenset(e for e in extras if isinstance(e, str))
            out.extend(_Edge(j, wanted, marker) for j in candidates)
        return out

    groups.main = parse(table.get("dependencies", []), "dependencies")
    optional = table.get("optional-dependencies", {})
    extras = expect_dict(optional, f"{what} optional-dependencies", path, pkg.line)
    groups.extras = {extra: parse(items, f"extra {extra}") for extra, items in extras.items()}
    dev_groups = table.get("dev-dependencies", {})
    dev = expect_dict(dev_groups, f"{what} dev-dependencies", path, pkg.line)
    groups.dev = [edge for group, items in dev.items() for edge in parse(items, f"group {group}")]
    return groups


def _all_edges(groups: _Groups) -> list[_Edge]:
    return [*groups.main, *(e for es in groups.extras.values() for e in es), *groups.dev]


def _reach(seeds: list[_Edge], groups: list[_Groups]) -> set[int]:
    """Packages installed from ``seeds``: main dependencies, plus the extras edges ask for."""
    active: dict[int, set[str]] = {}
    work = [(e.target, set(e.extras)) for e in seeds]
    while work:
        index, extras = work.pop()
        current = active.get(index)
        fresh = current is None
        new = extras if current is None else extras - current
        if not fresh and not new:
            continue
        active.setdefault(index, set()).update(new)
        follow = list(groups[index].main) if fresh else []
        for extra in new:
            follow.extend(groups[index].extras.get(extra, ()))
        work.extend((e.target, set(e.extras)) for e in follow)
    return set(active)


def _classify(packages: list[PyPackage], groups: list[_Groups]) -> None:
    roots = [i for i, p in enumerate(packages) if p.root]
    main = _reach([e for i in roots for e in groups[i].main], groups)
    extras = _reach([e for i in roots for es in groups[i].extras.values() for e in es], groups)
    dev = _reach([e for i in roots for e in groups[i].dev], groups)
    markers: dict[int, set[str | None]] = {}
    for group in groups:
        for edge in _all_edges(group):
            markers.setdefault(edge.target, set()).add(edge.marker)
    for i, pkg in enumerate(packages):
        if i not in main:
            pkg.optional = i in extras
            pkg.dev = i in dev and not pkg.optional
        seen = markers.get(i, set())
        if len(seen) == 1:
            pkg.marker = next(iter(seen))
