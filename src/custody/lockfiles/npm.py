"""npm ``package-lock.json`` and ``npm-shrinkwrap.json``, lockfileVersion 1, 2 and 3.

Both shapes become one map of install locations (``node_modules/a/node_modules/b``), the v2/v3
``packages`` shape; a v1 tree is converted into it. Dependencies are then resolved the way Node
does (nearest ``node_modules`` up the tree), which gives the graph for ``direct`` and ``paths``.

What is not a registry release is reported in ``LockfileReport.skipped``, never returned as a
dependency: links and local folders (workspaces, ``file:`` folders) as ``local``, git checkouts,
remote tarballs (``url``), local tarballs (``file``) and ``bundled`` dependencies (their files are
inside the parent's tarball, so the parent's publisher is their custodian). An entry locked as a
registry release keeps its ``resolved`` URL, in every lockfile version: a git, ``file:`` or
``link:`` one makes it skipped, an http(s) tarball from anywhere leaves it a registry release, to
be compared with what the registry published (never skipped, which would let it pass).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from custody.lockfiles._common import (
    LockfileReport,
    SkippedEntry,
    cycle_starts,
    expect_dict,
    expect_str,
    fail,
    location,
    merge_duplicates,
    optional_str,
    parse_json,
    shortest_paths,
)
from custody.model import Ecosystem, LockedDependency

_FILE_NAMES = frozenset({"package-lock.json", "npm-shrinkwrap.json", ".package-lock.json"})
_INSTALLED_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")
_PROJECT_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_GIT_PREFIXES = ("git+", "git:", "git@", "github:", "gitlab:", "bitbucket:", "gist:")
_LOCAL_PREFIXES = ("file:", "link:", "./", "../", "/", "~/")
_SHORTHAND = re.compile(r"^[\w.-]+/[\w.-]+(#.*)?$")  # GitHub "user/repo#ref"
_TARBALL = (".tgz", ".tar.gz", ".tar")
_OBJECT_START = re.compile(r"\s*:\s*\{")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:]')  # strings and structure, not scalars
# An exact version, as the registry lists them (semver; leading zeros tolerated, old packages
# have them): a range or a tag ("^2.1.0", "latest") in a lockfile is not a locked release.
_EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


@dataclass(slots=True)
class _Node:
    """One install location, whatever the lockfile version."""

    key: str
    name: str
    line: int | None
    version: str | None = None
    kind: str = "registry"  # or git, url, file, local, bundled
    source: str | None = None
    integrity: str | None = None
    resolved: str | None = None
    dev: bool = False
    optional: bool = False
    first_party: bool = False  # the root, a workspace or a local folder: its deps are direct
    link_target: str | None = None
    report_skip: bool = False  # list it in ``skipped`` (links, v1 local folders)
    deps: list[tuple[str, str]] = field(default_factory=list)


class PackageLockReader:
    """``package-lock.json`` / ``npm-shrinkwrap.json`` (and npm's hidden lockfile)."""

    format_name = "package-lock"
    ecosystem = Ecosystem.NPM

    def matches_name(self, path: Path) -> bool:
        return path.name in _FILE_NAMES

    def matches_content(self, text: str) -> bool:
        return text.lstrip().startswith("{") and '"lockfileVersion"' in text

    def matches(self, path: Path, text: str) -> bool:
        return self.matches_name(path) or self.matches_content(text)

    def read(self, path: Path, text: str) -> list[LockedDependency]:
        return list(self.read_report(path, text).dependencies)

    def read_report(self, path: Path, text: str) -> LockfileReport:
        data = expect_dict(parse_json(path, text), "a package-lock.json", path, 1)
        version = data.get("lockfileVersion")
        version_line = _line_of(text, '"lockfileVersion"')
        if isinstance(version, bool) or not isinstance(version, int):
            raise fail(path, "lockfileVersion must be 1, 2 or 3", version_line)
        if version not in (1, 2, 3):
            raise fail(
                path, f"unsupported lockfileVersion {version} (known: 1, 2, 3)", version_line
            )
        manifest = _sibling_manifest(path)
        if "packages" in data and version >= 2:
            nodes = _from_packages(path, text, data["packages"], manifest)
        elif (version <= 2 and "dependencies" in data) or version == 1:
            nodes = _from_v1(path, text, data.get("dependencies", {}), manifest)
        else:
            raise fail(path, f"lockfileVersion {version} needs a 'packages' object", version_line)
        deps, skipped = _collect(path, nodes)
        return LockfileReport(str(path), self.format_name, self.ecosystem, tuple(deps), skipped)


# ------------------------------------------------------------------------------ positions


class _KeyLines:
    """Line numbers of ``"key": {`` in document order, found by one forward scan (the parsed
    objects keep the document's key order)."""

    def __init__(self, text: str, start: int = 0) -> None:
        self.text = text
        self.pos = start
        self.line = text.count("\n", 0, start) + 1

    def seek(self, key: str) -> int | None:
        needle = orjson.dumps(key).decode()
        start = self.pos
        while True:
            found = self.text.find(needle, start)
            if found < 0:
                return None
            end = found + len(needle)
            if _OBJECT_START.match(self.text, end):
                break
            start = end
        self.line += self.text.count("\n", self.pos, found)
        self.pos = end
        return self.line


def _entry_line(finder: _KeyLines, text: str, value: object, keys: tuple[str, ...]) -> int | None:
    """The line of the entry at ``keys`` (object keys from the top of the document).

    Entries are objects, found by ``finder``'s forward scan; any other value is an error about
    to be raised, so its line comes from an exact (slower) scan of the JSON structure."""
    if isinstance(value, dict):
        return finder.seek(keys[-1])
    return _member_line(text, keys)


def _member_line(text: str, keys: tuple[str, ...]) -> int | None:
    """The line of the member at ``keys``, by a scan that knows JSON strings and nesting (a
    name also used in ``requires`` or as a flag is not mistaken for the entry)."""
    path: list[str | None] = []  # per open container: the member being read (None: a list)
    last: re.Match[str] | None = None
    for token in _JSON_TOKEN.finditer(text):
        mark = token.group()
        if mark in ("{", "["):
            path.append(None)
        elif mark in ("}", "]"):
            if path:
                path.pop()
        elif mark == ":" and last is not None and last.group().startswith('"') and path:
            path[-1] = orjson.loads(last.group())
            if tuple(path) == keys:
                return text.count("\n", 0, last.start()) + 1
        last = token
    return None


def _line_of(text: str, needle: str) -> int | None:
    found = text.find(needle)
    return None if found < 0 else text.count("\n", 0, found) + 1


# ----------------------------------------------------------------------- lockfile shapes


def _sibling_manifest(path: Path) -> dict[str, str] | None:
    """The root's declared dependencies from a ``package.json`` beside the lockfile.

    Only used to tell direct dependencies; an unreadable manifest is the same as none."""
    try:
        data = orjson.loads((path.parent / "package.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    declared: dict[str, str] = {}
    for fld in _PROJECT_FIELDS:
        section = data.get(fld)
        if isinstance(section, dict):
            for name, spec in section.items():
                if isinstance(spec, str):
                    declared.setdefault(name, spec)
    return declared


def _dep_map(
    entry: dict[str, object], fields: tuple[str, ...], path: Path, line: int | None, what: str
) -> list[tuple[str, str]]:
    deps: list[tuple[str, str]] = []
    for fld in fields:
        section = entry.get(fld)
        if section is None:
            continue
        for name, spec in expect_dict(section, f"{what} {fld}", path, line).items():
            if not isinstance(spec, str):
                raise fail(path, f"{what} {fld}: the range of {name!r} must be a string", line)
            deps.append((name, spec))
    return deps


def _flag(entry: dict[str, object], key: str) -> bool:
    return entry.get(key) is True


def _from_packages(
    path: Path, text: str, raw: object, manifest: dict[str, str] | None
) -> dict[str, _Node]:
    """lockfileVersion 2/3: the ``packages`` map, keyed by install location."""
    start = text.find('"packages"')
    packages = expect_dict(raw, '"packages"', path, _line_of(text, '"packages"'))
    finder = _KeyLines(text, max(start, 0))
    nodes: dict[str, _Node] = {}
    for key, value in packages.items():
        line = _entry_line(finder, text, value, ("packages", key))
        entry = expect_dict(value, f"package entry {key!r}", path, line)
        what = f"package {key!r}:"
        installed = key.startswith("node_modules/") or "/node_modules/" in key
        path_name = key.rsplit("node_modules/", 1)[-1] if installed else key.rsplit("/", 1)[-1]
        name = optional_str(entry.get("name"), f"{what} name", path, line) or path_name
        if installed and not path_name:
            raise fail(path, f"{what} not a valid install location", line)
        node = _Node(key=key, name=name, line=line)
        node.resolved = optional_str(entry.get("resolved"), f"{what} resolved", path, line)
        node.integrity = optional_str(entry.get("integrity"), f"{what} integrity", path, line)
        node.version = optional_str(entry.get("version"), f"{what} version", path, line)
        if _flag(entry, "link"):
            node.link_target = expect_str(node.resolved, f"{what} resolved (link)", path, line)
            node.kind, node.source, node.report_skip = "local", node.link_target, True
        elif not installed:
            node.first_party = True
            fields = _PROJECT_FIELDS
            node.deps = _dep_map(entry, fields, path, line, what)
        else:
            expect_str(node.version, f"{what} version", path, line)
            node.deps = _dep_map(entry, _INSTALLED_FIELDS, path, line, what)
            node.dev = _flag(entry, "dev")
            node.optional = _flag(entry, "optional") or _flag(entry, "devOptional")
            if _flag(entry, "inBundle"):
                node.kind, node.source = "bundled", None
            else:
                _classify_resolved(node)
        nodes[key] = node
    root = nodes.get("")
    if root is not None and manifest:
        declared = {name for name, _ in root.deps}
        root.deps.extend((n, s) for n, s in manifest.items() if n not in declared)
    elif root is None and manifest is not None:
        nodes[""] = _Node(key="", name="", line=None, first_party=True, deps=list(manifest.items()))
    for node in nodes.values():  # a workspace folder is named by the link pointing at it
        if node.link_target and node.link_target in nodes:
            target = nodes[node.link_target]
            if target.name == target.key.rsplit("/", 1)[-1]:
                target.name = node.name
    return nodes


def _from_v1(
    path: Path, text: str, raw: object, manifest: dict[str, str] | None
) -> dict[str, _Node]:
    """lockfileVersion 1: a tree of nested ``dependencies``; converted to install locations."""
    top = expect_dict(raw, '"dependencies"', path, _line_of(text, '"dependencies"'))
    finder = _KeyLines(text)
    nodes: dict[str, _Node] = {}
    if manifest is not None:
        nodes[""] = _Node(key="", name="", line=None, first_party=True, deps=list(manifest.items()))
    # (install location, keys of its "dependencies" object in the document, its entries)
    stack: list[tuple[str, tuple[str, ...], Iterator[tuple[str, object]]]] = [
        ("", ("dependencies",), iter(top.items()))
    ]
    while stack:  # depth-first in document order, so ``finder`` only moves forward
        parent, keys, children = stack[-1]
        item = next(children, None)
        if item is None:
            stack.pop()
            continue
        key_name, value = item
        key = f"{parent}/node_modules/{key_name}" if parent else f"node_modules/{key_name}"
        line = _entry_line(finder, text, value, (*keys, key_name))
        entry = expect_dict(value, f"dependency {key_name!r}", path, line)
        what = f"dependency {key_name!r}:"
        spec = expect_str(entry.get("version"), f"{what} version", path, line)
        node = _Node(key=key, name=key_name, line=line, version=spec)
        node.resolved = optional_str(entry.get("resolved"), f"{what} resolved", path, line)
        node.integrity = optional_str(entry.get("integrity"), f"{what} integrity", path, line)
        node.dev = _flag(entry, "dev")
        node.optional = _flag(entry, "optional")
        requires = entry.get("requires")
        if requires is not None and not isinstance(requires, bool):
            node.deps = _dep_map(entry, ("requires",), path, line, what)
        if spec.startswith("npm:"):
            node.name, node.version = _alias(spec[4:], path, line, what)
        if _flag(entry, "bundled"):
            node.kind = "bundled"
        elif (kind := source_kind(spec, resolved=False)) != "registry":
            node.kind, node.source = kind, spec  # v1 writes a git, URL or file spec as version
        else:
            _classify_resolved(node)
        if node.kind == "local":
            node.first_party = node.report_skip = True
        nodes[key] = node
        nested = entry.get("dependencies")
        if nested is not None:
            nested_entries = expect_dict(nested, f"{what} dependencies", path, line)
            stack.append((key, (*keys, key_name, "dependencies"), iter(nested_entries.items())))
    return nodes


def _alias(rest: str, path: Path, line: int | None, what: str) -> tuple[str, str]:
    at = rest.rfind("@")
    if at <= 0 or at == len(rest) - 1:
        raise fail(path, f"{what} alias 'npm:{rest}' has no exact version", line)
    return rest[:at], rest[at + 1 :]


def _classify_resolved(node: _Node) -> None:
    """An entry whose version is a registry release comes from where ``resolved`` says: git,
    a local folder or file make it a skipped entry. Any http(s) tarball stays a registry
    dependency that keeps its ``resolved``, so a tarball that is not the registry's own for
    this release is found by comparing them, and never passes as skipped."""
    if node.resolved is not None:
        node.kind = source_kind(node.resolved, resolved=True)
        node.source = None if node.kind == "registry" else node.resolved


def source_kind(spec: str, *, resolved: bool) -> str:
    """Where a spec or ``resolved`` value points: registry, git, url, file or local."""
    text = spec.strip()
    lower = text.lower()
    if lower.startswith("npm:"):
        return "registry"
    if lower.startswith(_GIT_PREFIXES):
        return "git"
    if lower.startswith(("http://", "https://")):
        if lower.endswith(".git") or ".git#" in lower:
            return "git"
        return "registry" if resolved else "url"  # registry tarballs are URLs too
    if lower.startswith(_LOCAL_PREFIXES):
        return "file" if lower.endswith(_TARBALL) else "local"
    if lower.startswith("workspace:"):
        return "local"
    if _SHORTHAND.match(text):
        return "git"
    return "registry"


# ------------------------------------------------------------------------------- the graph


def _resolve(nodes: dict[str, _Node], from_key: str, name: str) -> str | None:
    """Node's module resolution: the nearest ``node_modules/<name>`` up from ``from_key``."""
    parts = from_key.split("/") if from_key else []
    for i in range(len(parts), -1, -1):
        if i and parts[i - 1] == "node_modules":
            continue
        prefix = "/".join(parts[:i])
        candidate = f"{prefix}/node_modules/{name}" if prefix else f"node_modules/{name}"
        node = nodes.get(candidate)
        if node is not None:
            if node.link_target is not None and node.link_target in nodes:
                return node.link_target
            return candidate
    return None


def _collect(
    path: Path, nodes: dict[str, _Node]
) -> tuple[list[LockedDependency], tuple[SkippedEntry, ...]]:
    edges: dict[str, list[str]] = {}
    for key, node in nodes.items():
        targets: list[str] = []
        for dep_name, spec in node.deps:
            target = _resolve(nodes, key, dep_name)
            if target is None:
                continue  # an optional or peer dependency that was not installed
            targets.append(target)
            kind = source_kind(spec, resolved=False)
            dep = nodes[target]
            if kind not in ("registry", "local") and dep.kind == "registry":
                dep.kind, dep.source = kind, spec
        edges[key] = targets

    starts: list[tuple[str, tuple[str, ...]]] = []
    owners = [n for n in nodes.values() if n.first_party]
    for owner in owners:
        prefix = (owner.name,) if owner.key else ()
        for target in edges[owner.key]:
            if not nodes[target].first_party:
                starts.append((target, (*prefix, nodes[target].name)))

    def children(key: str) -> list[str]:
        return [t for t in edges.get(key, ()) if not nodes[t].first_party]

    def name(key: str) -> str:
        return nodes[key].name

    if "" not in nodes:  # no root entry, no package.json: top-level packages nobody requires
        required = {t for targets in edges.values() for t in targets}
        top = [
            k
            for k, n in nodes.items()
            if k.startswith("node_modules/")
            and k.count("node_modules/") == 1
            and not n.first_party
            and n.link_target is None
        ]
        starts.extend((k, (nodes[k].name,)) for k in top if k not in required)
        starts.extend(cycle_starts(starts, top, children, name))
    direct = {key for key, _ in starts}
    paths = shortest_paths(starts, children, name)

    deps: list[LockedDependency] = []
    skipped: list[SkippedEntry] = []
    for key, node in nodes.items():
        where = location(path, node.line)
        if node.report_skip or (node.kind != "registry" and not node.first_party):
            skipped.append(SkippedEntry(node.name, node.kind, node.source, where))
            continue
        if node.first_party or node.version is None:
            continue
        if not _EXACT_VERSION.match(node.version):
            message = f"package {node.name!r}: version {node.version!r} is not an exact version"
            raise fail(path, message, node.line)
        deps.append(
            LockedDependency(
                ecosystem=Ecosystem.NPM,
                name=node.name,
                version=node.version,
                direct=key in direct,
                paths=tuple(paths.get(key, ())),
                integrity=node.integrity,
                resolved=node.resolved,
                location=where,
                dev=node.dev,
                optional=node.optional,
            )
        )
    return merge_duplicates(deps), tuple(skipped)
