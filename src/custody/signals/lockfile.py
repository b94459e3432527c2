"""Lockfile signals: does the locked entry name the release the registry published?

Custody judges ``name@version`` as the registry publishes it, but a package manager installs
what the lockfile entry says: npm downloads ``resolved`` and checks it against ``integrity``;
pip, uv and poetry check the downloaded file against the locked hash. An entry whose
``version`` says 2.1.3 while its ``resolved`` points at the 2.0.0 tarball, or at another host,
or whose ``integrity`` is the digest of other bytes, installs something other than the release
Custody judged (lockfile injection). Two rules:

- ``lockfile.integrity-mismatch`` (critical): the entry's ``integrity`` names a digest the
  registry did not publish for that release. Compared on every algorithm both sides have; a
  Python hash is fine when it is the digest of any of the release's files (wheels, sdist);
  no shared algorithm, no finding.
- ``lockfile.source-mismatch`` (high, npm only): the entry's ``resolved`` is not the
  registry's tarball for that release. Compared by the path's tail (``/<name>/-/<file>.tgz``,
  as the registry's own ``dist.tarball`` ends), not by host, because mirrors and proxies serve
  the same tarballs under other hosts and prefixes; the host is checked only when the entry's
  integrity does not pin the release's published bytes (then nothing stops npm from
  installing whatever that host serves).

Pure functions of the ``SignalContext``: the locked entry (``ctx.dependency``) against the
registry's release (``ctx.candidate``). A context without a lockfile entry's ``integrity`` or
``resolved`` (the proxy judging a packument, history replays, ``watch``) draws no finding."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import unquote, urlsplit

from custody.model import Artifact, Ecosystem, Finding, LockedDependency, Release, Severity
from custody.registries.urls import redact_url
from custody.signals.base import SignalContext

INTEGRITY_RULE = "lockfile.integrity-mismatch"
SOURCE_RULE = "lockfile.source-mismatch"

_STRENGTH = ("sha512", "sha384", "sha256", "blake2b_256", "sha1", "md5")
"""Algorithms in the order evidence reports them (strongest first); others sort after."""
_HEX_FORM = re.compile(r"^([A-Za-z0-9_]+)[:=]([0-9A-Fa-f]+)$")  # Python: sha256:<hex>
_SRI_FORM = re.compile(r"^([A-Za-z0-9]+)-([A-Za-z0-9+/=]+)(\?.*)?$")  # npm: sha512-<base64>
_MAX_LISTED = 5  # published digests listed in evidence (a PyPI release may have 50 wheels)


# -- digests ------------------------------------------------------------------------------------


def _algorithm(name: str) -> str:
    return name.lower().replace("-", "_")


def parse_integrity(text: str) -> dict[str, str]:
    """``{algorithm: lower-case hex}`` from a lockfile integrity: npm SRI (``sha512-<base64>``,
    several separated by spaces, ``?options`` ignored) or Python ``sha256:<hex>`` (also
    ``sha256=<hex>``). Items that parse as neither are ignored."""
    out: dict[str, str] = {}
    for item in text.split():
        hex_form = _HEX_FORM.match(item)
        if hex_form is not None:
            out.setdefault(_algorithm(hex_form.group(1)), hex_form.group(2).lower())
            continue
        sri = _SRI_FORM.match(item)
        if sri is None:
            continue
        try:
            digest = base64.b64decode(sri.group(2), validate=True).hex()
        except (binascii.Error, ValueError):
            continue
        if digest:
            out.setdefault(_algorithm(sri.group(1)), digest)
    return out


def published_digests(artifact: Artifact) -> dict[str, str]:
    """``{algorithm: lower-case hex}`` the registry published for one artifact: its
    ``digests`` and its npm SRI ``integrity``."""
    out = {_algorithm(k): v.lower() for k, v in artifact.digests.items() if v}
    for alg, digest in parse_integrity(artifact.integrity or "").items():
        out.setdefault(alg, digest)
    return out


def _by_strength(algorithms: set[str]) -> list[str]:
    return sorted(algorithms, key=lambda a: (_STRENGTH.index(a) if a in _STRENGTH else 99, a))


def _notation(ecosystem: Ecosystem, algorithm: str, hex_digest: str) -> str:
    """A digest written as the lockfile writes it: npm SRI, Python ``alg:hex``."""
    if ecosystem is Ecosystem.NPM:
        try:
            return f"{algorithm}-{base64.b64encode(bytes.fromhex(hex_digest)).decode()}"
        except ValueError:
            pass
    return f"{algorithm}:{hex_digest}"


def integrity_verdict(dep: LockedDependency, release: Release) -> bool | None:
    """True when the entry's integrity equals, on every algorithm both share, the digests the
    registry published for one of the release's artifacts; False when it shares an algorithm
    with some artifact and matches none; None when it cannot be told (no integrity, or no
    algorithm in common)."""
    locked = parse_integrity(dep.integrity or "")
    if not locked:
        return None
    compared = False
    for artifact in release.artifacts:
        published = published_digests(artifact)
        shared = locked.keys() & published.keys()
        if not shared:
            continue
        if all(locked[alg] == published[alg] for alg in shared):
            return True
        compared = True
    return False if compared else None


def integrity_mismatch(ctx: SignalContext) -> list[Finding]:
    """``lockfile.integrity-mismatch``: the locked ``integrity`` is not a digest the registry
    published for the locked release."""
    dep, cand = ctx.dependency, ctx.candidate
    if not dep.integrity or cand is None or cand.unpublished:
        return []
    if any(a.integrity == dep.integrity for a in cand.artifacts):
        return []  # the registry's own string: the usual case, no digest to decode
    if integrity_verdict(dep, cand) is not False:
        return []
    locked = parse_integrity(dep.integrity)
    shared_by: list[tuple[Artifact, Mapping[str, str]]] = []
    algorithms: set[str] = set()
    for artifact in cand.artifacts:
        published = published_digests(artifact)
        shared = locked.keys() & published.keys()
        if shared:
            shared_by.append((artifact, published))
            algorithms |= shared
    alg = _by_strength(algorithms)[0]
    expected = [
        _notation(dep.ecosystem, alg, published[alg])
        for _artifact, published in shared_by
        if alg in published
    ]
    files = "tarball" if dep.ecosystem is Ecosystem.NPM else "files"
    return [
        Finding(
            INTEGRITY_RULE,
            Severity.CRITICAL,
            f"the lockfile pins {dep.name} {dep.version} to a {alg} digest that "
            f"{ctx.history.registry} did not publish for that release (its {files}: "
            f"{', '.join(expected[:2])}{', ...' if len(expected) > 2 else ''}): the package "
            "manager would install other bytes than the release Custody judged",
            {
                "integrity": dep.integrity,
                "algorithm": alg,
                "locked": _notation(dep.ecosystem, alg, locked[alg]),
                "expected": expected[:_MAX_LISTED],
                "artifacts": [a.filename for a, _p in shared_by][:_MAX_LISTED],
                "compared_artifacts": len(shared_by),
                "resolved": redact_url(dep.resolved) if dep.resolved else None,
                "registry": ctx.history.registry,
            },
        )
    ]


# -- sources ------------------------------------------------------------------------------------


def _host(url: str) -> tuple[str, int | None] | None:
    """``(host, port)`` with the scheme's default port as None; None when there is no host."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host.lower().rstrip("."), None if port == default else port


