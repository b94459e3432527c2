"""pip ``requirements.txt`` files, as written by hand or by ``pip-compile`` / ``uv pip compile``.

Decisions, since this is a security gate and must not skip anything silently:

* every requirement must be pinned to one version (``==`` or ``===``, no wildcard); anything else
  is a ``LockfileError`` naming the file and line, telling the user to pin the file;
* editable requirements (``-e``), direct URLs (``name @ https://...``), VCS and local paths are not
  registry releases: they are listed in ``LockfileReport.skipped``;
* ``-r`` / ``--requirement`` includes are followed (relative to the including file, each file read
  once, so cycles are harmless); ``-c`` / ``--constraint`` files are not dependencies and are not
  read; other pip options are accepted and ignored; an unknown option is an error;
* ``# via`` annotations (pip-compile, uv; on the lines below a requirement or, with
  ``--annotation-style line``, at its end) give the parents of each requirement: a requirement is
  direct when it has no annotation, or when one names an input file (``-r requirements.in``,
  ``pyproject.toml``) or a package that is not in the file (usually the project itself).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from packaging.utils import canonicalize_name

from custody.lockfiles._common import (
    LockfileReport,
    SkippedEntry,
    fail,
    first_hash,
    location,
    merge_duplicates,
    read_text,
    shortest_paths,
)
from custody.model import Ecosystem, LockedDependency

_COMMENT = re.compile(r"(^|\s+)#.*$")
_NEWLINE = re.compile(r"\r\n|\r|\n")  # not str.splitlines: line numbers as editors count them
_VIA = re.compile(r"^#\s*via\b(.*)$")
_VIA_ITEM = re.compile(r"^#\s{2,}(\S.*)$")
_NAME_AND_EXTRAS = r"^[A-Za-z0-9][\w.-]*\s*(\[[^\]]*\])?\s*"
_LIKE_REQUIREMENT = re.compile(_NAME_AND_EXTRAS + r"(===?|~=|!=|<=?|>=?|@|;|$)")
_VERSIONED = re.compile(_NAME_AND_EXTRAS + r"(===?|~=|!=|<=?|>=?)")  # a name, not a path
_SHORT_WITH_VALUE = ("-r", "-c", "-e", "-i", "-f")  # optparse: "-rFILE" is "-r FILE"
_SOURCE_SUFFIXES = (".in", ".txt", ".toml", ".cfg", ".py")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar")
_PIN_HINT = (
    "pin every requirement to one version with '==' (generate the file with "
    "'uv pip compile' or 'pip-compile', ideally with hashes)"
)
# Options pip accepts in a requirements file that do not name a dependency.
_IGNORED_OPTIONS = frozenset(
    {
        "-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links",
        "--no-binary", "--only-binary", "--prefer-binary", "--require-hashes", "--pre",
        "--trusted-host", "--use-feature", "-c", "--constraint",
    }
)  # fmt: skip
_OPTIONS_WITH_VALUE = frozenset(
    {
        "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-binary",
        "--only-binary", "--trusted-host", "--use-feature", "-c", "--constraint",
        "-r", "--requirement", "-e", "--editable",
    }
)  # fmt: skip
_PER_REQUIREMENT = frozenset({"--hash", "--config-settings", "--global-option", "--install-option"})


class _Line(NamedTuple):
    """One logical line: its first line number, the text before any comment, and the comment
    (the whole line for a comment line)."""

    number: int
    code: str
    comment: str


@dataclass(slots=True)
class _Entry:
    name: str
    version: str
    marker: str | None
    hashes: list[str]
    path: Path
    line: int
    via: list[str] | None = None  # None: no annotation at all


@dataclass(slots=True)
class _State:
    entries: list[_Entry] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)
    seen_files: set[Path] = field(default_factory=set)


class RequirementsReader:
    """Pinned ``requirements.txt`` files (with their ``-r`` includes)."""

    format_name = "requirements"
    ecosystem = Ecosystem.PYPI

    def matches_name(self, path: Path) -> bool:
        name = path.name.lower()
        return name.endswith((".txt", ".lock")) and (
            "requirements" in name or path.parent.name.lower() == "requirements"
        )

    def matches_content(self, text: str) -> bool:
        for raw in text.splitlines():
            line = _COMMENT.sub("", raw).strip()
            if line:
                return _looks_like_requirement(line)
        return True  # empty or only comments: a requirements file without requirements

    def matches(self, path: Path, text: str) -> bool:
        return self.matches_name(path) or self.matches_content(text)

    def read(self, path: Path, text: str) -> list[LockedDependency]:
        return list(self.read_report(path, text).dependencies)

    def read_report(self, path: Path, text: str) -> LockfileReport:
        state = _State()
        state.seen_files.add(_identity(path))
        _read_file(path, text, state)
        deps = _build(state.entries)
        return LockfileReport(
            str(path), self.format_name, self.ecosystem, tuple(deps), tuple(state.skipped)
        )


def _looks_like_requirement(line: str) -> bool:
    if line.startswith("-"):
        return True
    if re.match(r"^[\w.-]+\s*=(?!=)", line):  # TOML / INI key = value
        return False
    return bool(_LIKE_REQUIREMENT.match(line))


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


# ---------------------------------------------------------------------------- lines


def _logical_lines(text: str) -> list[_Line]:
    """The lines after joining ``\\`` continuations like pip.

    Comments are kept (the ``# via`` annotations live there); a comment line ends a
    continuation, as in pip."""
    out: list[_Line] = []
    lines = _NEWLINE.split(text)
    i = 0
    while i < len(lines):
        line, start = lines[i], i + 1
        i += 1
        if line.lstrip().startswith("#"):
            out.append(_Line(start, "", line.strip()))
            continue
        parts: list[str] = []
        while line.endswith("\\"):
            parts.append(line[:-1])
            if i >= len(lines):
                line = ""
                break
            line = lines[i]
            if line.lstrip().startswith("#"):
                break  # the comment is handled on its own in the next round
            i += 1
        else:
            parts.append(line)
        joined = "".join(parts)
        comment = _COMMENT.search(joined)
        code = joined[: comment.start()] if comment else joined
        out.append(_Line(start, code.strip(), comment.group().strip() if comment else ""))
    return out


def _read_file(path: Path, text: str, state: _State) -> None:
    last: _Entry | None = None
    in_via = False
    for number, line, comment in _logical_lines(text):
        if not line:  # a comment line continues or ends the annotation; a blank line ends it
            in_via = _annotate(last, comment, in_via)
            continue
        in_via = False
        if line.startswith("-"):
            last = None
            _option_line(path, number, line, state)
        else:
            last = _requirement_line(path, number, line, state)
            _annotate(last, comment, False)  # ``--annotation-style line``: on the same line


def _annotate(entry: _Entry | None, comment: str, in_via: bool) -> bool:
    """Add the parents a ``# via`` comment names to ``entry``; True while the annotation can
    continue on the next comment line (``#   parent``)."""
    if entry is None:
        return False
    if via := _VIA.match(comment):
        entry.via = entry.via or []
        entry.via.extend(item.strip() for item in via.group(1).split(",") if item.strip())
        return True
    if in_via and (item := _VIA_ITEM.match(comment)):
        entry.via = entry.via or []
        entry.via.append(item.group(1).strip())
        return True
    return False


def _split(path: Path, number: int, line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise fail(path, f"cannot split the line: {exc}", number) from None


def _option_line(path: Path, number: int, line: str, state: _State) -> None:
    tokens = _split(path, number, line)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if len(token) > 2 and token[:2] in _SHORT_WITH_VALUE:  # the value may hold a "="
            name, value, eq = token[:2], token[2:], "="
        else:
            name, eq, value = token.partition("=")
        if name not in _IGNORED_OPTIONS | _OPTIONS_WITH_VALUE | {"-r", "--requirement"}:
            raise fail(path, f"unknown option {name!r} in a requirements file", number)
        if name in _OPTIONS_WITH_VALUE and not eq:
            i += 1
            if i >= len(tokens):
                raise fail(path, f"option {name} needs a value", number)
            value = tokens[i]
        i += 1
        if name in ("-r", "--requirement"):
            _include(path, number, value, state)
        elif name in ("-e", "--editable"):
            state.skipped.append(
                SkippedEntry(_guess_name(value), _source_kind(value), value, location(path, number))
            )


def _include(path: Path, number: int, target: str, state: _State) -> None:
    if "://" in target:
        raise fail(path, f"remote requirement files are not read: {target}", number)
    included = path.parent / target
    key = _identity(included)
    if key in state.seen_files:
        return  # already read: an include cycle or a diamond
    state.seen_files.add(key)
    if not included.is_file():
        raise fail(path, f"included requirements file not found: {target}", number)
    _read_file(included, read_text(included), state)


def _requirement_line(path: Path, number: int, line: str, state: _State) -> _Entry | None:
    tokens = line.split()
    cut = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
    requirement = " ".join(tokens[:cut])
    options = _split(path, number, " ".join(tokens[cut:]))
    hashes: list[str] = []
    i = 0
    while i < len(options):
        name, eq, value = options[i].partition("=")
        if name not in _PER_REQUIREMENT:
            raise fail(path, f"unknown option {name!r} after a requirement", number)
        if not eq:
            i += 1
            if i >= len(options):
                raise fail(path, f"option {name} needs a value", number)
            value = options[i]
        if name == "--hash":
            hashes.append(value)
        i += 1
    where = location(path, number)
    if _is_url_or_path(requirement):
        kind = _source_kind(requirement)
        state.skipped.append(SkippedEntry(_guess_name(requirement), kind, requirement, where))
        return None
    # Imported on use: about 40 ms of regular expressions that an npm-only check never needs.
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        raise fail(path, f"not a valid requirement: {exc}", number) from None
    name = canonicalize_name(req.name)
    if req.url:
        state.skipped.append(SkippedEntry(name, _source_kind(req.url), req.url, where))
        return None
    pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    if not pins or not req.specifier.contains(pins[0].version, prereleases=True):
        shown = requirement.split(";", 1)[0].strip()
        raise fail(path, f"{shown!r} is not pinned to one version: {_PIN_HINT}", number)
    marker = requirement.split(";", 1)[1].strip() if req.marker is not None else None
    entry = _Entry(name, pins[0].version, marker, hashes, path, number)
    state.entries.append(entry)
    return entry


def _is_url_or_path(requirement: str) -> bool:
    head = requirement.split(";", 1)[0].strip().lower()
    if " @ " in head or ("://" in head and "@" in head.split("://", 1)[0]):
        return False  # PEP 508 ``name @ url``: parsed normally, then skipped by its URL
    if _VERSIONED.match(head):
        return False  # ``name===1.0/abc``: arbitrary equality may hold a "/"
    return (
        "://" in head
        or head.startswith(("git+", ".", "/", "~", "file:"))
        or head.endswith(_ARCHIVE_SUFFIXES)
        or "/" in head
        or "\\" in head
    )


def _source_kind(value: str) -> str:
    lower = value.strip().lower()
    if lower.startswith(("git+", "hg+", "svn+", "bzr+")) or lower.endswith(".git"):
        return "git"
    if lower.startswith(("http://", "https://", "ftp://")):
        return "url"
    if lower.endswith(_ARCHIVE_SUFFIXES) or lower.startswith("file:"):
        return "file"
    return "local"


def _guess_name(value: str) -> str:
    """A display name for a URL or path requirement (``#egg=name``, or the last segment)."""
    egg = re.search(r"[#&]egg=([A-Za-z0-9][\w.-]*)", value)
    if egg:
        return canonicalize_name(egg.group(1))
    tail = value.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or value
    return tail.split("#", 1)[0] or value


# ---------------------------------------------------------------------------- graph


def _build(entries: list[_Entry]) -> list[LockedDependency]:
    names = {e.name for e in entries}
    by_name: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        by_name.setdefault(entry.name, []).append(index)
    children: dict[int, list[int]] = {}
    starts: list[tuple[int, tuple[str, ...]]] = []
    for index, entry in enumerate(entries):
        if not entry.via:
            starts.append((index, (entry.name,)))
            continue
        for item in entry.via:
            parent = _via_parent(item, names)
            if parent is None:
                if not item.startswith(("-c ", "--constraint")):
                    starts.append((index, (entry.name,)))
                continue
            for p in by_name[parent]:
                children.setdefault(p, []).append(index)
    direct = {index for index, _ in starts}
    paths = shortest_paths(starts, lambda i: children.get(i, ()), lambda i: entries[i].name)
    return merge_duplicates(
        LockedDependency(
            ecosystem=Ecosystem.PYPI,
            name=entry.name,
            version=entry.version,
            direct=index in direct,
            paths=tuple(paths.get(index, ())),
            integrity=first_hash(entry.hashes),
            marker=entry.marker,
            location=location(entry.path, entry.line),
        )
        for index, entry in enumerate(entries)
    )


def _via_parent(item: str, names: set[str]) -> str | None:
    """The package a ``# via`` item names, or None for an input file or an unknown name."""
    if item.startswith("-") or "(" in item or item.endswith(_SOURCE_SUFFIXES):
        return None
    raw = item.split("[", 1)[0].strip()
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", raw):
        return None
    name = canonicalize_name(raw)
    return name if name in names else None
