"""Parse a PEP 503/691 project page (JSON, or HTML when that is all the index serves).

Per file: absolute URL (relative ``href``s resolve against the page URL or ``<base href>``),
hashes (JSON ``hashes`` or the ``#sha256=`` fragment), ``upload-time`` (PEP 700), ``yanked``
(PEP 592; a string is the reason), ``core-metadata`` / ``data-dist-info-metadata`` (PEP 658/714),
``provenance`` (PEP 740), ``size``. The version comes from the file name."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from custody.registries.documents import BadDocument
from custody.registries.times import parse_time
from custody.registries.urls import join_url, parsed_url

SIMPLE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.1"
)
_LEGACY_EXTENSIONS = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz", ".tar", ".zip")


@dataclass(frozen=True, slots=True)
class SimpleFile:
    filename: str
    url: str
    version: str | None
    kind: str  # "wheel", "sdist", "other"
    hashes: dict[str, str] = field(default_factory=dict)
    upload_time: datetime | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    has_metadata: bool = False
    metadata_hashes: dict[str, str] = field(default_factory=dict)  # of the PEP 658 file
    provenance_url: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class SimplePage:
    files: tuple[SimpleFile, ...]
    versions: tuple[str, ...] = ()  # PEP 700 "versions", normalised
    status: str | None = None  # PEP 792 project status ("archived", "deprecated", ...)
    status_reason: str | None = None


def normalise_version(text: str) -> str:
    try:
        return str(Version(text))
    except InvalidVersion:
        return text


def file_version(filename: str, project: str) -> tuple[str | None, str]:
    """``(version, kind)`` from a distribution file name; version None when unrecognisable."""
    if filename.endswith(".whl"):
        try:
            _name, version, _build, _tags = parse_wheel_filename(filename)
            return str(version), "wheel"
        except (InvalidWheelFilename, InvalidVersion):
            parts = filename[:-4].split("-")
            return (normalise_version(parts[1]) if len(parts) >= 5 else None), "wheel"
    if filename.endswith((".tar.gz", ".zip")):
        try:
            return str(parse_sdist_filename(filename)[1]), "sdist"
        except (InvalidSdistFilename, InvalidVersion):
            pass
    stem = filename
    kind = "other"
    for ext in (*_LEGACY_EXTENSIONS, ".egg", ".exe", ".msi", ".rpm", ".dmg"):
        if filename.endswith(ext):
            stem = filename[: -len(ext)]
            kind = "sdist" if ext in _LEGACY_EXTENSIONS else "other"
            break
    target = canonicalize_name(project)
    for match in re.finditer("-", stem):
        if canonicalize_name(stem[: match.start()]) == target:
            rest = stem[match.end() :]
            if kind == "other":  # name-1.0-py2.7(-platform).egg / name-1.0.win32.exe
                rest = re.split(r"-py\d|\.(?:win|linux|macosx)", rest, maxsplit=1)[0]
            return (normalise_version(rest) if rest else None), kind
    return None, kind


def _hash_pair(text: str) -> dict[str, str]:
    """``{"sha256": "<hex>"}`` from ``sha256=<hex>`` (a URL fragment, an HTML data attribute)."""
    alg, sep, value = text.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9_]+", alg) and re.fullmatch(r"[0-9a-fA-F]+", value):
        return {alg.lower(): value.lower()}
    return {}


def _split_fragment(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(fragment="")), _hash_pair(parts.fragment)


def _metadata_hashes(value: Any) -> dict[str, str]:
    """The hashes of the PEP 658 file: JSON gives a dict (or ``true``), HTML ``sha256=<hex>``."""
    if isinstance(value, dict):
        return {k.lower(): v.lower() for k, v in value.items() if isinstance(v, str) and v}
    return _hash_pair(value) if isinstance(value, str) else {}


def _make_file(
    project: str,
    base_url: str,
    filename: str,
    href: str,
    *,
    hashes: dict[str, str],
    upload_time: Any = None,
    yanked: Any = False,
    metadata: Any = None,
    provenance: Any = None,
    size: Any = None,
) -> SimpleFile | None:
    """The file, or None when its URL cannot be parsed (it could never be fetched)."""
    joined = join_url(base_url, href)
    if joined is None:
        return None
    url, fragment_hashes = _split_fragment(joined)
    version, kind = file_version(filename, project)
    provenance_url = join_url(base_url, provenance) if isinstance(provenance, str) else None
    return SimpleFile(
        filename=filename,
        url=url,
        version=version,
        kind=kind,
        hashes={**fragment_hashes, **{k.lower(): v.lower() for k, v in hashes.items()}},
        upload_time=parse_time(upload_time),
        yanked=bool(yanked is True or (isinstance(yanked, str))),
        yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
        has_metadata=bool(metadata) and metadata != "false",
        metadata_hashes=_metadata_hashes(metadata),
        provenance_url=provenance_url,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def load_simple_json(body: bytes, project: str) -> dict[str, Any]:
    """A PEP 691 project page as a dict with a ``files`` list; ``BadDocument`` otherwise."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"invalid simple API page for {project}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files", []), list):
        raise BadDocument(f"invalid simple API page for {project}: no 'files' list")
    return doc


