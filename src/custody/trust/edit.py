"""Editing ``custody.toml`` without disturbing what people wrote in it.

The file is reviewed like code, so an edit changes only what it must: comments, blank lines,
key order and quoting stay as they are. Values are rendered by tomlkit. Placement is done on
the text with a small outline of the document (:mod:`custody.trust._scan`), because tomlkit puts
a key added to a table after the comments that belong to the next one. Every edit is checked
before it is kept: the new text must parse, say exactly what was intended and nothing else, and
pass the loader's checks; otherwise :class:`TrustFileError` is raised and nothing changes.

Layout of entries the editor adds: ``[policy]`` tables first, then ``[[trusted-everywhere]]``,
then one group per package sorted by key (its ``trusted`` entries, then its ``approved`` ones).
"""

from __future__ import annotations

import contextlib
import copy
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import tomlkit

from custody.errors import TrustFileError
from custody.policy import DEFAULT_POLICY
from custody.trust._ids import (
    REPOSITORY_NAMESPACES,
    check_custodian,
    check_custodian_everywhere,
    check_custodian_for,
    check_numeric_id,
    check_version,
    has_glob,
    lookup_key,
    normalize_package_key,
    normalize_version,
)
from custody.trust._lock import LOCK_TIMEOUT, locked
from custody.trust._scan import Block, Outline, PathKey, Statement
from custody.trust.load import (
    POLICY_KEYS,
    TIER_KEYS,
    format_duration,
    parse_trust_file,
    read_policy,
)
from custody.trust.model import TrustedEntry, TrustFile

_END_OF_DAY = time(23, 59, 59, 999999)

Section = tuple[int, str, int]  # (rank, package key, 0 trusted / 1 approved)
_POLICY: Section = (0, "", 0)
_EVERYWHERE: Section = (1, "", 0)


def _header() -> str:
    p = DEFAULT_POLICY
    tiers = "\n".join(
        f"#   [policy.tiers.{t.name}]".ljust(30)
        + f'min-fan-in = {t.min_fan_in}, hold-at = "{t.hold_at.value}", '
        f'on-custody-change = "{t.on_custody_change}"'
        for t in p.tiers
    )
    return f"""\
# custody.toml: who this project trusts to publish its dependencies.
#
# Custody records who publishes each dependency (registry accounts, and the CI identity behind
# signed provenance) and holds a release when that changes, until a person approves it.
# Every entry in this file is a decision someone made: review changes to it like code.
#
# [policy] is optional; these are the defaults:
#   cooldown = "{format_duration(p.cooldown)}"           releases younger than this are held \
(units m, h, d, w; "0" disables)
#   new-packages = "{p.new_packages}"   or "trust-on-first-use": accept a new dependency's \
first publishers
{tiers}
#   A package is judged by the first tier (highest min-fan-in first) its fan-in reaches; a
#   finding of severity hold-at or more holds it; on-custody-change is hold, warn or review.
#
# Entries, and how they get here:
#   [[trusted-everywhere]]    custodians trusted for every package (your own accounts and CI)
#   [[trusted."ECO:NAME"]]    custodians trusted to publish one package: `custody init` writes
#                             the publishers seen so far, `custody trust` adds one
#   [[approved."ECO:NAME"]]   one release a person reviewed and let through: `custody approve`
# Custodians: npm:user/NAME, npm:trusted-publisher/ID (npm trusted publishing from CI),
# pypi:user/NAME, pypi:org/NAME, github:OWNER/REPO, github:OWNER/*,
# github:OWNER/REPO:.github/workflows/FILE.yml. Reference: docs/trust-file.md
"""


NEW_FILE_HEADER = _header()
"""The comment a new trust file starts with."""


def _bad(message: str) -> TrustFileError:
    return TrustFileError(message)


def _as_utc(value: date | datetime, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, _END_OF_DAY if end else time(), tzinfo=UTC)


