"""Reading ``custody.toml``: strict, because a typo in a security policy must not be ignored.

Every problem is a :class:`custody.errors.TrustFileError` naming the file and the line."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn

import tomli

from custody.errors import TrustFileError
from custody.model import Severity
from custody.policy import DEFAULT_POLICY, Policy, Tier
from custody.trust._ids import (
    check_custodian,
    check_custodian_everywhere,
    check_custodian_for,
    check_numeric_id,
    check_tier_name,
    check_version,
    normalize_package_key,
    normalize_version,
)
from custody.trust._scan import Outline, PathKey
from custody.trust.model import ApprovalEntry, TrustedEntry, TrustFile

TRUST_FILE_NAME = "custody.toml"

TOP_KEYS = ("policy", "trusted-everywhere", "trusted", "approved")
POLICY_KEYS = ("cooldown", "new-packages", "tiers", "fingerprints")
TIER_KEYS = ("min-fan-in", "hold-at", "on-custody-change")
TRUSTED_KEYS = ("custodian", "since", "until", "note", "numeric-id")
APPROVAL_KEYS = ("version", "by", "reason", "at")
NEW_PACKAGES = ("review", "trust-on-first-use")
ON_CUSTODY_CHANGE = ("hold", "warn", "review")
SEVERITIES = tuple(s.value for s in Severity)

_DURATION = re.compile(r"(?:[0-9]{1,9}[mhdw])+")
_DURATION_PART = re.compile(r"([0-9]+)([mhdw])")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
_UNITS["m"] = timedelta(minutes=1)
_TOML_ERROR = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$", re.DOTALL)
_END_OF_DAY = time(23, 59, 59, 999999, tzinfo=UTC)
MAX_DURATION = timedelta(weeks=520)
"""The longest duration the file may give (10 years): anything longer means "never", which
is not what a cooldown is for, and would overflow a time computed from it."""


def parse_duration(text: str) -> timedelta:
    """``"48h"`` -> 48 hours. Units: ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks; parts
    may be combined (``"1d12h"``); ``"0"`` is no time at all; at most :data:`MAX_DURATION`.
    Raises ``ValueError``."""
    if text == "0":
        return timedelta(0)
    if not _DURATION.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit (m, h, d, w), "
            'e.g. "48h" or "1d12h"; "0" disables'
        )
    total = timedelta(0)
    try:
        for number, unit in _DURATION_PART.findall(text):
            total += int(number) * _UNITS[unit]
    except OverflowError:
        total = MAX_DURATION + MAX_DURATION
    if total > MAX_DURATION:
        raise ValueError(
            f"{text!r} is too long: at most {format_duration(MAX_DURATION)} (10 years)"
        )
    return total


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, in one unit: weeks when whole, else hours when
    whole, else minutes (``timedelta(hours=48)`` -> ``"48h"``)."""
    if value < timedelta(0) or value % timedelta(minutes=1):
        raise ValueError(f"{value} is not a whole, non-negative number of minutes")
    if not value:
        return "0"
    for unit in ("w", "h", "m"):
        count, rest = divmod(value, _UNITS[unit])
        if not rest:
            return f"{count}{unit}"
    raise AssertionError("unreachable: whole minutes")  # pragma: no cover


def find_trust_file(start: Path) -> Path | None:
    """``custody.toml`` in ``start`` or the nearest parent, looking no higher than the root of
    the git work tree that contains ``start`` (or the file-system root). Something else by
    that name (a directory, a broken link) is an error, not skipped: the search must not go on
    to a parent's file. Raises :class:`TrustFileError`."""
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / TRUST_FILE_NAME
        if candidate.is_file():
            return candidate
        if candidate.exists() or candidate.is_symlink():
            what = "a directory" if candidate.is_dir() else "not a readable file"
            raise TrustFileError(
                f"is {what}; the trust file must be a file (or pass --trust-file)",
                path=str(candidate),
            )
        if (folder / ".git").exists():
            return None
    return None


