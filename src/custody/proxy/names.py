"""What the proxy accepts from a client: package names, file names and versions, checked before
anything is looked up or any upstream URL is built. Everything else is refused with 400.

Upstream URLs are only ever built from a configured registry base plus a name that passed these
checks (npm's ``@scope%2fname`` escaping, PEP 503 normalisation), or taken verbatim from the
upstream's own documents (a tarball or file URL named there). A client never chooses a host."""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name

NPM_NAME_MAX = 214
FILENAME_MAX = 255
VERSION_MAX = 256

# npm: URL-safe characters only (what encodeURIComponent leaves alone, less the ones new names
# may not use), upper case allowed for old packages (JSONStream), no leading "." or "_".
_NPM_PART = re.compile(r"^(?![._])[A-Za-z0-9._~-]+$")
_NPM_BLOCKED = frozenset({"node_modules", "favicon.ico"})
# PEP 508 / PEP 503 project names.
_PYPI_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")
_TARBALL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+-]*\.tgz$")
_DIST_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")


class BadName(ValueError):
    """A name, file name or version a client sent that the proxy will not look up."""


def npm_name(parts: list[str]) -> str:
    """The npm package name from one (``name``) or two (``@scope``, ``name``) path segments.
    Raises ``BadName``."""
    if len(parts) == 2:
        scope, base = parts
        if not scope.startswith("@") or not _NPM_PART.match(scope[1:]):
            raise BadName(f"invalid npm scope {scope!r}")
        if not _NPM_PART.match(base):
            raise BadName(f"invalid npm package name {base!r}")
        name = f"{scope}/{base}"
    elif len(parts) == 1:
        name = parts[0]
        if not _NPM_PART.match(name) or name.lower() in _NPM_BLOCKED:
            raise BadName(f"invalid npm package name {name!r}")
    else:
        raise BadName("invalid npm package path")
    if len(name) > NPM_NAME_MAX:
        raise BadName(f"npm package names are at most {NPM_NAME_MAX} characters")
    return name


def is_npm_name(name: str) -> bool:
    try:
        npm_name(name.split("/", 1) if name.startswith("@") else [name])
    except BadName:
        return False
    return True


def pypi_name(text: str) -> str:
    """The PEP 503 normalised form of a project name. Raises ``BadName``."""
    if not _PYPI_NAME.match(text):
        raise BadName(f"invalid Python project name {text!r}")
    return canonicalize_name(text)


def tarball_filename(text: str) -> str:
    if len(text) > FILENAME_MAX or not _TARBALL.match(text):
        raise BadName(f"invalid tarball file name {text!r}")
    return text


def dist_filename(text: str) -> str:
    if len(text) > FILENAME_MAX or not _DIST_FILE.match(text) or ".." in text:
        raise BadName(f"invalid distribution file name {text!r}")
    return text


def version_or_tag(text: str) -> str:
    if len(text) > VERSION_MAX or not _VERSION.match(text):
        raise BadName(f"invalid version or tag {text!r}")
    return text
