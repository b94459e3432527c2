"""OSV malicious-package records (``MAL-`` ids): parsing, validation and version matching.

The OSV schema (https://ossf.github.io/osv-schema/) describes an entry by ``id``, ``modified``,
``published``, ``withdrawn``, ``summary`` and a list ``affected``; each affected entry names a
``package`` (``ecosystem``, ``name``) and lists exact ``versions`` and/or ``ranges`` (``type``
``SEMVER``, ``ECOSYSTEM`` or ``GIT``, with ``events``: ``introduced``, ``fixed``,
``last_affected``, ``limit``). Custody keeps the npm and PyPI packages of ``MAL-`` records, one
``KnownBadRecord`` per record and package.

Matching (used by ``signals/known_bad.py``):

- an affected entry that lists ``versions`` matches exactly those versions (its ranges, often an
  ``introduced: "0"`` added by the tooling, are not used): the record names what is malicious;
- an entry without ``versions`` and with bounded ranges matches the versions inside them;
- an entry without ``versions`` whose ranges are unbounded (``introduced: "0"`` and no ``fixed``
  or ``last_affected``, or no ranges at all) covers *every* version: ``all_versions``. Whether
  that condemns a given release is decided with the package's history (a once-good package's
  old releases are not condemned), see the signal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.utils import canonicalize_name

from custody import versions
from custody.model import Ecosystem

RANGE_EVENTS = ("introduced", "fixed", "last_affected", "limit")
_ECOSYSTEMS = {"npm": Ecosystem.NPM, "pypi": Ecosystem.PYPI}


class OsvError(ValueError):
    """A document that is not a valid OSV record."""


@dataclass(frozen=True, slots=True)
class OsvEvent:
    kind: str  # introduced | fixed | last_affected | limit
    version: str


@dataclass(frozen=True, slots=True)
class OsvRange:
    type: str  # SEMVER | ECOSYSTEM
    events: tuple[OsvEvent, ...]

    @property
    def unbounded(self) -> bool:
        """``introduced: "0"`` and nothing that ends it: every version."""
        kinds = {e.kind for e in self.events}
        starts = {e.version for e in self.events if e.kind == "introduced"}
        return starts == {"0"} and not kinds & {"fixed", "last_affected", "limit"}


@dataclass(frozen=True, slots=True)
class KnownBadRecord:
    """What one OSV malicious-package record says about one package."""

    id: str
    """The OSV id, ``MAL-2018-123``."""
    ecosystem: Ecosystem
    package: str
    """npm names exact, PyPI names PEP 503 normalised."""
    versions: tuple[str, ...] = ()
    """Exact versions named malicious."""
    ranges: tuple[OsvRange, ...] = ()
    """Bounded ranges of entries that list no versions."""
    all_versions: bool = False
    """An entry lists no versions and its ranges cover everything (or it has none)."""
    modified: datetime | None = None
    published: datetime | None = None
    summary: str | None = None

    @property
    def reported_at(self) -> datetime | None:
        """When the record first appeared: ``published``, else ``modified``."""
        return self.published or self.modified

    def matches_exactly(self, version: str) -> str | None:
        """How ``version`` is named by this record apart from ``all_versions``: ``"version"``
        (listed exactly), ``"range"`` (inside a bounded range), or None."""
        if any(versions.same_version(self.ecosystem, version, v) for v in self.versions):
            return "version"
        if any(in_range(self.ecosystem, version, r) for r in self.ranges):
            return "range"
        return None


def in_range(ecosystem: Ecosystem, version: str, rng: OsvRange) -> bool:
    """OSV's evaluation of one range: walk the events in version order; ``introduced`` at or
    below the version opens it, ``fixed`` (or ``limit``) at or below closes it,
    ``last_affected`` below it closes it. ``"0"`` is below everything. Versions that do not
    parse never match."""
    if not versions.is_valid(ecosystem, version):
        return False

    def at_or_below(bound: str) -> bool:
        if bound == "0":
            return True
        result = versions.compare(ecosystem, bound, version)
        return result is not None and result <= 0

    def below(bound: str) -> bool:
        if bound == "0":
            return True
        result = versions.compare(ecosystem, bound, version)
        return result is not None and result < 0

    ordered = sorted(rng.events, key=_event_sort_key(ecosystem))
    affected = False
    for event in ordered:
        if event.kind == "introduced":
            affected = affected or at_or_below(event.version)
        elif event.kind in ("fixed", "limit"):
            affected = affected and not at_or_below(event.version)
        elif event.kind == "last_affected":
            affected = affected and not below(event.version)
    return affected


def _event_sort_key(ecosystem: Ecosystem) -> Callable[[OsvEvent], Any]:
    def cmp(a: OsvEvent, b: OsvEvent) -> int:
        if a.version == b.version:
            return 0
        if a.version == "0":
            return -1
        if b.version == "0":
            return 1
        result = versions.compare(ecosystem, a.version, b.version)
        return result if result is not None else (a.version > b.version) - (a.version < b.version)

    return functools.cmp_to_key(cmp)


# -- parsing ------------------------------------------------------------------------------------


def _time(doc: Mapping[str, Any], key: str, *, required: bool = False) -> datetime | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise OsvError(f"{key!r} must be an RFC 3339 time string")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise OsvError(f"{key!r} is not an RFC 3339 time: {value!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise OsvError(f"{what} must be a list of non-empty strings")
    return tuple(value)


def _ranges(value: Any, where: str) -> tuple[tuple[OsvRange, ...], bool]:
    """The entry's SEMVER/ECOSYSTEM ranges, and whether it had any range (GIT included)."""
    if value is None:
        return (), False
    if not isinstance(value, list):
        raise OsvError(f"{where}.ranges must be a list")
    out = []
    for i, rng in enumerate(value):
        at = f"{where}.ranges[{i}]"
        if not isinstance(rng, dict):
            raise OsvError(f"{at} must be an object")
        kind = rng.get("type")
        if kind not in ("SEMVER", "ECOSYSTEM", "GIT"):
            raise OsvError(f"{at}.type must be SEMVER, ECOSYSTEM or GIT, not {kind!r}")
        events = rng.get("events")
        if not isinstance(events, list) or not events:
            raise OsvError(f"{at}.events must be a non-empty list")
        parsed = []
        for j, event in enumerate(events):
            if not isinstance(event, dict) or len(event) != 1:
                raise OsvError(f"{at}.events[{j}] must be an object with one key")
            [(name, version)] = event.items()
            if name not in RANGE_EVENTS or not isinstance(version, str) or not version:
                raise OsvError(f"{at}.events[{j}]: expected one of {', '.join(RANGE_EVENTS)}")
            parsed.append(OsvEvent(name, version))
        if not any(e.kind == "introduced" for e in parsed):
            raise OsvError(f"{at} has no introduced event")
        if kind != "GIT":  # commits cannot be matched against registry versions
            out.append(OsvRange(kind, tuple(parsed)))
    return tuple(out), bool(value)


