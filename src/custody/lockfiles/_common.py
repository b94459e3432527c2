"""Helpers shared by the readers: reading files, decoding JSON/TOML with line numbers, type
checks that raise ``LockfileError``, dependency graphs and de-duplication."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import orjson
import tomli
from packaging.utils import canonicalize_name

from custody.errors import LockfileError
from custody.model import Ecosystem, LockedDependency, SourceLocation

MAX_PATHS = 3
"""How many shortest paths from the root are kept per dependency (per occurrence)."""

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A lockfile entry that is not a release from a package registry, so it has no custodian to
    track: the project itself or a workspace member, a git checkout, a URL or a local file.

    Readers never drop such entries silently: they land here, for the caller to show."""

    name: str
    kind: str
    """``git``, ``url``, ``file``, ``local`` (a folder: workspace member, editable, link),
    ``bundled`` (shipped inside its parent's npm tarball)."""
    source: str | None = None
    """The URL, path or spec as the lockfile writes it."""
    location: SourceLocation | None = None
    ecosystem: Ecosystem | None = None
    """The ecosystem of the lockfile it is in (set when lockfiles are read together)."""


@dataclass(frozen=True, slots=True)
class LockfileReport:
    """Everything one lockfile says: registry releases and the entries that are not."""

    path: str
    format_name: str
    ecosystem: Ecosystem
    dependencies: tuple[LockedDependency, ...]
    skipped: tuple[SkippedEntry, ...] = ()


# ---------------------------------------------------------------------------------- errors


def fail(path: Path | str, message: str, line: int | None = None) -> LockfileError:
    """Build (not raise) a ``LockfileError``, so call sites read ``raise fail(...)``."""
    return LockfileError(message, path=str(path), line=line)