def parse_simple_json(body: bytes, project: str, page_url: str) -> SimplePage:
    doc = load_simple_json(body, project)
    files: list[SimpleFile] = []
    for entry in doc.get("files", []):
        if not isinstance(entry, dict):
            continue
        filename, href = entry.get("filename"), entry.get("url")
        if not isinstance(filename, str) or not isinstance(href, str):
            continue
        hashes = entry.get("hashes")
        found = _make_file(
            project,
            page_url,
            filename,
            href,
            hashes={
                k: v
                for k, v in (hashes if isinstance(hashes, dict) else {}).items()
                if isinstance(k, str) and isinstance(v, str)
            },
            upload_time=entry.get("upload-time"),
            yanked=entry.get("yanked", False),
            metadata=entry.get("core-metadata", entry.get("data-dist-info-metadata")),
            provenance=entry.get("provenance"),
            size=entry.get("size"),
        )
        if found is not None:
            files.append(found)
    versions = doc.get("versions")
    status = doc.get("project-status")
    if not isinstance(status, dict):
        status = {}
    return SimplePage(
        files=tuple(files),
        versions=tuple(normalise_version(v) for v in versions if isinstance(v, str))
        if isinstance(versions, list)
        else (),
        status=_text(status.get("status")),
        status_reason=_text(status.get("reason")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class AnchorParser(HTMLParser):
    """The anchors (attributes and text), ``<base href>`` and ``<meta>`` of a simple page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "meta":
            values = dict(attrs)
            if values.get("name") and values.get("content") is not None:
                self.meta[str(values["name"])] = str(values["content"])
        elif tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def read_anchors(body: bytes, project: str) -> AnchorParser:
    """Parse a simple page's HTML; ``BadDocument`` when it is not HTML at all."""
    parser = AnchorParser()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except Exception as exc:  # html.parser is lenient; anything else is garbage
        raise BadDocument(f"invalid simple API page for {project}: {exc}") from None
    return parser


def parse_simple_html(body: bytes, project: str, page_url: str) -> SimplePage:
    parser = read_anchors(body, project)
    base = (join_url(page_url, parser.base) if parser.base else None) or page_url
    files: list[SimpleFile] = []
    for attrs, text in parser.anchors:
        href = attrs.get("href")
        parts = parsed_url(href) if href else None
        if not href or parts is None:
            continue
        filename = text or parts.path.rsplit("/", 1)[-1]
        yanked: Any = False
        if "data-yanked" in attrs:
            yanked = attrs["data-yanked"] or True
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        if "data-core-metadata" in attrs or "data-dist-info-metadata" in attrs:
            metadata = metadata or "true"
        found = _make_file(
            project,
            base,
            filename,
            href,
            hashes={},
            yanked=yanked,
            metadata=metadata,
            provenance=attrs.get("data-provenance"),
        )
        if found is not None:
            files.append(found)
    status = parser.meta.get("pypi:project-status")
    return SimplePage(
        files=tuple(files),
        status=status,
        status_reason=parser.meta.get("pypi:project-status-reason"),
    )


def parse_simple(body: bytes, content_type: str | None, project: str, page_url: str) -> SimplePage:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype.endswith("json"):
        return parse_simple_json(body, project, page_url)
    if ctype in ("", "text/html", "application/vnd.pypi.simple.v1+html", "application/xhtml+xml"):
        if body.lstrip()[:1] in (b"{", b"["):  # an index that mislabels its JSON
            return parse_simple_json(body, project, page_url)
        return parse_simple_html(body, project, page_url)
    raise BadDocument(f"unexpected content type {ctype!r} for the {project} simple page")
