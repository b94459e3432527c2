"""Parse a full npm packument (``Accept: application/json``) into a ``PackageHistory``.

Fields read per version (all optional: a stripped mirror shape yields None, never a crash):

- ``_npmUser`` -> ``publisher``. ``_npmUser.trustedPublisher`` (``{"id": "github",
  "oidcConfigId": ...}``) marks an OIDC trusted publish; ``_npmUser.name`` is then the CI
  system ("GitHub Actions"), not an account, and the publisher is the custodian
  ``npm:trusted-publisher/ID`` (``ID``: ``trustedPublisher.id`` made a safe token, ``unknown``
  when absent). The repository that built it comes from its signed provenance, if any.
- ``_npmUser.approver`` (``{"name", "email"}``) -> ``approver``: npm staged publishing (npm CLI
  >= 11.15, ``npm stage publish`` then ``npm stage approve`` with 2FA) records the maintainer who
  approved the staged version there (npm >= 11.16; earlier staged versions have no approver and
  may miss ``dist.fileCount``/``unpackedSize``). A version-level ``approver`` is read too, in case
  the registry moves it.
- ``maintainers`` (``{"name", "email"}`` objects or ``"name <email>"`` strings), ``time``,
  ``dist`` (tarball, ``integrity``, ``shasum``, ``signatures``, ``attestations``), install-time
  ``scripts`` (``preinstall``/``install``/``postinstall``; ``gypfile: true`` without them implies
  ``node-gyp rebuild``), dependencies (prod, optional, peer, bundled; devDependencies skipped:
  they never install for a consumer), ``repository``, ``gitHead``, ``deprecated``.

Versions with a ``time`` entry but no ``versions`` entry were unpublished. A ``time`` object
without ``created``/``modified`` is not the registry's own record (the filtering mirror rewrites
it with ingest times): such times are ignored rather than trusted."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from custody.model import (
    TRUSTED_PUBLISHER_PREFIX,
    Artifact,
    Custodian,
    DeclaredDependency,
    Ecosystem,
    OwnerRole,
    PackageHistory,
    Provenance,
    Release,
)
from custody.registries.derived import encode_history
from custody.registries.documents import BadDocument
from custody.registries.ordering import order_releases
from custody.registries.repo_urls import normalise_repository
from custody.registries.times import parse_time
from custody.versions import plain_semver

NPM_PARSER_VERSION = "npm-packument/4"
INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")
_TIME_META_KEYS = frozenset({"created", "modified", "unpublished"})
_UNSAFE_CI = re.compile(r"[^a-z0-9._-]+")
_DEP_KINDS = (
    ("dependencies", "prod"),
    ("optionalDependencies", "optional"),
    ("peerDependencies", "peer"),
)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def person_name(value: Any) -> str | None:
    """The account name of an npm person: ``{"name": ...}`` or ``"name <email> (url)"``."""
    if isinstance(value, dict):
        value = value.get("name")
    if isinstance(value, str):  # "name <email> (url)" or a bare name
        name = value.split("<", 1)[0].split("(", 1)[0].strip()
        return name or None
    return None


def _user(value: Any) -> Custodian | None:
    name = person_name(value)
    return Custodian.npm_user(name) if name else None


def trusted_publisher(npm_user: Any) -> Custodian | None:
    """The publisher of an npm trusted publish (``_npmUser.trustedPublisher`` present):
    ``npm:trusted-publisher/ID``, naming the CI system npm let publish, not a person. ``ID`` is
    ``trustedPublisher.id`` lower-cased, with anything but letters, digits, ``.``, ``_`` and
    ``-`` made ``-`` (at most 64 characters), or ``unknown``. None for any other publish."""
    trusted = npm_user.get("trustedPublisher") if isinstance(npm_user, dict) else None
    if not isinstance(trusted, dict):
        return None
    ci = trusted.get("id")
    token = _UNSAFE_CI.sub("-", ci.strip().lower()) if isinstance(ci, str) else ""
    token = token.strip("-._")[:64].rstrip("-._")
    return Custodian(f"{TRUSTED_PUBLISHER_PREFIX}{token or 'unknown'}")


def _maintainers(value: Any) -> frozenset[Custodian] | None:
    if isinstance(value, str | dict):
        value = [value]
    if not isinstance(value, list):
        return None
    return frozenset(c for c in map(_user, value) if c is not None)


def _digests(dist: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    integrity = dist.get("integrity")
    if isinstance(integrity, str):
        for item in integrity.split():
            alg, sep, b64 = item.partition("-")
            if not sep:
                continue
            try:
                out[alg.lower()] = base64.b64decode(b64.split("?", 1)[0], validate=True).hex()
            except (binascii.Error, ValueError):
                continue
    shasum = dist.get("shasum")
    if isinstance(shasum, str) and shasum:
        out["sha1"] = shasum.lower()
    return out


def _artifacts(
    dist: Any, publisher: Custodian | None, published_at: datetime | None
) -> tuple[Artifact, ...]:
    if not isinstance(dist, dict):
        return ()
    tarball = _str(dist.get("tarball"))
    filename = tarball.rsplit("/", 1)[-1] if tarball else ""
    return (
        Artifact(
            filename=filename,
            url=tarball,
            digests=_digests(dist),
            integrity=_str(dist.get("integrity")),
            kind="tarball",
            uploaded_at=published_at,
            uploader=publisher,
            has_signatures=bool(dist.get("signatures")),
            has_attestations=bool(dist.get("attestations")),
        ),
    )


def _provenance(npm_user: Any, dist: Any) -> Provenance | None:
    trusted = npm_user.get("trustedPublisher") if isinstance(npm_user, dict) else None
    issuer = _str(trusted.get("id")) if isinstance(trusted, dict) else None
    attestations = dist.get("attestations") if isinstance(dist, dict) else None
    if attestations:  # signed provenance; the packument only points at it (verified later)
        return Provenance(kind="npm-attestation", verified=None, issuer=issuer)
    if isinstance(trusted, dict):
        return Provenance(kind="npm-trusted-publisher", verified=None, issuer=issuer or "unknown")
    return None


def _scripts(manifest: Mapping[str, Any]) -> dict[str, str]:
    scripts = manifest.get("scripts")
    out: dict[str, str] = {}
    if isinstance(scripts, dict):
        for key in INSTALL_SCRIPTS:
            value = scripts.get(key)
            if isinstance(value, str) and value.strip():
                out[key] = value
    if manifest.get("gypfile") is True and "install" not in out and "preinstall" not in out:
        out["install"] = "node-gyp rebuild"  # what npm runs for a package with binding.gyp
    return out


def _dependencies(
    manifest: Mapping[str, Any], interned: _Interned
) -> tuple[DeclaredDependency, ...]:
    seen: dict[str, DeclaredDependency] = {}
    for key, kind in _DEP_KINDS:
        deps = manifest.get(key)
        if not isinstance(deps, dict):
            continue
        for dep, spec in deps.items():
            if not isinstance(dep, str):
                continue
            # npm copies optionalDependencies into dependencies: the optional kind wins
            seen[dep] = interned.dependency(dep, spec if isinstance(spec, str) else str(spec), kind)
    bundled = manifest.get("bundleDependencies", manifest.get("bundledDependencies"))
    if bundled is True:
        bundled = [d.name for d in seen.values() if d.kind == "prod"]
    if isinstance(bundled, list):
        for dep in bundled:
            if isinstance(dep, str):
                spec = seen[dep].spec if dep in seen else ""
                seen[dep] = DeclaredDependency(dep, spec, "bundled")
    return tuple(seen.values())


def _deprecated(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    return "deprecated" if value is True else None


def _funding(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str) and url and url not in out:
            out.append(url)
    return tuple(out)


def semver_key(version: str) -> tuple[Any, ...]:
    """A sort key in SemVer order (node-semver, loose); unparseable versions sort last. Plain
    ``MAJOR.MINOR.PATCH`` (most versions) is read directly: node-semver parses it to the same
    key, twenty times slower."""
    plain = plain_semver(version)
    if plain is not None:
        return (0, *plain, 1, ())
    import nodesemver  # only here: importing it costs 25 ms, and most versions are plain

    try:
        v = nodesemver.make_semver(version, loose=True)
    except (ValueError, TypeError):
        return (1, version)
    pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in v.prerelease)
    return (0, v.major, v.minor, v.patch, 0 if pre else 1, pre)


class _Interned:
    """The custodians and declared dependencies of one packument, each made once: the same
    names recur in every version (publishers, maintainer lists, dependency ranges), and every
    release then shares the same objects."""

    def __init__(self) -> None:
        self._users: dict[str, Custodian | None] = {}
        self._trusted: dict[str, Custodian] = {}
        self._lists: dict[tuple[str, ...], frozenset[Custodian]] = {}
        self._dependencies: dict[tuple[str, str, str], DeclaredDependency] = {}

    def dependency(self, name: str, spec: str, kind: str) -> DeclaredDependency:
        key = (name, spec, kind)
        found = self._dependencies.get(key)
        if found is None:
            found = self._dependencies[key] = DeclaredDependency(name, spec, kind)
        return found

    def publisher(self, npm_user: Any) -> Custodian | None:
        """``_npmUser``: an account, or the CI system of a trusted publish."""
        if isinstance(npm_user, dict) and "trustedPublisher" in npm_user:
            found = trusted_publisher(npm_user)
            if found is not None:
                return self._trusted.setdefault(found.id, found)
        return self.user(npm_user)

    def user(self, value: Any) -> Custodian | None:
        text = value.get("name") if isinstance(value, dict) else value
        if not isinstance(text, str):
            return None
        if text not in self._users:
            self._users[text] = _user(text)
        return self._users[text]

    def maintainers(self, value: Any) -> frozenset[Custodian] | None:
        if isinstance(value, str | dict):
            value = [value]
        if not isinstance(value, list):
            return None
        names: list[str] = []
        for person in value:
            text = person.get("name") if isinstance(person, dict) else person
            if not isinstance(text, str):
                return _maintainers(value)
            names.append(text)
        key = tuple(names)
        found = self._lists.get(key)
        if found is None:
            found = frozenset(c for c in map(self.user, key) if c is not None)
            self._lists[key] = found
        return found


def _release(
    name: str,
    version: str,
    manifest: Mapping[str, Any],
    published_at: datetime | None,
    interned: _Interned,
) -> Release:
    npm_user = manifest.get("_npmUser")
    publisher = interned.publisher(npm_user)
    approver_raw = npm_user.get("approver") if isinstance(npm_user, dict) else None
    approver = interned.user(approver_raw) or interned.user(manifest.get("approver"))
    dist = manifest.get("dist")
    return Release(
        ecosystem=Ecosystem.NPM,
        name=name,
        version=version,
        published_at=published_at,
        publisher=publisher,
        approver=approver,
        maintainers=interned.maintainers(manifest.get("maintainers")),
        provenance=_provenance(npm_user, dist),
        artifacts=_artifacts(dist, publisher, published_at),
        dependencies=_dependencies(manifest, interned),
        install_scripts=_scripts(manifest),
        repository=normalise_repository(manifest.get("repository")),
        git_head=_str(manifest.get("gitHead")),
        deprecated=_deprecated(manifest.get("deprecated")),
    )


def parse_packument_body(
    body: bytes, name: str, registry: str, fetched_at: datetime
) -> PackageHistory:
    """``parse_packument`` of a raw response body. Raises ``BadDocument`` naming the package."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"invalid packument for {name}: {exc}") from None
    try:
        return parse_packument(doc, name=name, registry=registry, fetched_at=fetched_at)
    except BadDocument as exc:
        raise BadDocument(f"invalid packument for {name}: {exc}") from None


