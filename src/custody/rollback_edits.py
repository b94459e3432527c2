"""The file edits of ``custody rollback``: pure functions from a file's text to its new text.

- npm: ``package.json`` ``overrides`` pins the package everywhere in the tree; a direct
  dependency's own spec is set to the same exact version (npm refuses an override that
  contradicts a direct dependency, EOVERRIDE).
- pip: the pinned line in ``requirements.txt`` (the lock itself) is rewritten to the trusted
  version; its ``--hash`` options are replaced by the trusted release's sha256 digests.
- uv: ``[tool.uv] override-dependencies`` in ``pyproject.toml`` gets ``NAME==VERSION``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from custody.errors import InputError

_NPM_DEP_KEYS = ("dependencies", "devDependencies", "optionalDependencies")


def _indent(text: str) -> int | str:
    match = re.search(r"^([ \t]+)\"", text, re.MULTILINE)
    if match is None:
        return 2
    ws = match.group(1)
    return ws if "\t" in ws else len(ws)


def npm_override(package_json: str, name: str, version: str, *, path: str) -> str:
    """``package.json`` with ``overrides[name] = version`` (and direct specs pinned to it)."""
    try:
        doc: Any = json.loads(package_json)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(doc, dict):
        raise InputError("package.json is not a JSON object", path=path)
    overrides = doc.get("overrides")
    if overrides is None:
        overrides = doc["overrides"] = {}
    if not isinstance(overrides, dict):
        raise InputError("'overrides' is not an object", path=path)
    overrides[name] = version
    for key in _NPM_DEP_KEYS:
        deps = doc.get(key)
        if isinstance(deps, dict) and name in deps:
            deps[name] = version
    out = json.dumps(doc, indent=_indent(package_json), ensure_ascii=False)
    return out + ("\n" if package_json.endswith("\n") or not package_json else "")


def _logical_span(lines: Sequence[str], start: int) -> int:
    """Index after the last physical line of the logical line starting at ``start``."""
    end = start
    while end < len(lines) and lines[end].rstrip("\r\n").endswith("\\"):
        end += 1
    return min(end + 1, len(lines))


_PIN = re.compile(r"^(?P<req>[^\s\\#;][^;\\#]*?)(?P<marker>\s*;[^\\#]*)?\s*(?:\\|#|$)")


def requirements_pin(
    text: str,
    name: str,
    version: str,
    sha256s: Sequence[str],
    *,
    path: str,
) -> str:
    """``requirements.txt`` with ``name``'s pin moved to ``version``. Hash-checking files get the
    trusted release's sha256 digests (``sha256s``), which must then not be empty."""
    lines = text.splitlines(keepends=True)
    wanted = canonicalize_name(name)
    i = 0
    while i < len(lines):
        end = _logical_span(lines, i)
        first = lines[i].strip()
        match = _PIN.match(first) if first and not first.startswith(("-", "#")) else None
        req = None
        if match is not None:
            try:
                req = Requirement(match.group("req").strip())
            except InvalidRequirement:
                req = None
        if req is None or canonicalize_name(req.name) != wanted:
            i = end
            continue
        logical = "".join(lines[i:end])
        hashed = "--hash" in logical
        if hashed and not sha256s:
            raise InputError(
                f"cannot pin {name}=={version}: the file checks hashes and the index gives no "
                "sha256 for that release",
                path=path,
                line=i + 1,
            )
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        marker = (match.group("marker") or "").strip() if match else ""
        head = f"{req.name}{extras}=={version}" + (f" {marker}" if marker else "")
        newline = "\r\n" if lines[i].endswith("\r\n") else "\n"
        if hashed:
            hashes = [f"    --hash=sha256:{h}" for h in sorted(sha256s)]
            block = " \\\n".join([head, *hashes]).replace("\n", newline) + newline
        else:
            block = head + newline
        return "".join(lines[:i]) + block + "".join(lines[end:])
    raise InputError(f"no pinned requirement for {name} found", path=path)


def uv_override(pyproject: str, name: str, version: str, *, path: str) -> str:
    """``pyproject.toml`` with ``NAME==VERSION`` in ``[tool.uv] override-dependencies`` (an
    earlier override of the same package is replaced). Comments and layout are kept."""
    try:
        doc = tomlkit.parse(pyproject)
    except tomlkit.exceptions.ParseError as exc:
        raise InputError(f"invalid TOML: {exc}", path=path, line=exc.line) from None
    tool = doc.setdefault("tool", tomlkit.table())
    uv = tool.setdefault("uv", tomlkit.table())
    current = uv.get("override-dependencies")
    if current is None:
        current = tomlkit.array()
        uv["override-dependencies"] = current
    wanted = canonicalize_name(name)
    kept = []
    for item in list(current):
        try:
            same = canonicalize_name(Requirement(str(item)).name) == wanted
        except InvalidRequirement:
            same = False
        if not same:
            kept.append(str(item))
    kept.append(f"{name}=={version}")
    array = tomlkit.array()
    array.extend(kept)
    uv["override-dependencies"] = array
    return tomlkit.dumps(doc)
