"""Where an artifact's files live in its source tree, and which of them match.

Files are matched by git blob id, so the source's contents are never needed for the common case.
The package's directory in the repository (a monorepo's ``packages/foo/``, a Python project's
``python/``) is the prefix under which most artifact files are found byte for byte."""

from __future__ import annotations

import fnmatch
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custody.content.heuristics import language
from custody.fingerprint.git import TreeEntry, blob_id

if TYPE_CHECKING:  # pathspec is imported when a source is compared, not on every run
    from pathspec import GitIgnoreSpec

_CODE_EXTENSIONS = frozenset(
    {
        ".m4", ".ac", ".am", ".cmake", ".mk", ".pl", ".pm", ".rb", ".lua", ".php", ".go",
        ".rs", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".java", ".kt", ".swift",
        ".node", ".so", ".dll", ".dylib", ".pyd", ".wasm", ".exe", ".jar", ".pyc", ".pyx",
        ".pxd", ".gyp", ".gypi", ".vbs", ".jse", ".wsf", ".psm1",
    }
)  # fmt: skip
_CODE_NAMES = frozenset({"makefile", "configure", "cmakelists.txt", "gnumakefile", "rakefile"})


def is_code(path: str, data: bytes) -> bool:
    """Code in the wide sense: anything that runs, builds or is loaded (scripts, native
    modules, build-system macros such as xz's ``build-to-host.m4``)."""
    if language(path, data) is not None:
        return True
    name = path.rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return name in _CODE_NAMES or (dot > 0 and name[dot:] in _CODE_EXTENSIONS)


@dataclass(frozen=True, slots=True)
class Diff:
    """Artifact files against the source under a prefix."""

    prefix: str
    matched: tuple[str, ...]
    differs: tuple[str, ...]
    extra: tuple[str, ...]


def artifact_ids(files: Mapping[str, bytes], *, sha256: bool = False) -> dict[str, str]:
    return {path: blob_id(data, sha256=sha256) for path, data in files.items()}


def choose_prefix(
    ids: Mapping[str, str],
    tree: Mapping[str, TreeEntry],
    *,
    hint: str | None = None,
    fallbacks: Iterable[str] = (),
) -> str:
    """The directory (``""`` or ``"a/b/"``) under which most artifact files are found with the
    same bytes. Ties go to ``hint`` (a declared ``repository.directory``), then the shortest.
    With no identical file at all: the fallback under which most paths exist."""
    by_blob: dict[str, list[str]] = defaultdict(list)
    for path, entry in tree.items():
        by_blob[entry.blob].append(path)
    votes: Counter[str] = Counter()
    for path, oid in ids.items():
        for source in by_blob.get(oid, ()):
            if source == path:
                votes[""] += 1
            elif source.endswith("/" + path):
                votes[source[: -len(path)]] += 1
    hint_prefix = _as_prefix(hint)
    if votes:
        best = max(votes.values())
        tied = [p for p, n in votes.items() if n == best]
        if hint_prefix in tied:
            return hint_prefix
        return min(tied, key=lambda p: (p.count("/"), p))
    candidates = [""] + ([hint_prefix] if hint_prefix else []) + [_as_prefix(f) for f in fallbacks]
    return max(candidates, key=lambda p: (sum(1 for x in ids if p + x in tree), -len(p)))


def _as_prefix(directory: str | None) -> str:
    if not directory:
        return ""
    parts = [p for p in directory.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return ""
    return "/".join(parts) + "/" if parts else ""


def diff(ids: Mapping[str, str], tree: Mapping[str, TreeEntry], prefix: str) -> Diff:
    matched, differs, extra = [], [], []
    for path in sorted(ids):
        entry = tree.get(prefix + path)
        if entry is None:
            extra.append(path)
        elif entry.blob == ids[path]:
            matched.append(path)
        else:
            differs.append(path)
    return Diff(prefix, tuple(matched), tuple(differs), tuple(extra))


def dirs_with(tree: Mapping[str, TreeEntry], names: Iterable[str]) -> list[str]:
    """Directories (as prefixes) holding a file with one of these names."""
    wanted = set(names)
    out = {path[: path.rfind("/") + 1] for path in tree if path.rsplit("/", 1)[-1] in wanted}
    return sorted(out)


class IgnoreRules:
    """The source's ``.gitignore`` files that apply to a package directory, as git applies them
    (each file relative to its own directory; deeper files win)."""

    def __init__(self, specs: Mapping[str, GitIgnoreSpec]) -> None:
        self._specs = sorted(specs.items(), key=lambda kv: kv[0].count("/"))

    @classmethod
    def from_files(cls, contents: Mapping[str, bytes]) -> IgnoreRules:
        """``contents``: ``{".gitignore" path in the repo: bytes}``."""
        from pathspec import GitIgnoreSpec

        specs = {}
        for path, data in contents.items():
            base = path[: path.rfind("/") + 1]
            lines = data.decode("utf-8", "replace").splitlines()
            specs[base] = GitIgnoreSpec.from_lines(lines)
        return cls(specs)

    def ignored(self, repo_path: str) -> bool:
        verdict: bool | None = None
        for base, spec in self._specs:
            if base and not repo_path.startswith(base):
                continue
            result = spec.check_file(repo_path[len(base) :])
            if result.include is not None:
                verdict = result.include
        return bool(verdict)


def gitignore_paths(tree: Mapping[str, TreeEntry], repo_paths: Iterable[str]) -> list[str]:
    """The ``.gitignore`` files on the way from the root to each path."""
    out: set[str] = set()
    for path in repo_paths:
        parts = path.split("/")[:-1]
        for depth in range(len(parts) + 1):
            candidate = "/".join([*parts[:depth], ".gitignore"])
            if candidate in tree:
                out.add(candidate)
    return sorted(out)


def matches_entry(path: str, entries: Iterable[str]) -> bool:
    """Does an npm ``files`` entry (a path or glob, relative to the package) cover ``path``?"""
    for raw in entries:
        entry = raw.strip()
        if not entry or entry.startswith("!"):
            continue
        entry = entry.removeprefix("./").rstrip("/")
        if not entry:
            continue
        if (
            path == entry
            or path.startswith(entry + "/")
            or fnmatch.fnmatchcase(path, entry)
            or fnmatch.fnmatchcase(path, entry + "/*")
        ):
            return True
    return False
