"""The PyPI simple API as the proxy serves it: the upstream project page parsed with every
attribute a resolver uses (hashes, ``requires-python``, PEP 592 yanks, PEP 658/714 core metadata,
sizes and upload times), filtered, and rendered again as PEP 503 HTML or PEP 691 JSON.

File URLs are rewritten to the proxy (``<prefix>/files/<project>/<filename>``, with the hash
fragment in HTML), after resolving relative upstream URLs against the page's URL. PEP 740
provenance links are left out (they point at the upstream; no client uses them yet)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import orjson

from custody.registries.documents import BadDocument
from custody.registries.pypi_simple import file_version, load_simple_json, read_anchors

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
_JSON_TYPES = (JSON_V1, "application/vnd.pypi.simple.latest+json")
_HTML_TYPES = (HTML_V1, "application/vnd.pypi.simple.latest+html", TEXT_HTML)


@dataclass(frozen=True, slots=True)
class SimpleFile:
    filename: str
    url: str  # absolute upstream URL, without fragment
    version: str | None  # from the file name (PEP 440 normalised), None when unrecognisable
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool | str = False  # True, or the reason
    core_metadata: bool | Mapping[str, str] = False  # True, or its hashes
    size: int | None = None
    upload_time: str | None = None


@dataclass(frozen=True, slots=True)
class SimpleProject:
    name: str
    files: tuple[SimpleFile, ...]
    api_version: str = "1.0"
    status: Mapping[str, Any] | None = None  # PEP 792 project-status, as the upstream said

    def file(self, filename: str) -> SimpleFile | None:
        for f in self.files:
            if f.filename == filename:
                return f
        return None


def _split_hash(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    hashes: dict[str, str] = {}
    alg, sep, value = parts.fragment.partition("=")
    if sep and alg.isalnum() and value and all(c in "0123456789abcdefABCDEF" for c in value):
        hashes[alg.lower()] = value.lower()
    return urlunsplit(parts._replace(fragment="")), hashes


def _metadata_value(value: Any) -> bool | dict[str, str]:
    """PEP 658 ``data-core-metadata`` / PEP 691 ``core-metadata``: true, false or hashes."""
    if isinstance(value, dict):
        out = {str(k).lower(): str(v).lower() for k, v in value.items() if isinstance(v, str)}
        return out or True
    if isinstance(value, str):
        if value.lower() in ("", "true"):
            return True
        if value.lower() == "false":
            return False
        alg, sep, digest = value.partition("=")
        return {alg.lower(): digest.lower()} if sep else True
    return bool(value)


def _make(project: str, base: str, filename: str, href: str, **kw: Any) -> SimpleFile:
    url, fragment = _split_hash(urljoin(base, href))
    hashes = {**fragment, **kw.pop("hashes", {})}
    version, _kind = file_version(filename, project)
    return SimpleFile(filename=filename, url=url, version=version, hashes=hashes, **kw)


def _parse_json(body: bytes, project: str, page_url: str) -> SimpleProject:
    doc = load_simple_json(body, project)
    files = []
    for entry in doc.get("files", []):
        if not isinstance(entry, dict):
            continue
        filename, href = entry.get("filename"), entry.get("url")
        if not isinstance(filename, str) or not isinstance(href, str):
            continue
        raw_hashes = entry.get("hashes")
        hashes = (
            {k.lower(): v.lower() for k, v in raw_hashes.items() if isinstance(v, str)}
            if isinstance(raw_hashes, dict)
            else {}
        )
        yanked = entry.get("yanked", False)
        requires = entry.get("requires-python")
        size = entry.get("size")
        upload = entry.get("upload-time")
        files.append(
            _make(
                project,
                page_url,
                filename,
                href,
                hashes=hashes,
                requires_python=requires if isinstance(requires, str) and requires else None,
                yanked=yanked if isinstance(yanked, str) and yanked else yanked is True,
                core_metadata=_metadata_value(
                    entry.get("core-metadata", entry.get("data-dist-info-metadata", False))
                ),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                upload_time=upload if isinstance(upload, str) else None,
            )
        )
    meta = doc.get("meta")
    version = meta.get("api-version") if isinstance(meta, dict) else None
    status = doc.get("project-status")
    return SimpleProject(
        name=project,
        files=tuple(files),
        api_version=version if isinstance(version, str) else "1.0",
        status=status if isinstance(status, dict) else None,
    )


def _parse_html(body: bytes, project: str, page_url: str) -> SimpleProject:
    parser = read_anchors(body, project)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        filename = text or urlsplit(href).path.rsplit("/", 1)[-1]
        yanked: bool | str = False
        if "data-yanked" in attrs:
            yanked = attrs["data-yanked"] or True
        metadata: bool | dict[str, str] = False
        for key in ("data-core-metadata", "data-dist-info-metadata"):
            if key in attrs:
                metadata = _metadata_value(attrs[key] or "true")
                break
        files.append(
            _make(
                project,
                base,
                filename,
                href,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=yanked,
                core_metadata=metadata,
            )
        )
    status = parser.meta.get("pypi:project-status")
    reason = parser.meta.get("pypi:project-status-reason")
    return SimpleProject(
        name=project,
        files=tuple(files),
        api_version=parser.meta.get("pypi:repository-version", "1.0"),
        status={"status": status, **({"reason": reason} if reason else {})} if status else None,
    )


def parse_project(
    body: bytes, content_type: str | None, project: str, page_url: str
) -> SimpleProject:
    """Parse an upstream project page (JSON or HTML, whichever it sent)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype.endswith("json") or body.lstrip()[:1] == b"{":
        return _parse_json(body, project, page_url)
    return _parse_html(body, project, page_url)