def _when(value: datetime, *, end: bool) -> tuple[str, date | datetime]:
    """Render a moment as TOML: a plain date when it is the start (or, for ``until``, the end)
    of a UTC day, else a UTC date-time. Returns (text, what tomllib reads back)."""
    value = _as_utc(value, end=False)
    if value.time() == (_END_OF_DAY if end else time()):
        return value.date().isoformat(), value.date()
    text = value.replace(tzinfo=None).isoformat() + "Z"
    return text, value


def _string(value: str) -> tuple[str, str]:
    return tomlkit.string(value).as_string(), value


def _key(raw: str) -> str:
    return tomlkit.key(raw).as_string()


def _trusted_fields(entry: TrustedEntry) -> list[tuple[str, tuple[str, object]]]:
    fields: list[tuple[str, tuple[str, object]]] = [("custodian", _string(entry.custodian))]
    if entry.numeric_id is not None:
        fields.append(("numeric-id", _string(entry.numeric_id)))
    if entry.since is not None:
        fields.append(("since", _when(entry.since, end=False)))
    if entry.until is not None:
        fields.append(("until", _when(entry.until, end=True)))
    if entry.note is not None:
        fields.append(("note", _string(entry.note)))
    return fields


def _check_entry(package_key: str | None, entry: TrustedEntry) -> None:
    try:
        check_custodian(entry.custodian)
        if package_key is not None:
            check_custodian_for(package_key, entry.custodian)
        else:
            check_custodian_everywhere(entry.custodian)
        if entry.numeric_id is not None:
            check_numeric_id(entry.custodian, entry.numeric_id)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    if entry.since is not None and entry.until is not None and entry.until < entry.since:
        raise _bad(f"until ({entry.until}) is before since ({entry.since})")


def _same(a: TrustedEntry, b: TrustedEntry) -> bool:
    return (
        a.custodian.lower() == b.custodian.lower()
        and a.since == b.since
        and a.until == b.until
        and a.numeric_id == b.numeric_id
    )


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str
    block: bool = False  # a whole table: kept apart from its neighbours by blank lines
    order: tuple[Any, ...] = ()