def load_trust_file(path: Path) -> TrustFile:
    """Read and check a trust file. Raises :class:`TrustFileError` (file and line) for
    anything wrong, from unreadable bytes to an unknown policy key."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TrustFileError(f"cannot read it: {exc.strerror or exc}", path=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TrustFileError("not UTF-8 text", path=str(path), line=line) from None
    return parse_trust_file(text.removeprefix("\ufeff"), path)


def parse_trust_file(text: str, path: Path | None = None) -> TrustFile:
    """Parse the text of a trust file (``path`` is only used in messages and the result)."""
    where = None if path is None else str(path)
    try:
        data = tomli.loads(text)
    except ValueError as exc:  # tomli.TOMLDecodeError is a ValueError
        message, line = _split_toml_error(str(exc), text)
        raise TrustFileError(f"not valid TOML: {message}", path=where, line=line) from None
    except RecursionError:
        raise TrustFileError("not valid TOML: nested too deeply", path=where) from None
    return _Reader(text, path).read(data)


def read_policy(table: Mapping[str, Any]) -> Policy:
    """Check a ``[policy]`` table given as plain data (used by the editor before it writes)."""
    return _Reader("", None)._policy(table)


def _split_toml_error(message: str, text: str) -> tuple[str, int | None]:
    m = _TOML_ERROR.match(message)
    if m:
        return f"{m.group(1)} (column {m.group(3)})", int(m.group(2))
    if message.endswith(" (at end of document)"):
        return message.removesuffix(" (at end of document)") + " at the end", text.count("\n") + (
            0 if text.endswith("\n") else 1
        )
    return message, None


def _name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (
                part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            )
    return out


class _Reader:
    def __init__(self, text: str, path: Path | None) -> None:
        self.text = text
        self.path = path
        self._outline: Outline | None = None

    def fail(self, message: str, at: PathKey) -> NoReturn:
        line = None
        if self.text and at:
            if self._outline is None:
                self._outline = Outline(self.text)
            line = self._outline.line_of(at)
        where = None if self.path is None else str(self.path)
        raise TrustFileError(message, path=where, line=line)

    # -- shapes --------------------------------------------------------------------------------

    def _table(self, value: object, at: PathKey) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(f"{_dotted(at)} must be a table, not {_name(value)}", at)
        return value

    def _tables(self, value: object, at: PathKey) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(f"{_dotted(at)} must be an array of tables, written [[{_dotted(at)}]]", at)
        return value

    def _keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], at: PathKey) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                where = f" in [{_dotted(at)}]" if at else ""
                self.fail(
                    f"unknown key {key!r}{where}{hint} (expected one of: {', '.join(allowed)})",
                    (*at, key),
                )

    def _string(self, table: Mapping[str, Any], key: str, at: PathKey) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(f"{key} must be a string, not {_name(value)}", (*at, key))
        return value

    def _required(self, table: Mapping[str, Any], key: str, at: PathKey, what: str) -> str:
        value = self._string(table, key, at)
        if value is None or not value.strip():
            self.fail(f"{what} has no {key}", at if value is None else (*at, key))
        return value

    def _when(
        self, table: Mapping[str, Any], key: str, at: PathKey, *, end: bool
    ) -> datetime | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, _END_OF_DAY if end else time(tzinfo=UTC))
        self.fail(
            f"{key} must be a TOML date or date-time written without quotes, e.g. "
            f"{key} = 2018-09-01, not {_name(value)}",
            (*at, key),
        )

    # -- the file ------------------------------------------------------------------------------

    def read(self, data: Mapping[str, Any]) -> TrustFile:
        self._keys(data, TOP_KEYS, ())
        policy = self._policy(data["policy"]) if "policy" in data else DEFAULT_POLICY
        everywhere: tuple[TrustedEntry, ...] = ()
        if "trusted-everywhere" in data:
            at: PathKey = ("trusted-everywhere",)
            everywhere = tuple(
                self._trusted((*at, i), t, None)
                for i, t in enumerate(self._tables(data["trusted-everywhere"], at))
            )
        trusted: dict[str, tuple[TrustedEntry, ...]] = {}
        spelled: dict[str, str] = {}  # one spelling of a package in the whole file
        for key, raw, items in self._packages(data, "trusted"):
            spelled[key] = raw
            trusted[key] = tuple(
                self._trusted(("trusted", raw, i), t, key) for i, t in enumerate(items)
            )
        approved: dict[str, tuple[ApprovalEntry, ...]] = {}
        for key, raw, items in self._packages(data, "approved"):
            if spelled.get(key, raw) != raw:
                self.fail(
                    f"{raw!r} and {spelled[key]!r} name the same package; spell it one way "
                    "in [[trusted]] and [[approved]]",
                    ("approved", raw),
                )
            approved[key] = self._approvals(key, raw, items)
        return TrustFile(self.path, policy, everywhere, trusted, approved)

    def _packages(
        self, data: Mapping[str, Any], kind: str
    ) -> list[tuple[str, str, list[dict[str, Any]]]]:
        if kind not in data:
            return []
        out = []
        seen: dict[str, str] = {}
        for raw, value in self._table(data[kind], (kind,)).items():
            try:
                key = normalize_package_key(raw)
            except ValueError as exc:
                self.fail(str(exc), (kind, raw))
            if key in seen:
                self.fail(
                    f"{raw!r} and {seen[key]!r} name the same package; merge their entries",
                    (kind, raw),
                )
            seen[key] = raw
            out.append((key, raw, self._tables(value, (kind, raw))))
        return out

    def _trusted(self, at: PathKey, table: dict[str, Any], package: str | None) -> TrustedEntry:
        self._keys(table, TRUSTED_KEYS, at)
        custodian = self._required(table, "custodian", at, "this trusted entry")
        try:
            check_custodian(custodian)
            if package is not None:
                check_custodian_for(package, custodian)
            else:
                check_custodian_everywhere(custodian)
        except ValueError as exc:
            self.fail(str(exc), (*at, "custodian"))
        since = self._when(table, "since", at, end=False)
        until = self._when(table, "until", at, end=True)
        if since is not None and until is not None and until < since:
            self.fail("until is before since", (*at, "until"))
        numeric_id = table.get("numeric-id")
        if numeric_id is not None:
            if isinstance(numeric_id, int) and not isinstance(numeric_id, bool):
                numeric_id = str(numeric_id)
            if not isinstance(numeric_id, str):
                self.fail(
                    f'numeric-id must be a string such as "123456", not {_name(numeric_id)}',
                    (*at, "numeric-id"),
                )
            try:
                check_numeric_id(custodian, numeric_id)
            except ValueError as exc:
                self.fail(str(exc), (*at, "numeric-id"))
        return TrustedEntry(custodian, since, until, self._string(table, "note", at), numeric_id)

    def _approvals(
        self, key: str, raw: str, items: list[dict[str, Any]]
    ) -> tuple[ApprovalEntry, ...]:
        out: list[ApprovalEntry] = []
        seen: set[str] = set()
        for i, table in enumerate(items):
            at: PathKey = ("approved", raw, i)
            self._keys(table, APPROVAL_KEYS, at)
            version = table.get("version")
            if isinstance(version, int | float) and not isinstance(version, bool):
                self.fail(f'quote the version: version = "{version}"', (*at, "version"))
            version = self._required(table, "version", at, "this approval")
            try:
                check_version(version)
            except ValueError as exc:
                self.fail(str(exc), (*at, "version"))
            by = self._required(table, "by", at, "this approval")
            reason = self._required(table, "reason", at, "this approval")
            when = self._when(table, "at", at, end=False)
            norm = normalize_version(key, version)
            if norm in seen:
                self.fail(f"{raw} {version} is approved twice", (*at, "version"))
            seen.add(norm)
            out.append(ApprovalEntry(version, by, reason, when))
        return tuple(out)

    # -- policy --------------------------------------------------------------------------------

    def _choice(
        self, table: Mapping[str, Any], key: str, allowed: tuple[str, ...], at: PathKey
    ) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or value not in allowed:
            shown = repr(value) if isinstance(value, str) else _name(value)
            self.fail(
                f"{key} must be one of {', '.join(repr(a) for a in allowed)}, not {shown}",
                (*at, key),
            )
        return value

    def _policy(self, value: object) -> Policy:
        at: PathKey = ("policy",)
        table = self._table(value, at)
        self._keys(table, POLICY_KEYS, at)
        cooldown = DEFAULT_POLICY.cooldown
        if "cooldown" in table:
            text = table["cooldown"]
            if not isinstance(text, str):
                self.fail(
                    f'cooldown must be a string such as "48h", not {_name(text)}',
                    (*at, "cooldown"),
                )
            try:
                cooldown = parse_duration(text)
            except ValueError as exc:
                self.fail(f"cooldown: {exc}", (*at, "cooldown"))
        new_packages = self._choice(table, "new-packages", NEW_PACKAGES, at)
        tiers = self._tiers(table["tiers"]) if "tiers" in table else DEFAULT_POLICY.tiers
        fingerprints = table.get("fingerprints", DEFAULT_POLICY.fingerprints)
        if not isinstance(fingerprints, bool):
            self.fail(
                f"fingerprints must be true or false, not {_name(fingerprints)}",
                (*at, "fingerprints"),
            )
        return Policy(
            cooldown, new_packages or DEFAULT_POLICY.new_packages, tiers, fingerprints=fingerprints
        )

    def _tiers(self, value: object) -> tuple[Tier, ...]:
        at: PathKey = ("policy", "tiers")
        defaults = {t.name: t for t in DEFAULT_POLICY.tiers}
        merged = dict(defaults)
        specs = self._table(value, at)
        for name, spec in specs.items():
            here: PathKey = (*at, name)
            try:
                check_tier_name(name)
            except ValueError as exc:
                self.fail(str(exc), here)
            table = self._table(spec, here)
            self._keys(table, TIER_KEYS, here)
            base = defaults.get(name)
            if base is None and "min-fan-in" not in table:
                self.fail(f"the new tier {name!r} needs a min-fan-in", here)
            base = base or Tier(name)
            fan_in = table.get("min-fan-in", base.min_fan_in)
            if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 0:
                self.fail("min-fan-in must be a whole number, 0 or more", (*here, "min-fan-in"))
            hold_at = self._choice(table, "hold-at", SEVERITIES, here)
            on_change = self._choice(table, "on-custody-change", ON_CUSTODY_CHANGE, here)
            merged[name] = Tier(
                name,
                min_fan_in=fan_in,
                hold_at=Severity(hold_at) if hold_at else base.hold_at,
                on_custody_change=on_change or base.on_custody_change,
            )
        tiers = sorted(merged.values(), key=lambda t: -t.min_fan_in)
        for higher, lower in itertools.pairwise(tiers):
            if higher.min_fan_in == lower.min_fan_in:
                self.fail(
                    f"tiers {higher.name!r} and {lower.name!r} both start at min-fan-in = "
                    f"{lower.min_fan_in}; give each tier its own threshold",
                    (*at, lower.name if lower.name in specs else higher.name),
                )
        if tiers[-1].min_fan_in != 0:
            self.fail(
                "no tier starts at min-fan-in = 0, so packages used less would be in no tier",
                (*at, tiers[-1].name),
            )
        return tuple(tiers)
