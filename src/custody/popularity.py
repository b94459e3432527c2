"""Public popularity of a package (downloads, dependents): the ecosystem half of blast radius.

Endpoints are URL templates from the user's configuration, never built in:

- ``CUSTODY_POPULARITY_NPM_URL``, e.g. ``https://stats.example/downloads/point/last-week/{package}``
- ``CUSTODY_POPULARITY_PYPI_URL``, e.g. ``https://stats.example/api/packages/{package}/recent``

``{package}`` is replaced by the package name (npm: as is, ``@scope/name`` kept readable; PyPI:
PEP 503 normalised), URL-quoted. Unset means "no popularity": blast radius falls back to fan-in
within your own projects, and every report says so.

The answer's shape is recognised, not configured (docs/fragility.md lists them with examples):

- npm downloads API, point: ``{"downloads": 31, "start": "2024-05-01", "end": "2024-05-07",
  "package": "x"}`` (scaled to a week from its ``start``..``end`` period);
- npm downloads API, range: ``{"downloads": [{"downloads": 4, "day": "2024-05-01"}, ...],
  "start": ..., "end": ..., "package": "x"}`` (the last seven days are summed);
- pypistats ``recent``: ``{"data": {"last_day": 1, "last_week": 7, "last_month": 30},
  "package": "x", "type": "recent_downloads"}``;
- pypistats ``overall``: ``{"data": [{"category": "without_mirrors", "date": "2024-05-01",
  "downloads": 4}, ...], "package": "x", "type": "overall_downloads"}`` (last seven dates of
  ``without_mirrors``, else ``with_mirrors``);
- a project document with ``dependents_count`` (and ``dependent_repos_count``), as
  dependency-graph services publish, alone or beside any of the above.

Responses go through the ledger's HTTP cache (default: reused for a day without asking)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from packaging.utils import canonicalize_name

from custody.errors import PackageNotFound, RegistryUnavailable
from custody.model import Ecosystem
from custody.registries.base import ResponseCache
from custody.registries.documents import BadDocument
from custody.registries.http import HttpOptions, RegistryClient, Response

PackageId = tuple[Ecosystem, str]

ENV_URLS: Mapping[Ecosystem, str] = {
    Ecosystem.NPM: "CUSTODY_POPULARITY_NPM_URL",
    Ecosystem.PYPI: "CUSTODY_POPULARITY_PYPI_URL",
}
ENV_MAX_AGE = "CUSTODY_POPULARITY_MAX_AGE"
DEFAULT_MAX_AGE = 86400.0  # download counts move slowly: reuse a cached answer for a day


@dataclass(frozen=True, slots=True)
class Popularity:
    """What a popularity endpoint says about one package."""

    weekly_downloads: int | None
    """Downloads over the last seven days (scaled from the period the endpoint reports)."""
    dependents: int | None = None
    """Packages depending on it, where the endpoint tells."""
    source: str = ""
    """The endpoint's origin, for reports (no path, no credentials)."""


@dataclass(frozen=True, slots=True)
class PopularitySettings:
    """Endpoint templates per ecosystem (None: not configured) and the cache lifetime."""

    urls: Mapping[Ecosystem, str | None] = field(default_factory=dict)
    max_age: float = DEFAULT_MAX_AGE
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, timeout: float = 10.0) -> PopularitySettings:
        urls = {eco: (env.get(var) or None) for eco, var in ENV_URLS.items()}
        raw_age = env.get(ENV_MAX_AGE)
        try:
            max_age = float(raw_age) if raw_age else DEFAULT_MAX_AGE
        except ValueError:
            max_age = DEFAULT_MAX_AGE
        return cls(urls=urls, max_age=max_age, timeout=timeout)

    def template(self, ecosystem: Ecosystem) -> str | None:
        return self.urls.get(ecosystem)

    def url_for(self, ecosystem: Ecosystem, name: str) -> str | None:
        template = self.template(ecosystem)
        if template is None:
            return None
        key = canonicalize_name(name) if ecosystem is Ecosystem.PYPI else name
        return template.replace("{package}", quote(key, safe="@/"))


@dataclass(frozen=True, slots=True)
class PopularityResult:
    """Popularity per package, and why some packages have none (shown to the user)."""

    found: Mapping[PackageId, Popularity]
    notes: tuple[str, ...] = ()

    def weekly(self, ecosystem: Ecosystem, name: str) -> int | None:
        pop = self.found.get((ecosystem, name))
        return pop.weekly_downloads if pop is not None else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value >= 0:
        return round(value)
    return None


def _day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _npm_point(doc: Mapping[str, Any]) -> int | None:
    total = _int(doc.get("downloads"))
    if total is None:
        return None
    start, end = _day(doc.get("start")), _day(doc.get("end"))
    days = (end - start).days + 1 if start and end and end >= start else 7
    return round(total * 7 / days)


def _last_week(points: Iterable[tuple[date, int]]) -> int | None:
    ordered = sorted(points)
    if not ordered:
        return None
    last = ordered[-1][0]
    return sum(n for day, n in ordered if (last - day).days < 7)


