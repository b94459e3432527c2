"""Compare an artifact's files with a source commit, per the ecosystem's packaging rules."""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from custody.fingerprint.git import SourceRepo, TreeEntry
from custody.fingerprint.layout import (
    IgnoreRules,
    artifact_ids,
    choose_prefix,
    dirs_with,
    gitignore_paths,
)
from custody.fingerprint.result import FileReport, FileStatus
from custody.fingerprint.rules import (
    Facts,
    explain_npm,
    explain_python,
    load_json,
    npm_build_scripts,
)

MAX_READS = 64  # differing files whose source bytes are read (line-ending check)
_WHEEL_LIB = re.compile(r"^[^/]+\.data/(?:purelib|platlib)/(.+)$")
_WHEEL_OTHER = re.compile(r"^[^/]+\.data/")
_DIST_INFO = re.compile(r"^[^/]+\.dist-info/")
_PY_MANIFESTS = ("pyproject.toml", "setup.py", "setup.cfg")


@dataclass(frozen=True, slots=True)
class Comparison:
    package_dir: str
    matched: int
    files: tuple[FileReport, ...]


def _dirs(tree: Mapping[str, TreeEntry]) -> frozenset[str]:
    out: set[str] = set()
    for path in tree:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            out.add("/".join(parts[:depth]) + "/")
    return frozenset(out)


def _copies(
    unmatched: Iterable[str], ids: Mapping[str, str], tree: Mapping[str, TreeEntry]
) -> dict[str, str]:
    wanted = {ids[p]: p for p in unmatched}
    found: dict[str, str] = {}
    for path, entry in tree.items():
        if entry.blob in wanted and wanted[entry.blob] not in found:
            found[wanted[entry.blob]] = path
    return {artifact: source for artifact, source in found.items()}


async def _read(
    repo: SourceRepo, tree: Mapping[str, TreeEntry], paths: Iterable[str]
) -> dict[str, bytes]:
    present = [p for p in dict.fromkeys(paths) if p in tree and not tree[p].is_link]
    blobs = await repo.read_blobs(tree[p].blob for p in present)
    return {p: blobs[tree[p].blob] for p in present if tree[p].blob in blobs}


def _split(
    mapping: Mapping[str, str | None], ids: Mapping[str, str], tree: Mapping[str, TreeEntry]
) -> tuple[list[str], list[tuple[str, FileStatus]]]:
    matched: list[str] = []
    unmatched: list[tuple[str, FileStatus]] = []
    for path in sorted(mapping):
        repo_path = mapping[path]
        entry = tree.get(repo_path) if repo_path is not None else None
        if entry is not None and entry.blob == ids[path]:
            matched.append(path)
        else:
            unmatched.append((path, FileStatus.EXTRA if entry is None else FileStatus.DIFFERS))
    return matched, unmatched


async def _facts(
    repo: SourceRepo,
    tree: Mapping[str, TreeEntry],
    files: Mapping[str, bytes],
    ids: Mapping[str, str],
    mapping: Mapping[str, str | None],
    unmatched: Sequence[tuple[str, FileStatus]],
    prefix: str,
    extra_reads: Sequence[str] = (),
) -> tuple[Facts, dict[str, bytes]]:
    repo_paths = [mapping[p] or prefix + p for p, _ in unmatched]
    differing = [mapping[p] for p, s in unmatched if s is FileStatus.DIFFERS][:MAX_READS]
    ignores = gitignore_paths(tree, repo_paths)
    blobs = await _read(repo, tree, [*ignores, *extra_reads, *(p for p in differing if p)])
    facts = Facts(
        prefix=prefix,
        ignore=IgnoreRules.from_files({p: blobs[p] for p in ignores if p in blobs}),
        files=files,
        source_blobs=blobs,
        source_dirs=_dirs(tree),
        copies=_copies((p for p, _ in unmatched), ids, tree),
    )
    return facts, blobs