def parse_index(body: bytes, content_type: str | None) -> list[str]:
    """Project names from an upstream ``/simple/`` page."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype.endswith("json") or body.lstrip()[:1] == b"{":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadDocument(f"invalid simple index: {exc}") from None
        projects = doc.get("projects") if isinstance(doc, dict) else None
        if not isinstance(projects, list):
            raise BadDocument("invalid simple index: no projects list")
        return [
            p["name"] for p in projects if isinstance(p, dict) and isinstance(p.get("name"), str)
        ]
    parser = read_anchors(body, "the simple index")
    return [text for _attrs, text in parser.anchors if text]


# -- content negotiation -----------------------------------------------------------------------


def choose_format(accept: str | None) -> str | None:
    """PEP 691 negotiation: the media type to answer with, or None (406). No Accept, or
    ``*/*``, gets ``text/html`` (what every client understands)."""
    if not accept:
        return TEXT_HTML
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if q <= 0:
            continue
        if media in _JSON_TYPES:
            chosen = JSON_V1
        elif media in _HTML_TYPES:
            chosen = HTML_V1 if media != TEXT_HTML else TEXT_HTML
        elif media in ("*/*", "application/*", "text/*"):
            chosen = TEXT_HTML
        else:
            continue
        candidate = (q, -position, chosen)
        if best is None or candidate > best:
            best = candidate
    return best[2] if best is not None else None


# -- rendering ---------------------------------------------------------------------------------


def file_path(prefix: str, project: str, filename: str) -> str:
    return f"{prefix}/files/{quote(project, safe='')}/{quote(filename, safe='')}"


def _metadata_attr(value: bool | Mapping[str, str]) -> str | None:
    if value is False:
        return None
    if isinstance(value, Mapping) and value:
        alg = "sha256" if "sha256" in value else sorted(value)[0]
        return f"{alg}={value[alg]}"
    return "true"


def render_html(project: SimpleProject, files: Iterable[SimpleFile], prefix: str) -> bytes:
    name = html.escape(project.name)
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        '<meta name="pypi:repository-version" content="1.1">',
    ]
    if project.status and isinstance(project.status.get("status"), str):
        lines.append(
            f'<meta name="pypi:project-status" content="{html.escape(project.status["status"])}">'
        )
        if isinstance(project.status.get("reason"), str):
            reason = html.escape(project.status["reason"])
            lines.append(f'<meta name="pypi:project-status-reason" content="{reason}">')
    lines += [f"<title>Links for {name}</title>", "</head>", "<body>", f"<h1>Links for {name}</h1>"]
    for f in files:
        href = file_path(prefix, project.name, f.filename)
        alg = "sha256" if "sha256" in f.hashes else (sorted(f.hashes)[0] if f.hashes else None)
        if alg is not None:
            href += f"#{alg}={f.hashes[alg]}"
        attrs = [f'href="{html.escape(href)}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
        meta = _metadata_attr(f.core_metadata)
        if meta is not None:
            attrs.append(f'data-dist-info-metadata="{html.escape(meta)}"')
            attrs.append(f'data-core-metadata="{html.escape(meta)}"')
        if f.yanked is not False:
            reason = f.yanked if isinstance(f.yanked, str) else ""
            attrs.append(f'data-yanked="{html.escape(reason)}"')
        lines.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_json(
    project: SimpleProject, files: Iterable[SimpleFile], versions: Iterable[str], prefix: str
) -> bytes:
    kept = list(files)
    full = all(f.size is not None for f in kept)
    out_files: list[dict[str, Any]] = []
    for f in kept:
        entry: dict[str, Any] = {
            "filename": f.filename,
            "url": file_path(prefix, project.name, f.filename),
            "hashes": dict(f.hashes),
        }
        if f.requires_python:
            entry["requires-python"] = f.requires_python
        meta: bool | dict[str, str] = (
            dict(f.core_metadata) if isinstance(f.core_metadata, Mapping) else f.core_metadata
        )
        entry["core-metadata"] = meta
        entry["data-dist-info-metadata"] = meta
        entry["yanked"] = f.yanked
        if f.size is not None:
            entry["size"] = f.size
        if f.upload_time is not None:
            entry["upload-time"] = f.upload_time
        out_files.append(entry)
    doc: dict[str, Any] = {
        "meta": {"api-version": "1.1" if full else "1.0"},
        "name": project.name,
        "files": out_files,
    }
    if full:
        doc["versions"] = sorted(set(versions))
    if project.status:
        doc["project-status"] = dict(project.status)
    return orjson.dumps(doc)


def render_index_html(names: Iterable[str], prefix: str) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        '<meta name="pypi:repository-version" content="1.1">',
        "<title>Simple index</title>",
        "</head>",
        "<body>",
    ]
    for name in names:
        href = html.escape(f"{prefix}/simple/{quote(name, safe='')}/")
        lines.append(f'<a href="{href}">{html.escape(name)}</a><br/>')
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_index_json(names: Iterable[str]) -> bytes:
    return orjson.dumps({"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]})
