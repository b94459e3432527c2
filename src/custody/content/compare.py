"""Compare the files of a trusted release with its candidate, and flag what is new and suspicious.

Only news counts: identical files are skipped by a byte comparison, files moved unchanged are
recognised by hash, and a construct (``eval``, a long base64 string, minified code) that the
previous version of the same file already had is not flagged. For new files, what the baseline
package already had elsewhere is flagged but marked ``seen_elsewhere`` so the signal weighs it
down. Each analysed region is capped at ``max_analysis`` bytes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The result types live in result.py (judging and the result cache read them without loading
# the heuristics); COMPARISON_FORMAT there must change with what this module computes.
from custody.content import heuristics as h
from custody.content.result import (
    INSTALL_HOOKS,
    BuildChange,
    ContentComparison,
    ContentFlag,
    FileChange,
    Role,
)

if TYPE_CHECKING:
    from custody.content.archive import ArchiveContents


MAX_ANALYSIS = 4 * 1024 * 1024
APPENDED_MIN = 40  # bytes of non-whitespace appended before an append counts at all
APPENDED_LARGE = 1024  # a plain append this large is flagged even with nothing else in it
MAX_FLAGS = 200

# ------------------------------------------------------------------------------ regions


@dataclass(slots=True)
class _Region:
    """New code of one file: contiguous (``lines`` None) or the added lines joined by ``\\n``."""

    text: bytes
    first_line: int
    lines: list[int] | None = None

    def line_of(self, offset: int) -> int:
        k = self.text.count(b"\n", 0, offset)
        if self.lines is None:
            return self.first_line + k
        return self.lines[min(k, len(self.lines) - 1)] if self.lines else self.first_line

    @property
    def last_line(self) -> int:
        return self.line_of(len(self.text.rstrip()))


def _appended(old: bytes, new: bytes) -> _Region | None:
    """The code appended to ``old`` (modulo trailing whitespace), if ``new`` is that."""
    base = old.rstrip()
    if not base or len(new) <= len(old) or not new.startswith(base):
        return None
    suffix = new[len(base) :]
    if len(suffix.strip()) < APPENDED_MIN:
        return None
    lead = len(suffix) - len(suffix.lstrip())
    first = base.count(b"\n") + 1 + suffix.count(b"\n", 0, lead)
    return _Region(suffix[lead:], first)


def _added_lines(old: bytes, new: bytes) -> tuple[list[bytes], set[bytes]]:
    """Lines of ``new`` that ``old`` does not have: an order-blind diff by set operations, in C.
    Returns ``new``'s lines and the set of added, non-blank ones."""
    new_lines = new.split(b"\n")
    added = set(new_lines).difference(old.split(b"\n"))
    return new_lines, {line for line in added if line.strip()}


def _numbered(new_lines: list[bytes], added: set[bytes]) -> _Region:
    """The added lines in file order, with their line numbers (one Python pass: done only
    when the unordered probe found something)."""
    numbers = [i for i, line in enumerate(new_lines, 1) if line in added]
    return _Region(b"\n".join(new_lines[i - 1] for i in numbers), numbers[0], numbers)


# ------------------------------------------------------------------------------ roles