def _show_host(host: tuple[str, int | None]) -> str:
    return host[0] if host[1] is None else f"{host[0]}:{host[1]}"


def expected_tail(name: str, version: str, tarball: str | None) -> str:
    """The path tail a tarball URL of ``name@version`` must end with: the registry's own
    ``dist.tarball`` from ``/<name>/-/`` on (its whole path when it has no such part), else
    npm's conventional ``/<name>/-/<basename>-<version>.tgz``."""
    if tarball:
        try:
            path = unquote(urlsplit(tarball).path)
        except ValueError:
            path = ""
        at = path.rfind(f"/{name}/-/")
        if at >= 0:
            return path[at:]
        if path.strip("/"):
            return path
    return f"/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def _resolved_version(name: str, path: str) -> str | None:
    """The version in a conventional tarball path of ``name`` (``/<name>/-/<base>-X.tgz``, not
    under a scope when ``name`` has none)."""
    base = name.rsplit("/", 1)[-1]
    found = re.search(rf"/{re.escape(name)}/-/{re.escape(base)}-([^/]+)\.tgz$", path)
    if found is None or path[: found.start()].rsplit("/", 1)[-1].startswith("@"):
        return None
    return found.group(1)


def _tail_matches(path: str, tail: str) -> bool:
    """``path`` ends with ``tail`` at a segment boundary, and the segment before it is not a
    scope: ``/@evil/ms/-/ms-2.1.3.tgz`` (the scoped package ``@evil/ms``) ends with
    ``/ms/-/ms-2.1.3.tgz`` but is another package."""
    if not path.endswith(tail):
        return False
    before = path[: len(path) - len(tail)]
    return not before.rsplit("/", 1)[-1].startswith("@")


