"""The JSON documents beside the simple API: Warehouse's project JSON and devpi's own JSON.

Warehouse ``GET <root>/pypi/<name>/json``::

    {"info": {"project_urls": {...}, "home_page": ...},
     "releases": {"1.0": [{"filename", "url", "digests": {"sha256", ...}, "size",
                           "upload_time_iso_8601", "yanked", "yanked_reason", "packagetype"}]},
     "ownership": {"organization": "pypa" | null, "roles": [{"role": "Owner", "user": "..."}]}}

devpi-server 6.20 (seen on a live server; it sends ``X-Devpi-Api-Version``,
``X-Devpi-Server-Version``, ``X-Devpi-Serial``, ``X-Devpi-Uuid`` headers on every answer).
Its simple index lives at ``<server>/<user>/<index>/+simple/`` with relative file URLs
(``../../+f/…``), no upload times, no PEP 658 metadata. With ``Accept: application/json``:

- ``GET <server>/<user>/<index>/<name>`` -> ``{"type": "projectconfig", "result": {"1.0":
  {"name", "version", ..., "+links": [{"rel": "releasefile", "href": absolute URL, "hashes":
  {"sha256"}, "log": [{"what": "upload", "who": "alice", "when": [2026, 11, 22, 2, 23, 33],
  "dst": "alice/dev"}]}]}}}`` (``when`` is UTC; pushes log ``"what": "push"`` with ``src``).
- ``GET <server>/<user>/<index>`` -> ``{"type": "indexconfig", "result": {"acl_upload":
  ["alice", "bob"], "bases": [...], "volatile": true, ...}}``; ``:ANONYMOUS:`` and
  ``:AUTHENTICATED:`` are special ACL entries, kept as ``pypi:group/<entry>``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from custody.model import Custodian, OwnerRole
from custody.registries.documents import BadDocument
from custody.registries.http import Response
from custody.registries.pypi_simple import normalise_version
from custody.registries.repo_urls import normalise_repository
from custody.registries.times import parse_time
from custody.registries.urls import parsed_url

_REPO_KEYS = ("source", "sourcecode", "repository", "code", "github", "gitlab", "git", "repo")
_FUNDING = re.compile(r"fund|sponsor|donat|tidelift|opencollective|patreon|kofi|liberapay")
_FORGES = frozenset({"github.com", "gitlab.com", "bitbucket.org", "codeberg.org"})


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a JSON document adds to one file of the simple page."""

    version: str
    uploaded_at: datetime | None = None
    uploader: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    size: int | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectFacts:
    files: dict[str, FileFacts] = field(default_factory=dict)  # by filename
    versions: frozenset[str] = frozenset()
    owners: tuple[OwnerRole, ...] | None = None
    organization: str | None = None
    repository: str | None = None
    funding: tuple[str, ...] = ()


def load_json_object(resp: Response, what: str) -> dict[str, Any] | None:
    """The JSON object in ``resp``; None when the server answered something else than JSON (an
    index without this API); ``BadDocument`` (retried) for broken JSON or JSON that is not an
    object, as the npm reader treats a packument."""
    ctype = (resp.content_type or "").split(";", 1)[0].strip().lower()
    if ctype and not ctype.endswith("json"):
        return None
    try:
        doc = orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"invalid {what}: {exc}") from None
    if not isinstance(doc, dict):
        raise BadDocument(f"invalid {what}: not a JSON object")
    return doc


