"""Shared by the TOML Python lockfiles (poetry.lock, uv.lock, pylock.toml): one package record,
the sibling ``pyproject.toml``'s declared dependencies, and turning records into results."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from custody.lockfiles._common import (
    SkippedEntry,
    cycle_starts,
    location,
    merge_duplicates,
    shortest_paths,
)
from custody.model import Ecosystem, LockedDependency

PROD, OPTIONAL, DEV = "prod", "optional", "dev"
_RANK = {PROD: 0, OPTIONAL: 1, DEV: 2}


@dataclass(slots=True)
class PyPackage:
    name: str  # PEP 503 normalised
    version: str | None
    line: int | None
    kind: str = "registry"  # or git, url, file, local
    source: str | None = None
    integrity: str | None = None
    resolved: str | None = None
    marker: str | None = None
    dev: bool = False
    optional: bool = False
    root: bool = False  # the project itself or a workspace member: neither result nor skipped
    deps: list[int] = field(default_factory=list)  # indexes of the packages it depends on


def index_by_name(packages: Sequence[PyPackage]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, pkg in enumerate(packages):
        out.setdefault(pkg.name, []).append(i)
    return out


def declared_dependencies(lock_path: Path) -> dict[str, str] | None:
    """Names the project beside the lockfile declares (``pyproject.toml``), each with ``prod``,
    ``optional`` or ``dev``; None when there is no readable pyproject.toml, or when it lists
    no dependencies we can read (a file that only configures tools, or ``dynamic``
    dependencies kept in setup.py): then which ones are direct is unknown, not "none".

    Only used to tell direct dependencies (and, for pylock, dev ones): a broken pyproject.toml
    is the same as none, the lockfile itself is still read strictly."""
    try:
        data = tomllib.loads((lock_path.parent / "pyproject.toml").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    found: dict[str, str] = {}

    def add(name: str, kind: str) -> None:
        name = canonicalize_name(name)
        if name not in found or _RANK[kind] < _RANK[found[name]]:
            found[name] = kind

    def add_pep508(items: object, kind: str) -> None:
        from packaging.requirements import InvalidRequirement, Requirement  # see requirements.py

        for item in items if isinstance(items, list) else ():
            if isinstance(item, str):
                try:
                    add(Requirement(item).name, kind)
                except InvalidRequirement:
                    continue

    def add_poetry(table: object, kind: str) -> None:
        for name, spec in table.items() if isinstance(table, dict) else ():
            if name.lower() != "python":
                optional = isinstance(spec, dict) and spec.get("optional") is True
                add(name, OPTIONAL if optional and kind == PROD else kind)

    project = data.get("project")
    dynamic = False
    if isinstance(project, dict):
        add_pep508(project.get("dependencies"), PROD)
        listed = project.get("dynamic")
        dynamic = isinstance(listed, list) and "dependencies" in listed
        extras = project.get("optional-dependencies")
        for items in extras.values() if isinstance(extras, dict) else ():
            add_pep508(items, OPTIONAL)
    groups = data.get("dependency-groups")
    for items in groups.values() if isinstance(groups, dict) else ():
        add_pep508(items, DEV)
    tool = data.get("tool")
    tool = tool if isinstance(tool, dict) else {}
    poetry = tool.get("poetry")
    if isinstance(poetry, dict):
        dynamic = dynamic and not isinstance(poetry.get("dependencies"), dict)  # Poetry 2's way
        add_poetry(poetry.get("dependencies"), PROD)
        add_poetry(poetry.get("dev-dependencies"), DEV)
        poetry_groups = poetry.get("group")
        for group, table in poetry_groups.items() if isinstance(poetry_groups, dict) else ():
            if isinstance(table, dict):
                add_poetry(table.get("dependencies"), PROD if group == "main" else DEV)
    uv = tool.get("uv")
    if isinstance(uv, dict):
        add_pep508(uv.get("dev-dependencies"), DEV)
    return None if dynamic or not found else found


def starts_from_names(
    packages: Sequence[PyPackage], names: Iterable[str]
) -> list[tuple[int, tuple[str, ...]]]:
    wanted = set(names)
    return [(i, (p.name,)) for i, p in enumerate(packages) if p.name in wanted and not p.root]


def unrequired_starts(packages: Sequence[PyPackage]) -> list[tuple[int, tuple[str, ...]]]:
    """Without the project's own list: the packages no other locked package depends on (and
    one package of each dependency cycle that nothing else requires)."""
    required = {j for p in packages if not p.root for j in p.deps}
    members = [i for i, p in enumerate(packages) if not p.root]
    starts = [(i, (packages[i].name,)) for i in members if i not in required]
    return starts + cycle_starts(starts, members, _children(packages), lambda i: packages[i].name)


def _children(packages: Sequence[PyPackage]) -> Callable[[int], list[int]]:
    """The graph's edges: a package's dependencies, without the project and its members."""

    def children(i: int) -> list[int]:
        return [j for j in packages[i].deps if not packages[j].root]

    return children


def finish(
    path: Path, packages: Sequence[PyPackage], starts: Sequence[tuple[int, tuple[str, ...]]]
) -> tuple[list[LockedDependency], tuple[SkippedEntry, ...]]:
    direct = {i for i, _ in starts}
    paths = shortest_paths(starts, _children(packages), lambda i: packages[i].name)
    deps: list[LockedDependency] = []
    skipped: list[SkippedEntry] = []
    for i, pkg in enumerate(packages):
        if pkg.root:
            continue
        where = location(path, pkg.line)
        if pkg.kind != "registry" or pkg.version is None:
            skipped.append(SkippedEntry(pkg.name, pkg.kind, pkg.source, where))
            continue
        deps.append(
            LockedDependency(
                ecosystem=Ecosystem.PYPI,
                name=pkg.name,
                version=pkg.version,
                direct=i in direct,
                paths=tuple(paths.get(i, ())),
                integrity=pkg.integrity,
                resolved=pkg.resolved,
                marker=pkg.marker,
                location=where,
                dev=pkg.dev,
                optional=pkg.optional,
            )
        )
    return merge_duplicates(deps), tuple(skipped)