def source_problem(
    dep: LockedDependency, release: Release, registry: str
) -> tuple[str, str, dict[str, object]] | None:
    """Why the entry's ``resolved`` is not the registry's tarball of ``release``: ``(reason,
    sentence, extra evidence)``, or None when it is (or there is no ``resolved``)."""
    resolved = dep.resolved
    if not resolved:
        return None
    tarball = next((a.url for a in release.artifacts if a.url), None)
    tail = expected_tail(dep.name, release.version, tarball)
    try:
        parts = urlsplit(resolved)
        scheme = parts.scheme.lower()
    except ValueError:
        scheme, parts = "", None
    if parts is None or scheme not in ("http", "https") or _host(resolved) is None:
        return (
            "not-a-registry-url",
            "which is not a registry tarball URL",
            {"scheme": scheme or None},
        )
    path = unquote(parts.path)
    if any(segment in (".", "..") for segment in path.split("/")):
        return ("dot-segments", "a path with dot segments", {})
    if not _tail_matches(path, tail):
        other = _resolved_version(dep.name, path)
        if other is not None and other != release.version:
            return (
                "other-version",
                f"the tarball of {dep.name} {other}",
                {"resolved_version": other},
            )
        return ("other-tarball", "another tarball than the release's", {})
    if integrity_verdict(dep, release) is True:
        return None  # npm checks the download against the registry's own digest
    host = _host(resolved)
    allowed = {h for h in (_host(tarball or ""), _host(registry)) if h is not None}
    if host is None or not allowed or host in allowed:
        return None
    return (
        "unverified-host",
        f"a tarball on {_show_host(host)}, with no integrity that pins the release's "
        "published digest",
        {"host": _show_host(host), "registry_hosts": sorted(_show_host(h) for h in allowed)},
    )


def source_mismatch(ctx: SignalContext) -> list[Finding]:
    """``lockfile.source-mismatch`` (npm): the locked ``resolved`` is not the registry's
    tarball of the locked release."""
    dep, cand = ctx.dependency, ctx.candidate
    if dep.ecosystem is not Ecosystem.NPM or not dep.resolved or cand is None:
        return []
    if cand.unpublished or any(a.url == dep.resolved for a in cand.artifacts):
        return []  # the registry's own tarball URL: the usual case
    problem = source_problem(dep, cand, ctx.history.registry)
    if problem is None:
        return []
    reason, what, extra = problem
    tarball = next((a.url for a in cand.artifacts if a.url), None)
    return [
        Finding(
            SOURCE_RULE,
            Severity.HIGH,
            f"the lockfile says {dep.name} {dep.version} but npm would install it from "
            f"{redact_url(dep.resolved)}, {what}: not the release Custody judged",
            {
                "resolved": redact_url(dep.resolved),
                "expected": redact_url(tarball)
                if tarball
                else expected_tail(dep.name, cand.version, None),
                "reason": reason,
                **extra,
            },
        )
    ]


def lockfile_entry(ctx: SignalContext) -> list[Finding]:
    """Both lockfile rules, as one entry of the signal list, for every ``(integrity,
    resolved)`` the lockfiles record for the release (a tampered nested copy included)."""
    findings = integrity_mismatch(ctx) + source_mismatch(ctx)
    dep = ctx.dependency
    for integrity, resolved in dep.other_sources:
        copy = replace(dep, integrity=integrity, resolved=resolved, other_sources=())
        seen_as = replace(ctx, dependency=copy)
        for finding in integrity_mismatch(seen_as) + source_mismatch(seen_as):
            if finding not in findings:
                findings.append(finding)
    return findings