def _npm_range(items: list[Any]) -> int | None:
    points = []
    for item in items:
        if isinstance(item, dict):
            day, n = _day(item.get("day")), _int(item.get("downloads"))
            if day is not None and n is not None:
                points.append((day, n))
    return _last_week(points)


def _pypistats_recent(data: Mapping[str, Any]) -> int | None:
    week = _int(data.get("last_week"))
    if week is not None:
        return week
    month = _int(data.get("last_month"))
    if month is not None:
        return round(month * 7 / 30)
    day = _int(data.get("last_day"))
    return day * 7 if day is not None else None


def _pypistats_overall(rows: list[Any]) -> int | None:
    by_category: dict[str, list[tuple[date, int]]] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        day, n = _day(row.get("date")), _int(row.get("downloads"))
        if day is not None and n is not None:
            by_category.setdefault(str(row.get("category")), []).append((day, n))
    for category in ("without_mirrors", "with_mirrors"):
        if category in by_category:
            return _last_week(by_category[category])
    return None


def parse_popularity(doc: Any) -> tuple[int | None, int | None] | None:
    """``(weekly_downloads, dependents)`` from a document in one of the known shapes; None when
    the document says the package is unknown (``{"error": ...}``). Raises ``BadDocument`` for a
    shape it does not know."""
    if not isinstance(doc, dict):
        raise BadDocument(f"expected a JSON object, got {type(doc).__name__}")
    dependents = _int(doc.get("dependents_count"))
    weekly: int | None = None
    downloads = doc.get("downloads")
    data = doc.get("data")
    if isinstance(downloads, list):
        weekly = _npm_range(downloads)
    elif downloads is not None:
        weekly = _npm_point(doc)
    elif isinstance(data, dict):
        weekly = _pypistats_recent(data)
    elif isinstance(data, list):
        weekly = _pypistats_overall(data)
    if weekly is None and dependents is None:
        if "error" in doc:
            return None
        raise BadDocument("no download counts or dependents in the answer")
    return weekly, dependents


def _decode(resp: Response) -> tuple[int | None, int | None] | None:
    try:
        doc = orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"invalid JSON: {exc}") from None
    return parse_popularity(doc)


async def fetch_popularity(
    packages: Iterable[PackageId],
    settings: PopularitySettings,
    cache: ResponseCache | None,
    *,
    ca_files: tuple[str, ...] = (),
) -> PopularityResult:
    """Popularity of every package whose ecosystem has an endpoint. Never raises for an
    unreachable endpoint: the first failure of an ecosystem stops asking it, and a note says
    that blast radius falls back to fan-in."""
    todo = sorted(set(packages))
    notes: list[str] = []
    for eco in sorted({eco for eco, _ in todo}):
        if settings.template(eco) is None:
            notes.append(
                f"no {eco.value} popularity endpoint configured ({ENV_URLS[eco]}): "
                "blast radius from fan-in within your projects only"
            )
    wanted = [(eco, name) for eco, name in todo if settings.template(eco) is not None]
    found: dict[PackageId, Popularity] = {}
    if not wanted:
        return PopularityResult(found, tuple(notes))
    options = HttpOptions(
        concurrency=8,
        connect_timeout=min(5.0, settings.timeout),
        read_timeout=settings.timeout,
        total_timeout=max(30.0, settings.timeout),
        attempts=2,
        backoff=0.2,
        max_body=16 * 2**20,
        max_age=settings.max_age,
        ca_files=ca_files,
    )
    client = RegistryClient(cache, options)
    failed: dict[Ecosystem, str] = {}
    unknown: dict[Ecosystem, int] = {}

    async def one(eco: Ecosystem, name: str) -> None:
        if eco in failed:
            return
        url = settings.url_for(eco, name)
        assert url is not None
        origin = _origin(url)
        try:
            _resp, value = await client.get(
                url, registry=origin, what=f"{eco.value}:{name}", decode=_decode
            )
        except PackageNotFound:
            unknown[eco] = unknown.get(eco, 0) + 1
            return
        except RegistryUnavailable as exc:
            failed.setdefault(eco, exc.reason)
            return
        if value is None:
            unknown[eco] = unknown.get(eco, 0) + 1
            return
        found[(eco, name)] = Popularity(value[0], value[1], origin)

    client.preload(u for eco, name in wanted if (u := settings.url_for(eco, name)))
    try:
        await asyncio.gather(*(one(eco, name) for eco, name in wanted))
    finally:
        client.flush()
        await client.aclose()
    for eco, reason in sorted(failed.items()):
        origin = _origin(settings.template(eco) or "")
        notes.append(
            f"{eco.value} popularity endpoint {origin} unreachable ({reason}): "
            "blast radius from fan-in within your projects for the packages it did not answer"
        )
    for eco, count in sorted(unknown.items()):
        notes.append(f"the {eco.value} popularity endpoint does not know {count} package(s)")
    return PopularityResult(found, tuple(notes))


def load_popularity(
    packages: Iterable[PackageId],
    settings: PopularitySettings,
    cache: ResponseCache | None,
    *,
    ca_files: tuple[str, ...] = (),
) -> PopularityResult:
    """Synchronous ``fetch_popularity``."""
    return asyncio.run(fetch_popularity(packages, settings, cache, ca_files=ca_files))
