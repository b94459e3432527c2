"""An outline of a TOML document: where each table header and each key/value statement is.

tomlkit keeps no line numbers, and places a key added to a table after the comments that belong
to the next table. The loader uses this outline to name the line of a semantic error, the editor
to place new entries and to replace values in place. It is only run on text that a TOML parser
accepted, and never raises: on anything unexpected it skips to the next line."""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass, field

PathKey = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(slots=True)
class Statement:
    """``key = value``: ``path`` is the full path from the root (array tables carry their
    index); lines are 0-based; offsets index the text."""

    path: PathKey
    line: int
    end_line: int
    value_start: int
    value_end: int  # just after the value, before trailing spaces and a comment


@dataclass(slots=True)
class Block:
    """A table header and the statements under it."""

    keys: tuple[str, ...]
    path: PathKey  # keys, plus the occurrence index for ``[[array]]`` headers
    is_array: bool
    header_line: int
    end_line: int  # last line of the last statement (the header line when empty)
    lead_start: int = 0  # first line of the comment lines right above the header
    tail_end: int = 0  # last line of the comment lines right below the block that are its own
    statements: list[Statement] = field(default_factory=list)


class Outline:
    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.blocks: list[Block] = []
        self.preamble: list[Statement] = []
        self._lines: dict[PathKey, int] = {}
        self._statements: dict[PathKey, Statement] = {}
        self._scan()

    # -- queries -------------------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return len(self.line_starts)

    def line_of(self, path: PathKey) -> int | None:
        """1-based line of the statement or header at ``path``, or of its nearest ancestor."""
        for k in range(len(path), 0, -1):
            line = self._lines.get(path[:k])
            if line is not None:
                return line + 1
        return None

    def line_at(self, offset: int) -> int:
        """0-based line of a text offset."""
        return bisect.bisect_right(self.line_starts, offset) - 1

    def start_of(self, line: int) -> int:
        """Offset of the first character of a 0-based line."""
        return self.line_starts[min(line, len(self.line_starts) - 1)]

    def after(self, line: int) -> int:
        """Offset just after the newline ending a 0-based line (the end of the text for the
        last line)."""
        if line + 1 < len(self.line_starts):
            return self.line_starts[line + 1]
        return len(self.text)

    def line_text(self, line: int) -> str:
        start = self.line_starts[line]
        return self.text[start : self.after(line)].rstrip("\r\n")

    def statement(self, path: PathKey) -> Statement | None:
        return self._statements.get(path)

    # -- scanning ------------------------------------------------------------------------------

    def _record(self, path: PathKey, line: int) -> None:
        for k in range(1, len(path) + 1):
            self._lines.setdefault(path[:k], line)

    def _scan(self) -> None:
        text, n, pos = self.text, len(self.text), 0
        code: set[int] = set()
        counts: dict[tuple[str, ...], int] = {}
        current: Block | None = None
        while pos < n:
            c = text[pos]
            if c in " \t\r\n":
                pos += 1
                continue
            if c == "#":
                pos = _line_end(text, pos)
                continue
            line = self.line_at(pos)
            if c == "[":
                is_array = text.startswith("[[", pos)
                keys, p = _parse_key(text, pos + (2 if is_array else 1))
                close = "]]" if is_array else "]"
                if keys is None or not text.startswith(close, _skip_ws(text, p)):
                    pos = _line_end(text, pos)
                    continue
                path: PathKey = keys
                if is_array:
                    index = counts.get(keys, 0)
                    counts[keys] = index + 1
                    path = (*keys, index)
                current = Block(keys, path, is_array, line, line, line, line)
                self.blocks.append(current)
                self._record(path, line)
                code.add(line)
                pos = _line_end(text, pos)
                continue
            keys, p = _parse_key(text, pos)
            p = _skip_ws(text, p)
            if keys is None or p >= n or text[p] != "=":
                pos = _line_end(text, pos)
                continue
            start = _skip_ws(text, p + 1)
            end, pos = _skip_value(text, start)
            end_line = self.line_at(max(end - 1, start))
            st = Statement((current.path if current else ()) + keys, line, end_line, start, end)
            self._record(st.path, line)
            self._statements.setdefault(st.path, st)
            code.update(range(line, end_line + 1))
            if current is None:
                self.preamble.append(st)
            else:
                current.statements.append(st)
                current.end_line = max(current.end_line, end_line)
        self._attach_comments(code)

    def _attach_comments(self, code: set[int]) -> None:
        count = len(self.line_starts)

        def is_comment(i: int) -> bool:
            return i not in code and self.line_text(i).lstrip().startswith("#")

        headers = {b.header_line for b in self.blocks}
        for block in self.blocks:
            i = block.header_line - 1
            while i >= 0 and is_comment(i):
                i -= 1
            block.lead_start = i + 1
            j = block.end_line + 1
            while j < count and is_comment(j):
                j += 1
            # comment lines that touch the next header are that header's
            block.tail_end = block.end_line if j in headers else j - 1


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw[1:-1]
    try:
        value = tomllib.loads(f"k = {raw}")["k"]
    except ValueError:
        return raw[1:-1]
    return value if isinstance(value, str) else raw[1:-1]


def _parse_key(text: str, pos: int) -> tuple[tuple[str, ...] | None, int]:
    """A dotted key at ``pos``: its parts and the offset after it, or (None, pos)."""
    n = len(text)
    parts: list[str] = []
    while True:
        pos = _skip_ws(text, pos)
        if pos >= n:
            return None, pos
        c = text[pos]
        if c == '"':
            j = pos + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            if j >= n or text[j] != '"':
                return None, pos
            parts.append(_unescape(text[pos : j + 1]))
            pos = j + 1
        elif c == "'":
            j = text.find("'", pos + 1)
            if j < 0 or "\n" in text[pos:j]:
                return None, pos
            parts.append(text[pos + 1 : j])
            pos = j + 1
        else:
            m = _BARE.match(text, pos)
            if m is None:
                return None, pos
            parts.append(m.group())
            pos = m.end()
        pos = _skip_ws(text, pos)
        if pos < n and text[pos] == ".":
            pos += 1
            continue
        return tuple(parts), pos


def _skip_value(text: str, pos: int) -> tuple[int, int]:
    """Skip the value starting at ``pos``: (offset just after it, offset of the newline that
    ends the statement or the end of the text)."""
    n = len(text)
    depth = 0
    last = pos
    while pos < n:
        c = text[pos]
        if c in "\"'":
            if text.startswith(c * 3, pos):
                j = pos + 3
                closed = False
                while j < n:
                    if c == '"' and text[j] == "\\":
                        j += 2
                        continue
                    if text.startswith(c * 3, j):
                        j += 3
                        extra = 0  # up to two more quotes belong to the string
                        while extra < 2 and j < n and text[j] == c:
                            j += 1
                            extra += 1
                        closed = True
                        break
                    j += 1
                pos = j if closed else n
            else:
                j = pos + 1
                while j < n and text[j] != c and text[j] != "\n":
                    j += 2 if c == '"' and text[j] == "\\" else 1
                pos = j + 1 if j < n and text[j] == c else min(j, n)
            last = pos
            continue
        if c == "#":
            pos = _line_end(text, pos)
            continue
        if c == "\n":
            if depth <= 0:
                break
            pos += 1
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        if c not in " \t\r":
            last = pos + 1
        pos += 1
    return last, min(pos, n)