def parse_packument_blob(body: bytes, name: str, registry: str, fetched_at: datetime) -> bytes:
    """``parse_packument_body`` msgpack-encoded (``derived.encode_history``): what a parser
    worker process sends back (``parsing.ParsePool``)."""
    return encode_history(parse_packument_body(body, name, registry, fetched_at))


def parse_packument(doc: Any, *, name: str, registry: str, fetched_at: datetime) -> PackageHistory:
    """Raises ``BadDocument`` when the document is not a packument at all."""
    if not isinstance(doc, dict):
        raise BadDocument(f"expected a JSON object, got {type(doc).__name__}")
    versions = doc.get("versions")
    if versions is None:
        versions = {}  # a fully unpublished package keeps only "time"
    if not isinstance(versions, dict):
        raise BadDocument(f"'versions' is {type(versions).__name__}, not an object")
    times = doc.get("time")
    if not isinstance(times, dict):
        times = {}
    trust_times = "created" in times or "modified" in times or not versions
    stamped: dict[str, datetime | None] = {}  # every version's time, parsed once
    if trust_times:
        stamped = {v: parse_time(t) for v, t in times.items() if v not in _TIME_META_KEYS}

    interned = _Interned()
    releases: list[Release] = []
    for version, manifest in versions.items():
        when = None
        if trust_times:
            when = stamped[version] if version in stamped else parse_time(times.get(version))
        releases.append(
            _release(name, version, manifest if isinstance(manifest, dict) else {}, when, interned)
        )
    gone = dict(stamped)
    unpublished = times.get("unpublished")
    if isinstance(unpublished, dict) and isinstance(unpublished.get("versions"), list):
        for v in unpublished["versions"]:
            if isinstance(v, str):
                gone.setdefault(v, None)
    for version, when in gone.items():
        if version not in versions:
            releases.append(
                Release(Ecosystem.NPM, name, version, published_at=when, unpublished=True)
            )
    ordered = order_releases(releases, semver_key)

    tags_raw = doc.get("dist-tags")
    dist_tags = (
        {k: v for k, v in tags_raw.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(tags_raw, dict)
        else {}
    )
    latest_version = dist_tags.get("latest")
    live = [r for r in ordered if not r.unpublished]
    latest = next((r for r in live if r.version == latest_version), live[-1] if live else None)
    latest_manifest = versions.get(latest.version) if latest is not None else None
    current = interned.maintainers(doc.get("maintainers"))
    owners = (
        tuple(OwnerRole(c, "maintainer") for c in sorted(current, key=lambda c: c.id))
        if current is not None
        else None
    )
    return PackageHistory(
        ecosystem=Ecosystem.NPM,
        name=name,
        registry=registry,
        fetched_at=fetched_at,
        releases=ordered,
        current_owners=owners,
        dist_tags=dist_tags,
        deprecated=latest.deprecated if latest is not None else None,
        funding=_funding(latest_manifest.get("funding"))
        if isinstance(latest_manifest, dict)
        else (),
        repository=normalise_repository(doc.get("repository"))
        or (latest.repository if latest is not None else None),
        description=_str(doc.get("description")),
    )