def read_text(path: Path) -> str:
    """Read a lockfile as UTF-8 text (a leading BOM is dropped)."""
    try:
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            raise fail(path, f"lockfile {what}")
        data = path.read_bytes()
    except OSError as exc:
        raise fail(path, f"cannot read lockfile: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise fail(path, "lockfile is not UTF-8 text", line) from None
    return text.removeprefix("\ufeff")


# ------------------------------------------------------------------------------ JSON / TOML


def parse_json(path: Path, text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise fail(path, f"not valid JSON: {exc.msg}", exc.lineno) from None


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def parse_toml(path: Path, text: str) -> dict[str, object]:
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        message = str(exc)
        line: int | None = None
        if m := _TOML_WHERE.search(message):
            line = int(m.group(1))
            message = message[: m.start()]
        elif m := _TOML_END.search(message):
            line = text.count("\n") + (0 if text.endswith("\n") else 1) or 1
            message = message[: m.start()]
        raise fail(path, f"not valid TOML: {message}", line) from None
    except RecursionError:
        raise fail(path, "not valid TOML: nested too deeply") from None


def try_parse_toml(text: str) -> dict[str, object] | None:
    """Parse TOML for format detection; None when it is not TOML."""
    try:
        return tomli.loads(text)
    except (tomli.TOMLDecodeError, RecursionError):
        return None


def header_lines(text: str, header: str, count: int) -> list[int | None]:
    """Line numbers of the ``[[header]]`` array-of-tables entries, in order.

    ``tomllib`` keeps no positions, so the text is scanned; when the scan does not find exactly
    ``count`` headers (an inline array, a header inside a string) no line is given at all rather
    than a wrong one."""
    pattern = re.compile(r"^[ \t]*\[\[[ \t]*" + re.escape(header) + r"[ \t]*\]\]", re.MULTILINE)
    lines: list[int | None] = []
    line, last = 1, 0
    for m in pattern.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        lines.append(line)
    if len(lines) != count:
        return [None] * count
    return lines


# ----------------------------------------------------------------------------- type checks


def expect_dict(value: object, what: str, path: Path, line: int | None) -> dict[str, object]:
    if not isinstance(value, dict):
        raise fail(path, f"{what} must be a table/object, not {_kind(value)}", line)
    return value


def expect_list(value: object, what: str, path: Path, line: int | None) -> list[object]:
    if not isinstance(value, list):
        raise fail(path, f"{what} must be a list, not {_kind(value)}", line)
    return value


def expect_str(value: object, what: str, path: Path, line: int | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(path, f"{what} must be a non-empty string, not {_kind(value)}", line)
    return value


def optional_str(value: object, what: str, path: Path, line: int | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(path, f"{what} must be a string, not {_kind(value)}", line)
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table/object"
    return type(value).__name__


# -------------------------------------------------------------------------------- Python


_PEP508_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def pypi_name(value: object, path: Path, line: int | None, what: str = "package name") -> str:
    """A PEP 503 normalised project name, or a ``LockfileError`` for a name PyPI cannot have."""
    raw = expect_str(value, what, path, line)
    if not _PEP508_NAME.match(raw):
        raise fail(path, f"{what} {raw!r} is not a valid Python project name", line)
    return canonicalize_name(raw)


def first_hash(values: Iterable[str]) -> str | None:
    """The first ``algo:hex`` digest, sha256 preferred (Python ``integrity``)."""
    first: str | None = None
    for value in values:
        algo, sep, digest = value.partition(":")
        if not sep:
            algo, sep, digest = value.partition("=")
        if not sep or not digest:
            continue
        normalised = f"{algo.lower()}:{digest}"
        if algo.lower() == "sha256":
            return normalised
        first = first or normalised
    return first


# ------------------------------------------------------------------------------------ graph


def shortest_paths(
    starts: Sequence[tuple[K, tuple[str, ...]]],
    children: Callable[[K], Iterable[K]],
    name: Callable[[K], str],
    limit: int = MAX_PATHS,
) -> dict[K, list[tuple[str, ...]]]:
    """Up to ``limit`` name chains to every node reachable from ``starts``, all of the
    shortest length (a package also reached by a longer route keeps only the short ones).

    ``starts`` are (node, chain ending with the node's name). Breadth-first, so each node's
    chains are final before its children are extended from them: O(edges x limit)."""
    paths: dict[K, list[tuple[str, ...]]] = {}
    frontier: list[K] = []
    for node, chain in starts:
        known = paths.get(node)
        if known is None:
            known = paths[node] = []
            frontier.append(node)
        if len(known) < limit and chain not in known:
            known.append(chain)
    depth: dict[K, int] = dict.fromkeys(frontier, 0)
    level = 0
    while frontier:
        following: list[K] = []
        for node in frontier:
            chains = paths[node]
            for child in children(node):
                seen_at = depth.get(child)
                if seen_at is None:
                    depth[child] = seen_at = level + 1
                    paths[child] = []
                    following.append(child)
                if seen_at != level + 1:
                    continue
                target = paths[child]
                child_name = name(child)
                for chain in chains:
                    if len(target) >= limit:
                        break
                    extended = (*chain, child_name)
                    if extended not in target:
                        target.append(extended)
        frontier = following
        level += 1
    for chains in paths.values():
        chains.sort(key=len)
    return paths


def cycle_starts(
    starts: Sequence[tuple[K, tuple[str, ...]]],
    candidates: Sequence[K],
    children: Callable[[K], Iterable[K]],
    name: Callable[[K], str],
) -> list[tuple[K, tuple[str, ...]]]:
    """More starts, so that every candidate is reached: without the project's own list the
    starts are the packages nothing requires, which misses packages that only require each
    other (``a`` needs ``b``, ``b`` needs ``a``).

    One candidate per such group becomes a start: candidates are taken in decreasing
    depth-first finish order (the first pass of Kosaraju's algorithm), so each one lies in a
    cycle that no still-unreached package requires, not below one."""
    reached = _reach([node for node, _ in starts], children, set())
    wanted = set(candidates)
    extra: list[tuple[K, tuple[str, ...]]] = []
    for node in reversed(_finish_order(candidates, children, set(reached))):
        if node not in reached and node in wanted:
            extra.append((node, (name(node),)))
            _reach([node], children, reached)
    return extra


def _reach(starts: Iterable[K], children: Callable[[K], Iterable[K]], seen: set[K]) -> set[K]:
    """Add to ``seen`` every node reachable from ``starts`` (themselves included)."""
    work = [node for node in starts if node not in seen]
    seen.update(work)
    while work:
        for child in children(work.pop()):
            if child not in seen:
                seen.add(child)
                work.append(child)
    return seen


def _finish_order(
    roots: Iterable[K], children: Callable[[K], Iterable[K]], seen: set[K]
) -> list[K]:
    """Nodes reachable from ``roots`` (skipping ``seen``) in depth-first finish order."""
    order: list[K] = []
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(children(root)))]
        while stack:
            node, pending = stack[-1]
            child = next((c for c in pending if c not in seen), None)
            if child is None:
                stack.pop()
                order.append(node)
            else:
                seen.add(child)
                stack.append((child, iter(children(child))))
    return order


def merge_duplicates(deps: Iterable[LockedDependency]) -> list[LockedDependency]:
    """One entry per (name, version), in first-seen order, keeping every path.

    Merged flags lean to "needs checking": direct if any occurrence is direct, dev/optional only
    if all are, the marker only if all occurrences agree."""
    merged: dict[tuple[str, str], LockedDependency] = {}
    for dep in deps:
        key = (dep.name, dep.version)
        seen = merged.get(key)
        if seen is None:
            merged[key] = dep
            continue
        paths = list(seen.paths)
        paths.extend(p for p in dep.paths if p not in paths)
        paths.sort(key=len)
        merged[key] = replace(
            seen,
            direct=seen.direct or dep.direct,
            paths=tuple(paths),
            **seen.merged_sources(dep),
            marker=seen.marker if seen.marker == dep.marker else None,
            dev=seen.dev and dep.dev,
            optional=seen.optional and dep.optional,
        )
    return list(merged.values())


def location(path: Path, line: int | None) -> SourceLocation:
    return SourceLocation(str(path), line)