def _norm(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def _script_targets(scripts: Mapping[str, str]) -> set[str]:
    """Files an install hook runs: ``node x.js``, ``sh ./y.sh``, ``python z.py``, ``./bin``."""
    out: set[str] = set()
    for key in INSTALL_HOOKS:
        for token in scripts.get(key, "").replace("&&", " ").replace(";", " ").split():
            token = token.strip("'\"")
            if token.startswith("-") or "=" in token:
                continue
            if token.endswith((".js", ".cjs", ".mjs", ".sh", ".py")) or token.startswith("./"):
                out.add(_norm(token))
    return out


def _package_json(files: Mapping[str, bytes]) -> dict[str, Any]:
    raw = files.get("package.json")
    if raw is None or len(raw) > 1024 * 1024:
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def npm_install_scripts(files: Mapping[str, bytes]) -> dict[str, str]:
    """Install hooks as npm would run them from this tarball's own ``package.json`` (with the
    implicit ``node-gyp rebuild`` for a ``binding.gyp`` and no install/preinstall script)."""
    doc = _package_json(files)
    scripts = doc.get("scripts")
    out = {
        k: v
        for k, v in (scripts.items() if isinstance(scripts, dict) else ())
        if k in INSTALL_HOOKS and isinstance(v, str) and v.strip()
    }
    if "binding.gyp" in files and "install" not in out and "preinstall" not in out:
        out["install"] = "node-gyp rebuild"
    return out


def npm_main(files: Mapping[str, bytes]) -> str:
    """The file ``require(package)`` loads: ``main`` (with npm's ``.js`` / ``/index.js``
    fallbacks), else ``index.js``."""
    main = _package_json(files).get("main")
    if isinstance(main, str) and main.strip():
        m = _norm(main)
        for candidate in (m, m + ".js", m + "/index.js"):
            if candidate in files:
                return candidate
    return "index.js"


def _npm_entries(files: Mapping[str, bytes]) -> set[str]:
    doc = _package_json(files)
    out = {"index.js", npm_main(files)}
    bins = doc.get("bin")
    if isinstance(bins, str):
        out.add(_norm(bins))
    elif isinstance(bins, dict):
        out.update(_norm(v) for v in bins.values() if isinstance(v, str))
    return out


def _role(path: str, lang: str, entries: set[str], installs: set[str]) -> Role:
    if path in installs or lang == "pth" or path == "setup.py":
        return "install"
    if h.is_test_path(path):
        return "test"
    if path in entries or path.endswith("__init__.py"):
        return "entry"
    return "code"


# ------------------------------------------------------------------------------ analysis


class _Baseline:
    """Lazy questions about the trusted release's files (cached per kind and language)."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = files
        self._kinds: dict[tuple[str, str], bool] = {}
        self._minified: bool | None = None
        self._hashes: set[bytes] | None = None

    def code(self, lang: str) -> Iterable[bytes]:
        for path, data in self.files.items():
            if h.language(path, data) == lang:
                yield data[:MAX_ANALYSIS]

    def has(self, kind: str, lang: str) -> bool:
        key = (kind, lang)
        if key not in self._kinds:
            if kind == "minified" or kind == "high-entropy":
                self._kinds[key] = self.minified
            else:
                self._kinds[key] = any(h.has_kind(d, lang, kind) for d in self.code(lang))
        return self._kinds[key]

    @property
    def minified(self) -> bool:
        """Does the package already ship minified or bundled code anywhere?"""
        if self._minified is None:
            self._minified = any(
                path.endswith((".min.js", ".min.mjs", ".min.cjs"))
                or (
                    h.language(path, data) == "js"
                    and h.max_line_length(data[:MAX_ANALYSIS]) >= 1000
                )
                for path, data in self.files.items()
            )
        return self._minified

    def contains(self, data: bytes) -> bool:
        if self._hashes is None:
            self._hashes = {_digest(d) for d in self.files.values()}
        return _digest(data) in self._hashes


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass(slots=True)
class _FileJob:
    path: str
    lang: str
    new: bytes
    old: bytes | None
    role: Role
    _old_stats: h.TextStats | None = None

    def old_stats(self) -> h.TextStats:
        if self._old_stats is None:
            self._old_stats = h.stats((self.old or b"")[:MAX_ANALYSIS])
        return self._old_stats


def _region_flags(
    job: _FileJob, region: _Region, appended: bool, baseline: _Baseline, truncated: list[str]
) -> list[ContentFlag]:
    text = region.text
    if len(text) > MAX_ANALYSIS:
        text = text[:MAX_ANALYSIS]
        truncated.append(job.path)
        region = _Region(text, region.first_line, region.lines)
    found: dict[str, list[h.Hit]] = {}
    for hit in h.scan(text, job.lang):
        found.setdefault(hit.kind, []).append(hit)
    shape: h.TextStats | None = None
    if job.lang in ("js", "py", "sh") and len(text) >= 512:
        shape = h.stats(text)
        if shape.minified:
            found.setdefault("minified", [])
        elif shape.entropy >= 5.8 and shape.size >= 1024:
            found.setdefault("high-entropy", [])

    flags: list[ContentFlag] = []
    for kind, hits in found.items():
        seen_elsewhere = False
        if job.old is not None:
            if _old_has(job, kind):
                continue  # the previous version of this file had it: not news
        else:
            seen_elsewhere = baseline.has(kind, job.lang)
        if hits:
            first = hits[0]
            start, end = first.start, first.end
            label = ", ".join(dict.fromkeys(x.label for x in hits))
            metrics: dict[str, Any] = {"matches": len(hits), "length": end - start}
            if kind == "encoded-string":
                metrics["length"] = max(x.end - x.start for x in hits)
        else:
            start, end = 0, len(text)
            label = "minified code" if kind == "minified" else "high-entropy code"
            metrics = dict(shape.as_metrics()) if shape else {}
            if job.old is not None:
                metrics["previous"] = job.old_stats().as_metrics()
        lines = (
            (region.first_line, region.last_line)
            if not hits
            else (region.line_of(start), region.line_of(end))
        )
        flags.append(
            ContentFlag(
                path=job.path,
                kind=kind,
                label=label,
                lines=lines,
                excerpt=h.excerpt(text, start, end),
                metrics=metrics,
                role=job.role,
                new_file=job.old is None,
                appended=appended,
                seen_elsewhere=seen_elsewhere,
            )
        )
    return flags


def _old_has(job: _FileJob, kind: str) -> bool:
    if kind == "minified":
        return job.old_stats().long_lines
    if kind == "high-entropy":
        return job.old_stats().entropy >= 5.5 or job.old_stats().long_lines
    return h.has_kind((job.old or b"")[:MAX_ANALYSIS], job.lang, kind)


def _analyse(job: _FileJob, baseline: _Baseline, truncated: list[str]) -> list[ContentFlag]:
    if job.old is None:
        return _region_flags(job, _Region(job.new, 1), False, baseline, truncated)
    region = _appended(job.old, job.new)
    if region is not None:
        flags = _region_flags(job, region, True, baseline, truncated)
        if not flags and len(region.text) < APPENDED_LARGE:
            return []  # a little plain code added at the end: ordinary
        flags.append(
            ContentFlag(
                path=job.path,
                kind="appended-code",
                label="code appended to the end of the file",
                lines=(region.first_line, region.last_line),
                excerpt=h.excerpt(region.text, 0, min(len(region.text), 100)),
                metrics={"appended_bytes": len(region.text), "previous_bytes": len(job.old)},
                role=job.role,
                appended=True,
            )
        )
        return flags
    new_lines, added = _added_lines(job.old, job.new)
    if not added:
        return []
    probe = _Region(b"\n".join(added), 1, [1])  # unordered: a cheap filter for the common case
    if not _region_flags(job, probe, False, baseline, []):
        return []
    return _region_flags(job, _numbered(new_lines, added), False, baseline, truncated)


def _install_network(
    old_files: Mapping[str, bytes],
    new_files: Mapping[str, bytes],
    old_scripts: Mapping[str, str],
    new_scripts: Mapping[str, str],
) -> list[ContentFlag]:
    """Network access in files an install hook runs, unless the trusted release's hooks ran
    the same file and it already had it."""
    flags = []
    old_targets = _script_targets(old_scripts)
    for target in sorted(_script_targets(new_scripts)):
        data = new_files.get(target)
        if data is None:
            continue
        data = data[:MAX_ANALYSIS]
        m = h.NETWORK.search(data)
        if m is None:
            continue
        old = old_files.get(target)
        if target in old_targets and old is not None and h.NETWORK.search(old[:MAX_ANALYSIS]):
            continue
        line = data.count(b"\n", 0, m.start()) + 1
        flags.append(
            ContentFlag(
                path=target,
                kind="install-network",
                label="network access in a file an install hook runs",
                lines=(line, line),
                excerpt=h.excerpt(data, m.start(), m.end()),
                metrics={
                    "hooks": sorted(
                        k
                        for k in INSTALL_HOOKS
                        if target in _script_targets({k: new_scripts.get(k, "")})
                    )
                },
                role="install",
                new_file=old is None,
            )
        )
    return flags


def _build_system(files: Mapping[str, bytes]) -> dict[str, Any] | None:
    raw = files.get("pyproject.toml")
    if raw is None:
        return None
    try:
        table = tomllib.loads(raw.decode("utf-8", "replace")).get("build-system")
    except tomllib.TOMLDecodeError:
        return {"error": "unparsable pyproject.toml"}
    return table if isinstance(table, dict) else None


def _build_changes(
    old: Mapping[str, bytes], new: Mapping[str, bytes], flags: list[ContentFlag]
) -> list[BuildChange]:
    out: list[BuildChange] = []
    a, b = old.get("setup.py"), new.get("setup.py")
    if a != b and b is not None:
        kinds = tuple(sorted({f.kind for f in flags if f.path == "setup.py"}))
        if a is None:
            out.append(
                BuildChange(
                    "setup.py", "added", f"new setup.py, {len(b.splitlines())} lines", kinds
                )
            )
        else:
            old_lines, new_lines = set(a.split(b"\n")), set(b.split(b"\n"))
            plus, minus = len(new_lines - old_lines), len(old_lines - new_lines)
            out.append(BuildChange("setup.py", "changed", f"+{plus} -{minus} lines", kinds))
    ba, bb = _build_system(old), _build_system(new)
    if ba != bb and bb is not None:
        parts = []
        for key in ("build-backend", "backend-path", "requires"):
            if (ba or {}).get(key) != bb.get(key):
                parts.append(f"{key}: {(ba or {}).get(key)!r} -> {bb.get(key)!r}")
        out.append(
            BuildChange(
                "pyproject.toml [build-system]",
                "added" if ba is None else "changed",
                "; ".join(parts) or "changed",
            )
        )
    return out


def compare_archives(
    old: ArchiveContents,
    new: ArchiveContents,
    *,
    ecosystem: str,
    kind: str = "tarball",
    baseline_artifact: str = "",
    candidate_artifact: str = "",
    baseline_version: str | None = None,
    candidate_version: str | None = None,
) -> ContentComparison:
    """Compare two read archives (see ``read_archive``). Pure and deterministic."""
    old_files, new_files = old.files, new.files
    added = sorted(set(new_files) - set(old_files))
    removed = sorted(set(old_files) - set(new_files))
    changed = sorted(p for p in new_files if p in old_files and new_files[p] != old_files[p])
    unchanged = len(new_files) - len(added) - len(changed)
    baseline = _Baseline(old_files)
    moved = [p for p in added if baseline.contains(new_files[p])]

    old_scripts: dict[str, str] = {}
    new_scripts: dict[str, str] = {}
    entries: set[str] = set()
    if ecosystem == "npm":
        old_scripts, new_scripts = npm_install_scripts(old_files), npm_install_scripts(new_files)
        entries = _npm_entries(new_files)
    installs = _script_targets(new_scripts)

    flags: list[ContentFlag] = []
    truncated: list[str] = []
    moved_set = set(moved)
    for path in [*changed, *added]:
        if path in moved_set:
            continue
        data = new_files[path]
        lang = h.language(path, data)
        if lang is None:
            continue
        job = _FileJob(path, lang, data, old_files.get(path), _role(path, lang, entries, installs))
        flags.extend(_analyse(job, baseline, truncated))
    flags.extend(_install_network(old_files, new_files, old_scripts, new_scripts))
    builds = _build_changes(old_files, new_files, flags) if kind == "sdist" else []
    flags.sort(key=lambda f: (f.path, f.lines, f.kind))
    return ContentComparison(
        ecosystem=ecosystem,
        kind=kind,
        baseline_artifact=baseline_artifact,
        candidate_artifact=candidate_artifact,
        baseline_version=baseline_version,
        candidate_version=candidate_version,
        added=tuple(FileChange(p, "added", None, len(new_files[p])) for p in added),
        removed=tuple(FileChange(p, "removed", len(old_files[p]), None) for p in removed),
        changed=tuple(
            FileChange(p, "changed", len(old_files[p]), len(new_files[p])) for p in changed
        ),
        moved=tuple(moved),
        unchanged=unchanged,
        flags=tuple(flags[:MAX_FLAGS]),
        build_changes=tuple(builds),
        baseline_scripts=old_scripts,
        candidate_scripts=new_scripts,
        bytes_compared=old.total_size + new.total_size,
        truncated=tuple(dict.fromkeys(truncated)),
    )
