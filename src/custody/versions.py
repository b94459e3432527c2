"""Version arithmetic per ecosystem: npm versions are SemVer (``nodesemver``), PyPI versions are
PEP 440 (``packaging``). Used to classify a bump (patch, minor, major) and to evaluate OSV ranges.

Every function returns None for a version it cannot parse, never guesses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from custody.model import Ecosystem

if TYPE_CHECKING:
    from packaging.version import Version

BumpKind = Literal["patch", "minor", "major"]


@dataclass(frozen=True, slots=True, order=True)
class _Parts:
    """A parsed version reduced to what a bump looks at."""

    major: int
    minor: int
    patch: int
    prerelease: bool


_PLAIN_SEMVER = re.compile(r"(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})")


def plain_semver(version: str) -> tuple[int, int, int] | None:
    """``MAJOR.MINOR.PATCH`` and nothing else (most npm versions), read directly: node-semver
    reads it the same, but importing node-semver costs 25-50 ms of regular expressions. None
    for anything else (prereleases, build metadata, loose forms): node-semver's to read."""
    plain = _PLAIN_SEMVER.fullmatch(version)
    return None if plain is None else (int(plain[1]), int(plain[2]), int(plain[3]))


@lru_cache(maxsize=8192)
def _npm(version: str) -> object | None:
    import nodesemver  # 25 ms of regular expressions at import: only when a version needs it

    try:
        parsed: object | None = nodesemver.parse(version.strip().lstrip("v="), loose=True)
    except (ValueError, TypeError):
        return None
    return parsed


@lru_cache(maxsize=8192)
def _pypi(version: str) -> Version | None:
    from packaging.version import InvalidVersion, Version  # not needed by npm-only runs

    try:
        return Version(version)
    except InvalidVersion:
        return None


def _parts(ecosystem: Ecosystem, version: str) -> _Parts | None:
    if ecosystem is Ecosystem.PYPI:
        v = _pypi(version)
        if v is None:
            return None
        rel = (*v.release, 0, 0, 0)
        return _Parts(rel[0], rel[1], rel[2], v.is_prerelease)
    plain = plain_semver(version)
    if plain is not None:
        return _Parts(*plain, prerelease=False)
    parsed = _npm(version)
    if parsed is None:
        return None
    return _Parts(
        int(parsed.major),  # type: ignore[attr-defined]
        int(parsed.minor),  # type: ignore[attr-defined]
        int(parsed.patch),  # type: ignore[attr-defined]
        bool(parsed.prerelease),  # type: ignore[attr-defined]
    )


def is_valid(ecosystem: Ecosystem, version: str) -> bool:
    return _parts(ecosystem, version) is not None


def compare(ecosystem: Ecosystem, a: str, b: str) -> int | None:
    """-1, 0 or 1 as ``a`` is lower than, equal to or higher than ``b``; None if either does
    not parse. PyPI: ``1.0 == 1.0.0``; npm: build metadata is ignored."""
    if ecosystem is Ecosystem.PYPI:
        va, vb = _pypi(a), _pypi(b)
        if va is None or vb is None:
            return None
        return (va > vb) - (va < vb)
    plain_a, plain_b = plain_semver(a), plain_semver(b)
    if plain_a is not None and plain_b is not None:
        return (plain_a > plain_b) - (plain_a < plain_b)
    pa, pb = _npm(a), _npm(b)
    if pa is None or pb is None:
        return None
    result = pa.compare(pb)  # type: ignore[attr-defined]
    return int(result)


def same_version(ecosystem: Ecosystem, a: str, b: str) -> bool:
    """Equal versions (by ecosystem rules); unparseable ones compare as text."""
    result = compare(ecosystem, a, b)
    return a.strip() == b.strip() if result is None else result == 0


@dataclass(frozen=True, slots=True)
class Bump:
    """How ``to`` differs from ``base``: the highest component that changed."""

    kind: BumpKind
    prerelease: bool  # the new version is a prerelease
    downgrade: bool  # the new version is lower than the old one


def bump(ecosystem: Ecosystem, base: str, to: str) -> Bump | None:
    """Classify the step from ``base`` to ``to``: ``major`` when the first component changes,
    ``minor`` the second, ``patch`` otherwise (third or later components, prerelease, post and
    dev parts: anything a caret or tilde range would accept). None when a version does not
    parse."""
    a, b = _parts(ecosystem, base), _parts(ecosystem, to)
    if a is None or b is None:
        return None
    if a.major != b.major:
        kind: BumpKind = "major"
    elif a.minor != b.minor:
        kind = "minor"
    else:
        kind = "patch"
    order = compare(ecosystem, to, base)
    return Bump(kind, b.prerelease, order is not None and order < 0)


@lru_cache(maxsize=16384)
def satisfies(ecosystem: Ecosystem, version: str, spec: str) -> bool | None:
    """Does ``version`` satisfy a declared range (npm range, PEP 440 specifier set)? None when
    either does not parse (URLs, git specs, tags). Cached: parsing a range costs more than
    checking it, and a tree asks about the same few ranges many times."""
    if ecosystem is Ecosystem.PYPI:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        text = spec.split("]", 1)[-1] if spec.startswith("[") else spec
        try:
            specifier = SpecifierSet(text)
        except InvalidSpecifier:
            return None
        v = _pypi(version)
        return None if v is None else specifier.contains(v, prereleases=True)
    import nodesemver

    try:
        if _npm(version) is None or nodesemver.valid_range(spec, loose=True) is None:
            return None
        return bool(nodesemver.satisfies(version, spec, loose=True))
    except (ValueError, TypeError):
        return None