def _key(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def project_links(urls: Any, home_page: Any) -> tuple[str | None, tuple[str, ...]]:
    """``(repository, funding URLs)`` from ``project_urls`` (and a forge home page)."""
    items = (
        [(k, v) for k, v in urls.items() if isinstance(v, str)] if isinstance(urls, dict) else []
    )
    by_key = {_key(k): v for k, v in items}
    repository = None
    for wanted in _REPO_KEYS:
        if wanted in by_key:
            repository = normalise_repository(by_key[wanted])
            if repository:
                break
    if repository is None:
        for candidate in [by_key.get("homepage"), home_page]:
            parts = parsed_url(candidate) if isinstance(candidate, str) else None
            if parts is not None and (parts.hostname or "") in _FORGES:
                repository = normalise_repository(candidate)
                if repository:
                    break
    funding = tuple(dict.fromkeys(v for k, v in items if _FUNDING.search(_key(k))))
    return repository, funding


def parse_warehouse(doc: dict[str, Any]) -> ProjectFacts:
    files: dict[str, FileFacts] = {}
    versions: set[str] = set()
    releases = doc.get("releases")
    for version, entries in (releases if isinstance(releases, dict) else {}).items():
        if not isinstance(version, str):
            continue
        norm = normalise_version(version)
        versions.add(norm)
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
                continue
            digests = entry.get("digests")
            reason = entry.get("yanked_reason")
            size = entry.get("size")
            files[entry["filename"]] = FileFacts(
                version=norm,
                uploaded_at=parse_time(entry.get("upload_time_iso_8601"))
                or parse_time(entry.get("upload_time")),
                yanked=entry.get("yanked") is True,
                yanked_reason=reason if isinstance(reason, str) and reason else None,
                digests={
                    k: v.lower()
                    for k, v in (digests if isinstance(digests, dict) else {}).items()
                    if isinstance(v, str) and v and k != "md5"
                },
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                url=_file_url(entry.get("url")),
            )
    info = doc.get("info")
    if not isinstance(info, dict):
        info = {}
    repository, funding = project_links(info.get("project_urls"), info.get("home_page"))
    organization, owners = _ownership(doc.get("ownership"))
    return ProjectFacts(
        files=files,
        versions=frozenset(versions),
        owners=owners,
        organization=organization,
        repository=repository,
        funding=funding,
    )


def _file_url(value: Any) -> str | None:
    return value if isinstance(value, str) and parsed_url(value) is not None else None


def _ownership(ownership: Any) -> tuple[str | None, tuple[OwnerRole, ...] | None]:
    """``(organization, owner roles)``; the roles are unknown (None) without an ``ownership``
    object or when its ``roles`` is not a list: a wrong shape never reads as "no owners"."""
    if not isinstance(ownership, dict):
        return None, None
    org = ownership.get("organization")
    organization = org if isinstance(org, str) and org else None
    listed = ownership.get("roles", [])
    if not isinstance(listed, list | None):
        return organization, None
    roles: list[OwnerRole] = []
    if organization is not None:
        roles.append(OwnerRole(Custodian(f"pypi:org/{organization}"), "organization"))
    for role in listed or ():
        if isinstance(role, dict) and isinstance(role.get("user"), str):
            name = str(role.get("role") or "maintainer")
            roles.append(OwnerRole(Custodian.pypi_user(role["user"]), name))
    return organization, tuple(roles)


def _uploader(log: Any) -> tuple[str | None, datetime | None]:
    """``(who, when)``: who last put the file there (upload, overwrite or push), when it first
    arrived."""
    who: str | None = None
    first: datetime | None = None
    for entry in log if isinstance(log, list) else ():
        if not isinstance(entry, dict) or entry.get("what") not in ("upload", "overwrite", "push"):
            continue
        if isinstance(entry.get("who"), str) and entry["who"]:
            who = entry["who"]
        when = parse_time(entry.get("when"))
        if when is not None and (first is None or when < first):
            first = when
    return who, first


def parse_devpi_project(doc: dict[str, Any]) -> ProjectFacts:
    result = doc.get("result")
    if not isinstance(result, dict):
        raise BadDocument("devpi project JSON without a 'result' object")
    files: dict[str, FileFacts] = {}
    versions: set[str] = set()
    for version, data in result.items():
        if not isinstance(version, str) or not isinstance(data, dict):
            continue
        norm = normalise_version(version)
        versions.add(norm)
        links = data.get("+links")
        for link in links if isinstance(links, list) else ():
            if not isinstance(link, dict) or link.get("rel") != "releasefile":
                continue
            href = link.get("href")
            parts = parsed_url(href) if isinstance(href, str) else None
            if parts is None:
                continue
            who, when = _uploader(link.get("log"))
            hashes = link.get("hashes")
            filename = parts.path.rsplit("/", 1)[-1]
            files[filename] = FileFacts(
                version=norm,
                uploaded_at=when,
                uploader=who,
                digests={
                    k: v.lower()
                    for k, v in (hashes if isinstance(hashes, dict) else {}).items()
                    if isinstance(v, str)
                },
                url=href,
            )
    return ProjectFacts(files=files, versions=frozenset(versions))


def parse_devpi_acl(doc: dict[str, Any], index_owner: str) -> tuple[OwnerRole, ...] | None:
    """Who may upload to the index; None (unknown) when ``acl_upload`` is not a list."""
    result = doc.get("result")
    if not isinstance(result, dict):
        raise BadDocument("devpi index JSON without a 'result' object")
    acl = result.get("acl_upload", [])
    if not isinstance(acl, list | None):
        return None
    roles = [OwnerRole(Custodian.pypi_user(index_owner), "index-owner")]
    for name in acl or ():
        if isinstance(name, str) and name:
            who = Custodian(f"pypi:group/{name}") if name.startswith(":") else None
            roles.append(OwnerRole(who or Custodian.pypi_user(name), "acl_upload"))
    return tuple(roles)