async def compare_npm(repo: SourceRepo, commit: str, files: Mapping[str, bytes]) -> Comparison:
    tree = await repo.tree(commit)
    ids = artifact_ids(files, sha256=await repo.object_format_sha256())
    published = load_json(files.get("package.json"))
    repository = published.get("repository")
    hint = repository.get("directory") if isinstance(repository, dict) else None
    prefix = choose_prefix(
        ids, tree, hint=hint if isinstance(hint, str) else None,
        fallbacks=dirs_with(tree, ["package.json"]),
    )  # fmt: skip
    mapping: dict[str, str | None] = {p: prefix + p for p in files}
    matched, unmatched = _split(mapping, ids, tree)
    facts, blobs = await _facts(
        repo, tree, files, ids, mapping, unmatched, prefix,
        extra_reads=[prefix + "package.json", "package.json"],
    )  # fmt: skip
    source_manifest = load_json(blobs.get(prefix + "package.json"))
    root_manifest = load_json(blobs.get("package.json")) if prefix else {}
    declared = source_manifest.get("files")
    facts = dataclasses.replace(
        facts,
        build_scripts=tuple(npm_build_scripts(source_manifest, root_manifest)),
        declared=tuple(f for f in declared if isinstance(f, str))
        if isinstance(declared, list)
        else (),
        npmignore=prefix + ".npmignore" in tree,
        source_manifest=source_manifest,
    )
    reports = tuple(explain_npm(p, status, facts) for p, status in unmatched)
    return Comparison(prefix.rstrip("/"), len(matched), reports)


async def compare_sdist(repo: SourceRepo, commit: str, files: Mapping[str, bytes]) -> Comparison:
    tree = await repo.tree(commit)
    ids = artifact_ids(files, sha256=await repo.object_format_sha256())
    prefix = choose_prefix(ids, tree, fallbacks=dirs_with(tree, _PY_MANIFESTS))
    mapping: dict[str, str | None] = {p: prefix + p for p in files}
    matched, unmatched = _split(mapping, ids, tree)
    facts, _ = await _facts(repo, tree, files, ids, mapping, unmatched, prefix)
    reports = tuple(
        explain_python(p, s, facts, wheel=False, source_path=mapping[p]) for p, s in unmatched
    )
    return Comparison(prefix.rstrip("/"), len(matched), reports)


def _wheel_relative(path: str) -> str | None:
    """Where a wheel file comes from, relative to the package's source root (None: metadata
    or installer data that has no fixed place in the source)."""
    if _DIST_INFO.match(path):
        return None
    lib = _WHEEL_LIB.match(path)
    if lib:
        return lib.group(1)
    if _WHEEL_OTHER.match(path):
        return None
    return path


async def compare_wheel(repo: SourceRepo, commit: str, files: Mapping[str, bytes]) -> Comparison:
    tree = await repo.tree(commit)
    ids = artifact_ids(files, sha256=await repo.object_format_sha256())
    groups: dict[str, dict[str, str]] = defaultdict(dict)
    relative: dict[str, str | None] = {}
    for path in files:
        rel = _wheel_relative(path)
        relative[path] = rel
        if rel is not None:
            groups[rel.split("/", 1)[0]][rel] = ids[path]
    prefixes: dict[str, str] = {}
    for top, group in groups.items():
        fallbacks = ["src/", *dirs_with(tree, _PY_MANIFESTS)]
        prefixes[top] = choose_prefix(group, tree, fallbacks=fallbacks)
    mapping: dict[str, str | None] = {
        p: prefixes[rel.split("/", 1)[0]] + rel if rel is not None else None
        for p, rel in relative.items()
    }
    matched, unmatched = _split(mapping, ids, tree)
    main = max(prefixes.values(), key=lambda p: list(prefixes.values()).count(p), default="")
    facts, _ = await _facts(repo, tree, files, ids, mapping, unmatched, main)
    reports = tuple(
        explain_python(p, s, facts, wheel=True, source_path=mapping[p]) for p, s in unmatched
    )
    return Comparison(main.rstrip("/"), len(matched), reports)
