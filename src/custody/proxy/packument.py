"""npm packuments as the proxy serves them: the upstream's full document with withheld versions
removed (from ``versions`` and ``time``), ``dist-tags`` moved off them, tarball URLs rewritten
to the proxy; and the abbreviated install form (``application/vnd.npm.install-v1+json``) built
from that same filtered document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from custody.registries.npm_packument import semver_key
from custody.registries.urls import origin

ABBREVIATED = "application/vnd.npm.install-v1+json"
# What the public registry puts in an abbreviated version document.
_ABBREVIATED_FIELDS = (
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "dist",
    "engines",
    "cpu",
    "os",
    "libc",
    "funding",
    "license",
    "_hasShrinkwrap",
)
_INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")
_TIME_KEYS = frozenset({"created", "modified", "unpublished"})


@dataclass(frozen=True, slots=True)
class Tarball:
    version: str
    url: str  # the upstream's own dist.tarball URL
    filename: str


def tarballs(
    doc: Mapping[str, Any], allowed_origins: set[tuple[str, str, int | None]] | None
) -> tuple[dict[str, Tarball], set[str]]:
    """Tarballs by file name (the last segment of ``dist.tarball``), and the versions whose
    tarball the proxy cannot serve (no URL, an unusable file name, a host not allowed, or a
    file name two versions share). ``allowed_origins`` None: any http(s) host."""
    found: dict[str, Tarball] = {}
    unusable: set[str] = set()
    versions = doc.get("versions")
    if not isinstance(versions, dict):
        return found, unusable
    from custody.proxy.names import BadName, tarball_filename

    for version, manifest in versions.items():
        dist = manifest.get("dist") if isinstance(manifest, dict) else None
        url = dist.get("tarball") if isinstance(dist, dict) else None
        if not isinstance(url, str):
            unusable.add(version)
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            unusable.add(version)
            continue
        if allowed_origins is not None and origin(url) not in allowed_origins:
            unusable.add(version)
            continue
        try:
            filename = tarball_filename(unquote(parts.path.rsplit("/", 1)[-1]))
        except BadName:
            unusable.add(version)
            continue
        if filename in found:
            unusable.update({version, found.pop(filename).version})
            continue
        found[filename] = Tarball(version, url, filename)
    for tarball in list(found.values()):
        if tarball.version in unusable:
            del found[tarball.filename]
    return found, unusable


def tarball_url(base: str, name: str, filename: str) -> str:
    return f"{base}/npm/{quote(name, safe='@/')}/-/{quote(filename, safe='')}"


def _is_prerelease(version: str) -> bool:
    key = semver_key(version)
    return bool(key[0] == 0 and key[4] == 0)


def move_dist_tags(tags: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, str]:
    """Each tag on an allowed version stays. A tag on a withheld version moves to the newest
    allowed version below it (a release tag never moves to a prerelease); a tag with no such
    version is dropped."""
    allowed_set = set(allowed)
    ordered = sorted(allowed_set, key=semver_key)
    out: dict[str, str] = {}
    for tag, target in tags.items():
        if not isinstance(tag, str) or not isinstance(target, str):
            continue
        if target in allowed_set:
            out[tag] = target
            continue
        limit = semver_key(target)
        pre = _is_prerelease(target)
        below = [
            v
            for v in ordered
            if semver_key(v)[0] == limit[0]
            and semver_key(v) < limit
            and (pre or not _is_prerelease(v))
        ]
        if below:
            out[tag] = below[-1]
    return out


def filter_full(
    doc: Mapping[str, Any],
    name: str,
    allowed: set[str],
    files: Mapping[str, Tarball],
    base: str,
) -> dict[str, Any]:
    """The full packument with only ``allowed`` versions, tarballs through the proxy."""
    by_version = {t.version: t for t in files.values()}
    out = {
        k: v for k, v in doc.items() if k not in ("versions", "time", "dist-tags", "_attachments")
    }
    versions: dict[str, Any] = {}
    raw_versions = doc.get("versions")
    if isinstance(raw_versions, dict):
        for version, manifest in raw_versions.items():
            tarball = by_version.get(version)
            if version not in allowed or tarball is None or not isinstance(manifest, dict):
                continue
            copy = dict(manifest)
            dist = dict(copy.get("dist") or {})
            dist["tarball"] = tarball_url(base, name, tarball.filename)
            copy["dist"] = dist
            versions[version] = copy
    withheld = set(raw_versions or ()) - set(versions)
    times = doc.get("time")
    if isinstance(times, dict):
        out["time"] = {k: v for k, v in times.items() if k in _TIME_KEYS or k not in withheld}
    tags = doc.get("dist-tags")
    out["dist-tags"] = move_dist_tags(tags if isinstance(tags, dict) else {}, versions)
    out["versions"] = versions
    return out


def _has_install_script(manifest: Mapping[str, Any]) -> bool:
    scripts = manifest.get("scripts")
    if isinstance(scripts, dict) and any(scripts.get(k) for k in _INSTALL_SCRIPTS):
        return True
    return manifest.get("gypfile") is True or bool(manifest.get("hasInstallScript"))


def abbreviate(full: Mapping[str, Any]) -> dict[str, Any]:
    """The abbreviated ("corgi") document npm installs from, built from a filtered full one."""
    versions: dict[str, Any] = {}
    for version, manifest in (full.get("versions") or {}).items():
        small = {k: manifest[k] for k in _ABBREVIATED_FIELDS if k in manifest}
        if _has_install_script(manifest):
            small["hasInstallScript"] = True
        versions[version] = small
    times = full.get("time")
    modified = times.get("modified") if isinstance(times, dict) else None
    out: dict[str, Any] = {"name": full.get("name"), "dist-tags": full.get("dist-tags", {})}
    if isinstance(modified, str):
        out["modified"] = modified
    out["versions"] = versions
    return out