class TrustFileEditor:
    """Edits one trust file in memory; :meth:`save` writes it back atomically.

    Argument errors and edits that could not be made safely raise :class:`TrustFileError`;
    the text is then unchanged. A symbolic link is followed: the file it points to is edited
    and the link stays. To read, change and write a file while other processes may edit it
    too, use :meth:`editing`, which holds the file's lock throughout; :meth:`save` alone
    refuses to overwrite a file that changed on disk since it was read."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self._target = path.resolve()  # through a symbolic link: its target is edited
        self._bom = text.startswith("\ufeff")
        text = text.removeprefix("\ufeff")
        self._crlf = "\r\n" in text
        self._text = text.replace("\r\n", "\n")
        self._parsed: tuple[dict[str, Any], Outline, TrustFile] | None = None
        self._raw_keys: tuple[dict[str, Any], dict[str, str]] | None = None
        self.changed = False
        self._on_disk: bytes | None = None  # the bytes read (None: there was no file)
        self._check_disk = False  # does save() compare the file with _on_disk?
        self._lock_held = False

    @classmethod
    def open(cls, path: Path) -> TrustFileEditor:
        """An existing file; it must load cleanly (else :class:`TrustFileError`)."""
        try:
            raw = path.resolve().read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TrustFileError(f"cannot read it: {exc}", path=str(path)) from None
        editor = cls(path, text)
        editor._on_disk, editor._check_disk = raw, True
        editor._state()
        return editor

    @classmethod
    def new(cls, path: Path) -> TrustFileEditor:
        """A new file holding only the explanatory header (nothing is written until
        :meth:`save`; an existing file at ``path`` would then be replaced)."""
        editor = cls(path, NEW_FILE_HEADER)
        editor.changed = True
        return editor

    @classmethod
    def open_or_new(cls, path: Path) -> TrustFileEditor:
        if path.exists():
            return cls.open(path)
        editor = cls.new(path)
        editor._check_disk = True  # the file must still be absent when it is saved
        return editor

    @classmethod
    @contextlib.contextmanager
    def editing(
        cls, path: Path, *, create: bool = False, timeout: float = LOCK_TIMEOUT
    ) -> Iterator[TrustFileEditor]:
        """Open ``path`` (or, with ``create``, start a new file if there is none) holding the
        trust file's exclusive lock until the block ends, so that concurrent edits by other
        processes wait for each other instead of losing entries. Call :meth:`save` inside the
        block. Raises :class:`TrustFileError` when another process keeps the lock for longer
        than ``timeout`` seconds."""
        with locked(path.resolve(), shown=path, timeout=timeout):
            editor = cls.open_or_new(path) if create else cls.open(path)
            editor._lock_held = True
            try:
                yield editor
            finally:
                editor._lock_held = False

    # -- reading ---------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The text as it would be saved."""
        text = self._text if self._text.endswith("\n") else self._text + "\n"
        text = text.replace("\n", "\r\n") if self._crlf else text
        return "\ufeff" + text if self._bom else text

    @property
    def trust_file(self) -> TrustFile:
        return self._state()[2]

    def _state(self) -> tuple[dict[str, Any], Outline, TrustFile]:
        if self._parsed is None:
            trust = parse_trust_file(self._text, self.path)
            self._parsed = (tomllib.loads(self._text), Outline(self._text), trust)
        return self._parsed

    def _raw_key(self, key: str) -> str:
        """The spelling the file already uses for a package key, in either table (the loader
        allows one spelling of a package in the whole file), else the canonical one: adding an
        approval next to ``trusted."pypi:Foo.Bar"`` writes ``approved."pypi:Foo.Bar"``."""
        data = self._state()[0]
        if self._raw_keys is None or self._raw_keys[0] is not data:
            spellings: dict[str, str] = {}
            for k in ("trusted", "approved"):
                table = data.get(k, {})
                for raw in table if isinstance(table, dict) else ():
                    spellings.setdefault(lookup_key(raw), raw)
            self._raw_keys = (data, spellings)
        return str(self._raw_keys[1].get(key, key))

    # -- trusted ---------------------------------------------------------------------------------

    def add_trusted(
        self,
        package_key: str,
        custodian: str,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        note: str | None = None,
        numeric_id: str | None = None,
    ) -> bool:
        """Trust ``custodian`` to publish ``package_key``. False (and no change) when an entry
        with the same custodian, window and numeric-id is already there."""
        key = self._package(package_key)
        entry = self._entry(custodian, since, until, note, numeric_id)
        return self._add_trusted([(key, entry)]) == 1

    def add_trusted_everywhere(
        self,
        custodian: str,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        note: str | None = None,
        numeric_id: str | None = None,
    ) -> bool:
        """Trust ``custodian`` for every package (``[[trusted-everywhere]]``)."""
        entry = self._entry(custodian, since, until, note, numeric_id)
        return self._add_trusted([(None, entry)]) == 1

    def remove_trusted(self, package_key: str, custodian: str) -> bool:
        """Remove every entry of ``package_key`` whose custodian is ``custodian`` (compared
        without regard to case). Comments around the entries stay. False if there was none."""
        key = self._package(package_key)
        return self._remove_trusted(("trusted", self._raw_key(key)), custodian)

    def remove_trusted_everywhere(self, custodian: str) -> bool:
        return self._remove_trusted(("trusted-everywhere",), custodian)

    def _package(self, package_key: str) -> str:
        try:
            return normalize_package_key(package_key)
        except ValueError as exc:
            raise _bad(str(exc)) from None

    @staticmethod
    def _entry(
        custodian: str,
        since: date | datetime | None,
        until: date | datetime | None,
        note: str | None,
        numeric_id: str | None,
    ) -> TrustedEntry:
        return TrustedEntry(
            custodian,
            None if since is None else _as_utc(since, end=False),
            None if until is None else _as_utc(until, end=True),
            note,
            numeric_id,
        )

    def _add_trusted(self, items: Sequence[tuple[str | None, TrustedEntry]]) -> int:
        """Add entries (package key, or None for trusted-everywhere) in one edit; entries
        identical to one already there are skipped. Returns how many were added."""
        data, outline, trust = self._state()
        known: dict[str | None, list[TrustedEntry]] = {None: list(trust.trusted_everywhere)}
        inserts: list[tuple[tuple[str, ...], Section, list[tuple[str, tuple[str, object]]]]] = []
        for key, entry in items:
            _check_entry(key, entry)
            have = known.setdefault(key, list(trust.trusted.get(key, ())) if key else [])
            if any(_same(entry, e) for e in have):
                continue
            have.append(entry)
            if key is None:
                inserts.append((("trusted-everywhere",), _EVERYWHERE, _trusted_fields(entry)))
            else:
                raw = self._raw_key(key)
                inserts.append((("trusted", raw), (2, key, 0), _trusted_fields(entry)))
        if inserts:
            self._insert_tables(data, outline, inserts)
        return len(inserts)

    def _remove_trusted(self, collection: tuple[str, ...], custodian: str) -> bool:
        data, outline, _ = self._state()
        entries = _get(data, collection)
        if not isinstance(entries, list):
            return False
        doomed = [
            i
            for i, e in enumerate(entries)
            if str(e.get("custodian", "")).lower() == custodian.lower()
        ]
        if not doomed:
            return False
        blocks = self._array_blocks(outline, collection, len(entries))
        edits = [self._delete_block(outline, blocks[i]) for i in doomed]
        expected = copy.deepcopy(data)
        kept = [e for i, e in enumerate(entries) if i not in doomed]
        parent = _get(expected, collection[:-1]) if len(collection) > 1 else expected
        if kept:
            parent[collection[-1]] = kept
        else:
            del parent[collection[-1]]
            if (
                len(collection) > 1
                and not parent
                and not any(b.keys == collection[:-1] for b in outline.blocks)
            ):
                del expected[collection[0]]
        self._commit(edits, expected)
        return True

    # -- approvals -------------------------------------------------------------------------------

    def add_approval(
        self,
        package_key: str,
        version: str,
        by: str,
        reason: str,
        at: date | datetime | None = None,
    ) -> bool:
        """Approve one release. The file keeps one approval per version: approving a version
        again updates ``by``, ``reason`` and ``at`` of its entry in place (its comments stay).
        Returns True if a new entry was added, False if an existing one was updated (or was
        already identical)."""
        key = self._package(package_key)
        try:
            check_version(version)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        for what, value in (("by", by), ("reason", reason)):
            if not value.strip():
                raise _bad(f"an approval needs a non-empty {what!r}")
        when = None if at is None else _when(_as_utc(at, end=False), end=False)
        fields: list[tuple[str, tuple[str, object] | None]] = [
            ("by", _string(by)),
            ("reason", _string(reason)),
            ("at", when),
        ]
        data, outline, _ = self._state()
        raw = self._raw_key(key)
        entries = data.get("approved", {}).get(raw, [])
        wanted = normalize_version(key, version)
        for i, existing in enumerate(entries):
            if normalize_version(key, str(existing.get("version"))) == wanted:
                self._update_table(data, outline, ("approved", raw), i, len(entries), fields)
                return False
        table = [("version", _string(version))] + [(k, v) for k, v in fields if v is not None]
        self._insert_tables(data, outline, [(("approved", raw), (2, key, 1), table)])
        return True

    def remove_approval(self, package_key: str, version: str) -> bool:
        """Remove the approval of ``version``. False if there was none."""
        key = self._package(package_key)
        data, outline, _ = self._state()
        raw = self._raw_key(key)
        collection = ("approved", raw)
        entries = _get(data, collection)
        if not isinstance(entries, list):
            return False
        wanted = normalize_version(key, version)
        for i, e in enumerate(entries):
            if normalize_version(key, str(e.get("version"))) == wanted:
                block = self._array_blocks(outline, collection, len(entries))[i]
                expected = copy.deepcopy(data)
                del expected["approved"][raw][i]
                if not expected["approved"][raw]:
                    del expected["approved"][raw]
                    if not expected["approved"] and not any(
                        b.keys == ("approved",) for b in outline.blocks
                    ):
                        del expected["approved"]
                self._commit([self._delete_block(outline, block)], expected)
                return True
        return False

    # -- policy ----------------------------------------------------------------------------------

    def set_policy(self, key: str, value: str | int | timedelta | Enum) -> bool:
        """Set a policy key: ``cooldown``, ``new-packages`` or ``tiers.NAME.FIELD`` (FIELD one of
        min-fan-in, hold-at, on-custody-change). The value is checked as the loader would.
        Returns False when it already had that value."""
        parts = tuple(key.split("."))
        if not (
            (len(parts) == 1 and parts[0] in POLICY_KEYS and parts[0] != "tiers")
            or (len(parts) == 3 and parts[0] == "tiers" and parts[2] in TIER_KEYS)
        ):
            raise _bad(
                f"unknown policy key {key!r}; expected cooldown, new-packages or "
                "tiers.NAME.(min-fan-in|hold-at|on-custody-change)"
            )
        if isinstance(value, bool):
            raise _bad(f"{key} cannot be true or false")
        plain: str | int
        if isinstance(value, timedelta):
            try:
                plain = format_duration(value)
            except ValueError as exc:
                raise _bad(str(exc)) from None
        elif isinstance(value, Enum):
            plain = str(value.value)
        else:
            plain = value
        data, outline, _ = self._state()
        policy = copy.deepcopy(data.get("policy", {}))
        if not isinstance(policy, dict):
            raise _bad("[policy] is not a table")
        node = policy
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise _bad(f"policy.{part} is not a table")
        if node.get(parts[-1]) == plain:
            return False
        node[parts[-1]] = plain
        read_policy(policy)  # raises TrustFileError for a bad value
        expected = copy.deepcopy(data)
        expected["policy"] = policy
        rendered = _string(plain)[0] if isinstance(plain, str) else str(plain)
        path: PathKey = ("policy", *parts)
        st = outline.statement(path)
        if st is not None:
            edit = _replace_value(outline, st, rendered)
        else:
            line = f"{_key(parts[-1])} = {rendered}\n"
            parent = [b for b in outline.blocks if not b.is_array and b.path == path[:-1]]
            if parent:
                edit = self._line_insert(outline, parent[0].end_line, line)
            else:
                header = "[" + ".".join(_key(p) for p in ("policy", *parts[:-1])) + "]\n"
                if len(parts) == 1:  # [policy] goes before its sub-tables
                    first = next((b for b in outline.blocks if b.keys[0] == "policy"), None)
                    offset = (
                        _before(outline, first)
                        if first is not None
                        else self._position(outline, _POLICY)
                    )
                else:
                    offset = self._position(outline, _POLICY)
                edit = _Edit(offset, offset, header + line, block=True)
        self._commit([edit], expected)
        return True

    # -- writing ---------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the file atomically (a temporary file in the same folder, then a rename),
        keeping the permissions (and, where allowed, the owner) of the file it replaces.
        Through a symbolic link, the link's target is written and the link stays.

        Refused with :class:`TrustFileError`, and nothing written: a read-only file (make it
        writable to let Custody edit it), and a file that changed on disk since it was read
        (another process edited it meanwhile: run the edit again)."""
        text = self.text  # every edit was checked when it was made
        data = text.encode("utf-8")
        target = self._target
        where = str(self.path)
        hold = contextlib.nullcontext() if self._lock_held else locked(target, shown=self.path)
        with hold:
            try:
                st: os.stat_result | None = target.stat()
            except FileNotFoundError:
                st = None
            except OSError as exc:
                raise TrustFileError(f"cannot write it: {exc}", path=where) from None
            if st is not None and not stat.S_ISREG(st.st_mode):
                raise TrustFileError("cannot write it: not a regular file", path=where)
            if self._check_disk:
                try:
                    now = target.read_bytes() if st is not None else None
                except OSError as exc:
                    raise TrustFileError(f"cannot read it: {exc}", path=where) from None
                if now != self._on_disk:
                    raise TrustFileError(
                        "it changed on disk since custody read it (edited by another process "
                        "at the same time?); nothing was written: run the command again",
                        path=where,
                    )
            if st is not None and (
                not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
                or not os.access(target, os.W_OK)
            ):
                raise TrustFileError(
                    "it is read-only; nothing was written (make it writable to let custody "
                    "edit it)",
                    path=where,
                )
            self._write(target, data, st)
        self._on_disk, self._check_disk = data, True
        self.changed = False

    def _write(self, target: Path, data: bytes, st: os.stat_result | None) -> None:
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o644
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as exc:
            raise TrustFileError(f"cannot write it: {exc}", path=str(self.path)) from None
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, mode)
            if st is not None and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(OSError):  # only root may give a file away
                    os.chown(tmp, st.st_uid, st.st_gid)
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise TrustFileError(f"cannot write it: {exc}", path=str(self.path)) from None
            raise

    # -- text surgery ----------------------------------------------------------------------------

    def _position(self, outline: Outline, section: Section) -> int:
        """Where a new table of ``section`` goes: after the last table of the same section,
        else before the first table that sorts after it, else at the end."""
        return _Layout(outline).position(section)

    @staticmethod
    def _line_insert(outline: Outline, after_line: int, line: str) -> _Edit:
        offset = outline.after(after_line)
        if offset == len(outline.text) and outline.text and not outline.text.endswith("\n"):
            line = "\n" + line
        return _Edit(offset, offset, line)

    def _array_blocks(
        self, outline: Outline, collection: tuple[str, ...], count: int
    ) -> list[Block]:
        blocks = [b for b in outline.blocks if b.is_array and b.keys == collection]
        if len(blocks) != count:
            name = ".".join(_key(k) for k in collection)
            raise TrustFileError(
                f"{name} is not written as [[{name}]] tables; rewrite it that way to edit it "
                "with custody",
                path=str(self.path),
            )
        return blocks

    @staticmethod
    def _delete_block(outline: Outline, block: Block) -> _Edit:
        start = outline.start_of(block.header_line)
        end = outline.after(block.end_line)
        last = outline.line_count - 1
        blank_before = (
            block.header_line > 0 and not outline.line_text(block.header_line - 1).strip()
        )
        blank_after = block.end_line < last and not outline.line_text(block.end_line + 1).strip()
        if blank_before and blank_after:
            end = outline.after(block.end_line + 1)
        elif blank_before and end >= len(outline.text):
            start = outline.start_of(block.header_line - 1)
        return _Edit(start, end, "")

    def _insert_tables(
        self,
        data: dict[str, Any],
        outline: Outline,
        inserts: Sequence[tuple[tuple[str, ...], Section, list[tuple[str, tuple[str, object]]]]],
    ) -> None:
        for collection, _, _ in inserts:
            existing = _get(data, collection)
            if isinstance(existing, list):  # entries must be [[tables]] to add one after them
                self._array_blocks(outline, collection, len(existing))
        expected = copy.deepcopy(data)
        edits = []
        layout = _Layout(outline)
        for seq, (collection, section, fields) in enumerate(inserts):
            header = "[[" + ".".join(_key(k) for k in collection) + "]]\n"
            body = "".join(f"{_key(k)} = {text}\n" for k, (text, _) in fields)
            offset = layout.position(section)
            edits.append(_Edit(offset, offset, header + body, True, (section, seq)))
            node = expected
            for part in collection[:-1]:
                node = node.setdefault(part, {})
            node.setdefault(collection[-1], []).append({k: v for k, (_, v) in fields})
        self._commit(edits, expected)

    def _update_table(
        self,
        data: dict[str, Any],
        outline: Outline,
        collection: tuple[str, ...],
        index: int,
        count: int,
        fields: Sequence[tuple[str, tuple[str, object] | None]],
    ) -> None:
        block = self._array_blocks(outline, collection, count)[index]
        expected = copy.deepcopy(data)
        table = _get(expected, collection)[index]
        edits = []
        for name, value in fields:
            st = outline.statement((*block.path, name))
            if value is None:
                table.pop(name, None)
                if st is not None:
                    edits.append(_Edit(outline.start_of(st.line), outline.after(st.end_line), ""))
                continue
            table[name] = value[1]
            if st is not None:
                edits.append(_replace_value(outline, st, value[0]))
            else:
                edits.append(
                    self._line_insert(outline, block.end_line, f"{_key(name)} = {value[0]}\n")
                )
        self._commit(edits, expected)

    def _apply(self, edits: Sequence[_Edit]) -> str:
        text = self._text
        ordered = sorted(edits, key=lambda e: (e.start, e.end, e.block, e.order))
        out: list[str] = []
        pos = 0
        i = 0
        while i < len(ordered):
            edit = ordered[i]
            out.append(text[pos : edit.start])
            if edit.block:
                group = [edit.text]
                while (
                    i + 1 < len(ordered)
                    and ordered[i + 1].block
                    and ordered[i + 1].start == edit.start
                ):
                    i += 1
                    group.append(ordered[i].text)
                out.append(_separated(text, edit.start, group))
                pos = edit.start
            else:
                out.append(edit.text)
                pos = edit.end
            i += 1
        out.append(text[pos:])
        return "".join(out)

    def _commit(self, edits: Sequence[_Edit], expected: dict[str, Any]) -> None:
        new = self._apply(edits)
        try:
            data = tomllib.loads(new)
        except ValueError as exc:
            raise TrustFileError(
                f"could not edit the file safely (the result would not parse: {exc}); "
                "nothing was changed",
                path=str(self.path),
            ) from None
        if data != expected:
            raise TrustFileError(
                "could not edit the file safely (the result would not read back as "
                "intended); nothing was changed",
                path=str(self.path),
            )
        trust = parse_trust_file(new, self.path)
        if new != self._text:
            self.changed = True
        self._text = new
        self._parsed = (data, Outline(new), trust)


def _section(block: Block) -> Section:
    head = block.keys[0]
    if head == "policy":
        return _POLICY
    if head == "trusted-everywhere":
        return _EVERYWHERE
    if head in ("trusted", "approved"):
        key = lookup_key(block.keys[1]) if len(block.keys) > 1 else ""
        return (2, key, 0 if head == "trusted" else 1)
    return (3, "", 0)


def _before(outline: Outline, block: Block) -> int:
    """Offset to insert a table before ``block`` and the comments that introduce it (but not
    before a comment that opens the file)."""
    first = outline.blocks[0] is block and not outline.preamble and block.lead_start == 0
    return outline.start_of(block.header_line if first else block.lead_start)


class _Layout:
    """The section of every table of an outline, to place new tables."""

    def __init__(self, outline: Outline) -> None:
        self.outline = outline
        self.sections = [_section(b) for b in outline.blocks]
        self.last = {s: i for i, s in enumerate(self.sections)}

    def position(self, section: Section) -> int:
        """After the last table of ``section``, else before the first table that sorts after
        it, else at the end."""
        blocks = self.outline.blocks
        if section in self.last:
            return self.outline.after(blocks[self.last[section]].tail_end)
        for i, s in enumerate(self.sections):
            if s > section:
                return _before(self.outline, blocks[i])
        return len(self.outline.text)


def _get(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _replace_value(outline: Outline, st: Statement, rendered: str) -> _Edit:
    """Replace a value; a comment after it on the same line keeps its column if it can."""
    text = outline.text
    end = text.find("\n", st.value_end)
    rest = text[st.value_end : len(text) if end < 0 else end]
    comment = rest.lstrip(" ")
    if st.line == st.end_line and comment.startswith("#"):
        gap = len(rest) - len(comment)
        width = max(1, gap + (st.value_end - st.value_start) - len(rendered))
        return _Edit(st.value_start, st.value_end + gap, rendered + " " * width)
    return _Edit(st.value_start, st.value_end, rendered)


def _separated(text: str, offset: int, tables: Sequence[str]) -> str:
    """Tables to insert at ``offset``, with one blank line between them and their
    neighbours."""
    body = "\n".join(tables)
    prefix = ""
    if offset > 0:
        if text[offset - 1] != "\n":
            prefix = "\n\n"
        else:
            previous = text[text.rfind("\n", 0, offset - 1) + 1 : offset - 1]
            if previous.strip():
                prefix = "\n"
    suffix = ""
    if offset < len(text):
        end = text.find("\n", offset)
        following = text[offset : len(text) if end < 0 else end]
        if following.strip():
            suffix = "\n"
    return prefix + body + suffix


def write_baseline(
    path: Path,
    entries: Mapping[str, Sequence[TrustedEntry]],
    *,
    generated_by: str,
    when: datetime,
    merge: bool,
) -> int:
    """Write the trusted custodians ``custody init`` found, per package key.

    Entries without a note get ``"baseline written by GENERATED_BY on DATE"``. With ``merge``,
    adds to an existing file and never touches what is there (a custodian the file already
    lists for a package is skipped); without it, an existing file is an error (the caller
    deletes it first to start over). Returns how many entries were added."""
    with TrustFileEditor.editing(path, create=True) as editor:
        if editor._on_disk is not None and not merge:  # the file exists
            raise TrustFileError(
                "already exists; merge into it, or delete it to write a new baseline",
                path=str(path),
            )
        added = _add_baseline(editor, entries, generated_by=generated_by, when=when)
        if added or editor.changed:
            editor.save()
    return added


def _add_baseline(
    editor: TrustFileEditor,
    entries: Mapping[str, Sequence[TrustedEntry]],
    *,
    generated_by: str,
    when: datetime,
) -> int:
    trust = editor.trust_file
    note = f"baseline written by {generated_by} on {_as_utc(when, end=False).date().isoformat()}"
    items: list[tuple[str | None, TrustedEntry]] = []
    try:
        keys = sorted((normalize_package_key(k), k) for k in entries)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    present: dict[str, set[str]] = {}
    for key, given in keys:
        seen = present.setdefault(key, {e.custodian.lower() for e in trust.trusted.get(key, ())})
        for entry in entries[given]:
            if entry.custodian.lower() in seen:
                continue
            seen.add(entry.custodian.lower())
            # registries may know a numeric id for an account; the file keeps repository ids
            repository = entry.custodian.partition(":")[0].lower() in REPOSITORY_NAMESPACES
            entry = TrustedEntry(
                entry.custodian,
                entry.since,
                entry.until,
                note if entry.note is None else entry.note,
                entry.numeric_id if repository and not has_glob(entry.custodian) else None,
            )
            try:
                _check_entry(key, entry)
            except TrustFileError as exc:  # say which package the registry named it for
                raise _bad(f"cannot trust a custodian of {key}: {exc.reason}") from None
            items.append((key, entry))
    return editor._add_trusted(items)