def is_malicious_id(osv_id: str) -> bool:
    return osv_id.startswith("MAL-")


def parse_record(doc: Any) -> list[KnownBadRecord]:
    """Validate one OSV document and return one record per npm or PyPI package it names
    (other ecosystems are left out). Raises ``OsvError`` naming what is wrong."""
    if not isinstance(doc, dict):
        raise OsvError("an OSV record must be a JSON object")
    osv_id = doc.get("id")
    if not isinstance(osv_id, str) or not osv_id.strip():
        raise OsvError("missing 'id'")
    modified = _time(doc, "modified", required=True)
    published = _time(doc, "published")
    summary = doc.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise OsvError("'summary' must be a string")
    affected = doc.get("affected", [])
    if not isinstance(affected, list):
        raise OsvError("'affected' must be a list")
    merged: dict[tuple[Ecosystem, str], dict[str, Any]] = {}
    for i, entry in enumerate(affected):
        where = f"affected[{i}]"
        if not isinstance(entry, dict):
            raise OsvError(f"{where} must be an object")
        package = entry.get("package")
        if not isinstance(package, dict):
            raise OsvError(f"{where}.package is missing")
        eco_text, name = package.get("ecosystem"), package.get("name")
        if not isinstance(eco_text, str) or not isinstance(name, str) or not name.strip():
            raise OsvError(f"{where}.package needs an ecosystem and a name")
        listed = _str_list(entry.get("versions"), f"{where}.versions")
        ranges, had_ranges = _ranges(entry.get("ranges"), where)
        eco = _ECOSYSTEMS.get(eco_text.split(":", 1)[0].strip().lower())
        if eco is None:
            continue
        key = (eco, canonicalize_name(name) if eco is Ecosystem.PYPI else name.strip())
        slot = merged.setdefault(key, {"versions": [], "ranges": [], "all": False})
        if listed:
            slot["versions"].extend(v for v in listed if v not in slot["versions"])
        elif not had_ranges or (ranges and all(r.unbounded for r in ranges)):
            slot["all"] = True
        else:
            slot["ranges"].extend(r for r in ranges if not r.unbounded)
            slot["all"] = slot["all"] or any(r.unbounded for r in ranges)
    return [
        KnownBadRecord(
            id=osv_id.strip(),
            ecosystem=eco,
            package=name,
            versions=tuple(slot["versions"]),
            ranges=tuple(slot["ranges"]),
            all_versions=slot["all"],
            modified=modified,
            published=published,
            summary=summary.strip() if isinstance(summary, str) and summary.strip() else None,
        )
        for (eco, name), slot in merged.items()
    ]


def withdrawn(doc: Mapping[str, Any]) -> bool:
    """Has the record been withdrawn (OSV ``withdrawn`` set)?"""
    return doc.get("withdrawn") not in (None, "")


def ranges_to_json(ranges: tuple[OsvRange, ...]) -> list[dict[str, Any]]:
    return [{"type": r.type, "events": [{e.kind: e.version} for e in r.events]} for r in ranges]


def ranges_from_json(value: Any) -> tuple[OsvRange, ...]:
    """The inverse of ``ranges_to_json`` (rows the ledger wrote)."""
    out = []
    for rng in value or ():
        events = tuple(OsvEvent(k, v) for event in rng["events"] for k, v in event.items())
        out.append(OsvRange(str(rng["type"]), events))
    return tuple(out)
