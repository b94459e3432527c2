"""Packaging rules: which differences between an artifact and its source a build explains.

Custody never runs a build, so a file that only a build produces cannot be checked; it can only
be *explained*. npm: a file the source ignores (``.gitignore``) or lacks, under a ``files`` entry
or a typical output directory, in a package with a ``build``/``prepare``/``prepublishOnly``/
``prepack`` script. Python: metadata every build backend writes (``PKG-INFO``, ``*.egg-info``,
``*.dist-info``, setuptools' ``setup.cfg`` tags), generated version files, compiled extensions in
a wheel, files the source ignores. Anything else that differs or is extra is unexplained: high
for code, low for data and documents. Line-ending-only differences are noted at info."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from custody.fingerprint.layout import IgnoreRules, is_code, matches_entry
from custody.fingerprint.result import FileReport, FileStatus
from custody.model import Severity

NPM_BUILD_SCRIPTS = ("prepare", "prepack", "prepublishOnly", "prepublish", "compile", "bundle")
NPM_OUTPUT_DIRS = frozenset(
    {"dist", "build", "lib", "es", "esm", "cjs", "umd", "out", "types", "typings", "bundle",
     "bundles", "compiled", "generated", "release", "min"}
)  # fmt: skip
_BUILT_SUFFIXES = (".min.js", ".min.mjs", ".min.cjs", ".min.css", ".map", ".d.ts", ".d.mts")
_INSTALL_HOOKS = ("preinstall", "install", "postinstall")
_VERSION_FILES = frozenset({"_version.py", "version.py", "__version__.py", "_version.pyi"})
_MAX_VERSION_FILE = 4096
_NATIVE = (".so", ".pyd", ".dylib", ".dll")
_DIST_INFO = re.compile(r"^[^/]+\.dist-info/")
_EGG_INFO = re.compile(r"(^|/)[^/]+\.egg-info/")


def load_json(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def npm_build_scripts(*manifests: Mapping[str, Any]) -> list[str]:
    """Script names that build before npm packs (the package's, then the repository root's)."""
    out: list[str] = []
    for manifest in manifests:
        scripts = manifest.get("scripts")
        if not isinstance(scripts, dict):
            continue
        for name, body in scripts.items():
            if not isinstance(body, str) or not body.strip():
                continue
            if name in NPM_BUILD_SCRIPTS or name == "build" or name.startswith("build:"):
                out.append(name)
    return list(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class Facts:
    """What the explanations look at for one comparison."""

    prefix: str
    ignore: IgnoreRules
    files: Mapping[str, bytes]
    """The artifact's files."""
    source_blobs: Mapping[str, bytes] = field(default_factory=dict)
    """Contents of the source files that were read, by repository path."""
    build_scripts: tuple[str, ...] = ()
    declared: tuple[str, ...] = ()
    """npm ``files`` entries."""
    npmignore: bool = False
    """The source package directory has an ``.npmignore`` (then .gitignore does not apply)."""
    source_manifest: Mapping[str, Any] = field(default_factory=dict)
    source_dirs: frozenset[str] = frozenset()
    """Every directory of the source tree, as a prefix (``"a/b/"``)."""
    copies: Mapping[str, str] = field(default_factory=dict)
    """Artifact files whose exact bytes are elsewhere in the source: ``{path: source path}``."""


def _report(
    path: str,
    status: FileStatus,
    severity: Severity,
    reason: str,
    *,
    explained: bool,
    facts: Facts,
    source_path: str | None = None,
) -> FileReport:
    return FileReport(path, status, severity, reason, explained, source_path or facts.prefix + path)


def _line_endings_only(path: str, status: FileStatus, facts: Facts, source_path: str) -> bool:
    if status is not FileStatus.DIFFERS:
        return False
    source = facts.source_blobs.get(source_path)
    if source is None:
        return False
    norm = facts.files[path].replace(b"\r\n", b"\n")
    return norm == source.replace(b"\r\n", b"\n")


def _copy(path: str, status: FileStatus, facts: Facts) -> FileReport | None:
    original = facts.copies.get(path)
    if original is None:
        return None
    code = is_code(path, facts.files[path])
    return _report(
        path, status, Severity.LOW if code else Severity.INFO,
        f"a copy of {original} in the source",
        explained=True, facts=facts, source_path=original,
    )  # fmt: skip


def _unexplained(path: str, status: FileStatus, facts: Facts, source_path: str) -> FileReport:
    code = is_code(path, facts.files[path])
    what = "code file" if code else "file"
    reason = (
        f"{what} not in the source"
        if status is FileStatus.EXTRA
        else f"{what} differs from the source"
    )
    return _report(
        path, status, Severity.HIGH if code else Severity.LOW, reason,
        explained=False, facts=facts, source_path=source_path,
    )  # fmt: skip


def _npm_manifest(path: str, facts: Facts) -> FileReport:
    published = load_json(facts.files[path])
    source = facts.source_manifest
    keys = sorted(k for k in set(published) | set(source) if published.get(k) != source.get(k))
    pub_scripts = published.get("scripts") if isinstance(published.get("scripts"), dict) else {}
    src_scripts = source.get("scripts") if isinstance(source.get("scripts"), dict) else {}
    hooks = [h for h in _INSTALL_HOOKS if (pub_scripts or {}).get(h) != (src_scripts or {}).get(h)]
    if hooks and source:
        return _report(
            path, FileStatus.DIFFERS, Severity.HIGH,
            f"install script {', '.join(hooks)} differs from the source package.json",
            explained=False, facts=facts,
        )  # fmt: skip
    shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
    return _report(
        path, FileStatus.DIFFERS, Severity.LOW,
        f"package.json rewritten at publish (keys: {shown or 'formatting'})",
        explained=True, facts=facts,
    )  # fmt: skip


def explain_npm(path: str, status: FileStatus, facts: Facts) -> FileReport:
    source_path = facts.prefix + path
    if path == "package.json" and status is FileStatus.DIFFERS:
        return _npm_manifest(path, facts)
    if _line_endings_only(path, status, facts, source_path):
        return _report(
            path, status, Severity.INFO, "line endings only", explained=True, facts=facts
        )
    if (copy := _copy(path, status, facts)) is not None:
        return copy
    build = facts.build_scripts
    script = f"`{build[0]}` script" if build else ""
    ignored = facts.ignore.ignored(source_path)
    declared = matches_entry(path, facts.declared)
    top = path.split("/", 1)[0] if "/" in path else ""
    fresh_dir = (
        bool(top) and top in NPM_OUTPUT_DIRS and not _dir_in_source(facts, facts.prefix + top + "/")
    )
    looks_built = fresh_dir or path.endswith(_BUILT_SUFFIXES)
    if build and ignored and (declared or facts.npmignore):
        return _report(
            path, status, Severity.INFO,
            f"build output: ignored in the source, packed by `files`, built by the {script}",
            explained=True, facts=facts,
        )  # fmt: skip
    if (
        build
        and status is FileStatus.EXTRA
        and declared
        and top
        and not _dir_in_source(facts, facts.prefix + top + "/")
    ):
        return _report(
            path, status, Severity.INFO,
            f"build output: `files` names {top}/, which the source lacks; built by the {script}",
            explained=True, facts=facts,
        )  # fmt: skip
    if build and (ignored or looks_built):
        return _report(
            path, status, Severity.LOW,
            f"looks like build output ({'ignored in the source' if ignored else 'output path'}) "
            f"of the {script}",
            explained=True, facts=facts,
        )  # fmt: skip
    if ignored and is_code(path, facts.files[path]):
        return _report(
            path, status, Severity.MEDIUM,
            "ignored in the source, and no build script declares it",
            explained=False, facts=facts,
        )  # fmt: skip
    return _unexplained(path, status, facts, source_path)


def _dir_in_source(facts: Facts, prefix: str) -> bool:
    return prefix in facts.source_dirs


def explain_python(
    path: str, status: FileStatus, facts: Facts, *, wheel: bool, source_path: str | None
) -> FileReport:
    """``source_path`` is where the file was looked for (None: nothing in the source can
    correspond, e.g. ``*.dist-info/RECORD``)."""
    repo_path = source_path or facts.prefix + path
    name = path.rsplit("/", 1)[-1]
    data = facts.files[path]
    generated: str | None = None
    if wheel and _DIST_INFO.match(path):
        generated = "wheel metadata written by the build backend"
    elif not wheel and (path == "PKG-INFO" or _EGG_INFO.search(path)):
        generated = "sdist metadata written by the build backend"
    elif not wheel and path == "setup.cfg":
        generated = "setuptools writes its [egg_info] settings into the sdist's setup.cfg"
    elif name in _VERSION_FILES and len(data) <= _MAX_VERSION_FILE:
        generated = "version file generated at build (setuptools-scm, versioneer, hatch-vcs)"
    elif wheel and path.endswith(_NATIVE):
        generated = "compiled extension module (built from the source)"
    if generated:
        return _report(
            path, status, Severity.INFO, generated,
            explained=True, facts=facts, source_path=source_path,
        )  # fmt: skip
    if source_path is not None and _line_endings_only(path, status, facts, repo_path):
        return _report(
            path, status, Severity.INFO, "line endings only",
            explained=True, facts=facts, source_path=repo_path,
        )  # fmt: skip
    if (copy := _copy(path, status, facts)) is not None:
        return copy
    if wheel and "/scripts/" in path and ".data/" in path:
        return _report(
            path, status, Severity.LOW,
            "script installed by the wheel (build backends rewrite its #! line)",
            explained=True, facts=facts, source_path=source_path,
        )  # fmt: skip
    if facts.ignore.ignored(repo_path):
        code = is_code(path, data)
        return _report(
            path, status, Severity.LOW if code else Severity.INFO,
            "generated at build: ignored in the source",
            explained=True, facts=facts, source_path=repo_path,
        )  # fmt: skip
    return _unexplained(path, status, facts, repo_path)
