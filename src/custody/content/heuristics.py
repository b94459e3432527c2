"""Cheap, byte-level measures of code: what kind of file it is, how "packed" a piece of it looks,
and which suspicious constructs it contains. Nothing here parses or runs package code.

Every pattern is a compiled ``bytes`` regex, searched only over code that is new in a release;
the baseline is searched lazily, and only for the kinds found, to decide whether they are news.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

# ------------------------------------------------------------------------------ file kinds

_LANGUAGES = {
    ".js": "js",
    ".cjs": "js",
    ".mjs": "js",
    ".jsx": "js",
    ".ts": "js",
    ".tsx": "js",
    ".mts": "js",
    ".cts": "js",
    ".py": "py",
    ".pyw": "py",
    ".pth": "pth",
    ".sh": "sh",
    ".bash": "sh",
    ".zsh": "sh",
    ".ps1": "sh",
    ".bat": "sh",
    ".cmd": "sh",
}
_NOT_CODE = (".d.ts", ".d.mts", ".d.cts", ".map")
_TEST_DIRS = frozenset(
    {
        "test",
        "tests",
        "__tests__",
        "__mocks__",
        "spec",
        "specs",
        "fixtures",
        "__fixtures__",
        "testing",
        "example",
        "examples",
        "docs",
        "doc",
        "benchmark",
        "benchmarks",
        "bench",
    }
)
_TEST_FILE = re.compile(
    r"(\.(test|spec)\.[cm]?[jt]sx?$)|(^test_.*\.py$)|(_test\.py$)|^conftest\.py$"
)


def language(path: str, data: bytes) -> str | None:
    """``js``, ``py``, ``pth``, ``sh`` for code files, None for everything else (data, docs,
    type declarations, source maps). Extensionless files count by their ``#!`` line."""
    lower = path.lower()
    if lower.endswith(_NOT_CODE):
        return None
    name = lower.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot > 0:
        return _LANGUAGES.get(name[dot:])
    if data.startswith(b"#!"):
        line = data[:128].split(b"\n", 1)[0]
        if b"node" in line:
            return "js"
        if b"python" in line:
            return "py"
        if line.rstrip().endswith((b"sh", b"bash")):
            return "sh"
    return None


def is_test_path(path: str) -> bool:
    """Tests, fixtures, examples, docs and benchmarks: not run when the package is used."""
    parts = path.lower().split("/")
    return bool(_TEST_DIRS.intersection(parts[:-1])) or bool(_TEST_FILE.search(parts[-1]))


# ------------------------------------------------------------------------------ statistics

_WHITESPACE = b" \t\r\n\f\v"
_ALNUM = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$"
_SAMPLE = 64 * 1024  # bytes used for the entropy estimate


@dataclass(frozen=True, slots=True)
class TextStats:
    """Shape of a piece of code. ``entropy`` is Shannon entropy in bits per byte (English
    code is about 4.5-5.2; base64 6.0; compressed or encrypted data near 8)."""

    size: int
    lines: int
    max_line: int
    avg_line: float
    whitespace: float  # share of bytes that are whitespace
    symbols: float  # share of bytes that are neither whitespace nor [A-Za-z0-9_$]
    entropy: float

    def as_metrics(self) -> dict[str, float | int]:
        return {
            "bytes": self.size,
            "lines": self.lines,
            "max_line": self.max_line,
            "avg_line": round(self.avg_line, 1),
            "whitespace": round(self.whitespace, 3),
            "symbols": round(self.symbols, 3),
            "entropy": round(self.entropy, 2),
        }

    @property
    def minified(self) -> bool:
        """Packed onto few, long lines with little whitespace: a bundle, minifier or packer."""
        return (
            self.size >= 512
            and (self.avg_line >= 250 or self.max_line >= 2000)
            and self.whitespace < 0.10
        )

    @property
    def long_lines(self) -> bool:
        """Loose "was it minified already" test for the previous version of a file."""
        return self.max_line >= 500 or self.whitespace < 0.10


def entropy(data: bytes) -> float:
    if not data:
        return 0.0
    if len(data) > _SAMPLE:  # head and tail: enough for an estimate, bounded cost
        half = _SAMPLE // 2
        data = data[:half] + data[-half:]
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def max_line_length(data: bytes) -> int:
    return max(map(len, data.split(b"\n"))) if data else 0


def stats(data: bytes) -> TextStats:
    size = len(data)
    if not size:
        return TextStats(0, 0, 0, 0.0, 0.0, 0.0, 0.0)
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    ws = size - len(data.translate(None, _WHITESPACE))
    alnum = size - len(data.translate(None, _ALNUM))
    return TextStats(
        size=size,
        lines=lines,
        max_line=max_line_length(data),
        avg_line=size / max(lines, 1),
        whitespace=ws / size,
        symbols=max(0, size - ws - alnum) / size,
        entropy=entropy(data),
    )


# ------------------------------------------------------------------------------ patterns


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regex that starts with a literal (so ``re`` can skip ahead fast), with an optional
    guard on the byte before the match (a cheap, fast ``\\b`` / lookbehind)."""

    kind: str  # the flag kind it raises
    label: str  # what a reviewer reads: "eval(", "base64 string"
    regex: re.Pattern[bytes]
    languages: frozenset[str]
    not_after: frozenset[int] = frozenset()  # bytes that must not precede the match


_JS = frozenset({"js"})
_PY = frozenset({"py"})
_ANY = frozenset({"js", "py", "sh", "pth"})
_IDENT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$.")


def _p(
    kind: str, label: str, pattern: bytes, languages: frozenset[str], guard: bool = True
) -> Pattern:
    return Pattern(kind, label, re.compile(pattern), languages, _IDENT if guard else frozenset())


PATTERNS: tuple[Pattern, ...] = (
    # long encoded strings (long base64 and hex runs are found by ``_runs`` below)
    _p(
        "encoded-string",
        "\\x escape run",
        rb"\\x[0-9a-fA-F]{2}(?:\\x[0-9a-fA-F]{2}){23,}",
        _ANY,
        False,
    ),
    _p(
        "encoded-string",
        "\\u escape run",
        rb"\\u[0-9a-fA-F]{4}(?:\\u[0-9a-fA-F]{4}){23,}",
        _JS,
        False,
    ),
    _p(
        "encoded-string",
        "String.fromCharCode chain",
        rb"String\.fromCharCode\((?:\s*(?:0x)?[0-9a-fA-F]+\s*,){8,}",
        _JS,
    ),
    _p("encoded-string", "char-code array", rb"\[(?:\s*\d{2,3}\s*,){40,}", _ANY, False),
    # packers and obfuscators
    _p("obfuscator", "packer", rb"eval\(function\(p,a,c,k,e,[rd]\)", _JS),
    _p("obfuscator", "JSFuck/jjencode", rb"\[\]\[\(!\[\]\+\[\]\)|\$=~\[\];", _JS, False),
    # dynamic code execution (JS)
    _p("dynamic-exec", "eval(", rb"eval\s*\(", _JS),
    _p("dynamic-exec", "new Function(", rb"new\s+Function\s*\(", _JS),
    _p("dynamic-exec", "Function( on non-literal", rb"Function\s*\(\s*[^\s'\"`)]", _JS),
    _p("dynamic-exec", "computed require(", rb"require\s*\(\s*[^\s'\"`)]", _JS),
    _p("dynamic-exec", "vm.runIn*", rb"runIn(?:New|This)?Context\s*\(", _JS, False),
    _p("dynamic-exec", "process.binding", rb"process\.(?:binding|dlopen)\s*\(", _JS),
    _p("child-process", "child_process", rb"child_process\b", _JS),
    # dynamic code execution (Python)
    _p("dynamic-exec", "exec(", rb"exec\s*\(", _PY),
    _p("dynamic-exec", "eval(", rb"eval\s*\(", _PY),
    _p("dynamic-exec", "compile(", rb"compile\s*\([^)\n]*['\"]exec['\"]", _PY),
    _p("dynamic-exec", "computed __import__(", rb"__import__\s*\(\s*[^\s'\")]", _PY),
    _p("marshal", "marshal.loads", rb"marshal\.loads\s*\(", _PY),
    _p(
        "child-process",
        "subprocess",
        rb"subprocess\.(?:Popen|call|run|check_call|check_output|getoutput)\b",
        _PY,
    ),
    _p("child-process", "os.system", rb"os\.(?:system|popen|exec[lv]p?e?|spawn[lv]p?e?)\s*\(", _PY),
    # shell: download and run
    _p("install-network", "download piped to a shell", rb"curl\b[^\n|;]*\|\s*(?:ba|z)?sh\b", _ANY),
    _p("install-network", "download piped to a shell", rb"wget\b[^\n|;]*\|\s*(?:ba|z)?sh\b", _ANY),
)


def _table(members: bytes) -> bytes:
    return bytes(1 if i in members else 0 for i in range(256))


_B64 = _table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_B64URL = _table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_HEXDIGITS = _table(b"0123456789abcdefABCDEF")
_RUNS: tuple[tuple[str, bytes, int], ...] = (
    ("base64 string", _B64, 200),
    ("base64url string", _B64URL, 300),
    ("hex string", _HEXDIGITS, 300),
)
_OBFUSCATOR_ID = re.compile(rb"_0x[0-9a-f]{4,6}\b")


def _runs(data: bytes, table: bytes, minimum: int) -> Iterator[tuple[int, int]]:
    """Runs of at least ``minimum`` bytes from one alphabet: a translate plus ``find``, C speed."""
    mapped = data.translate(table)
    needle = b"\x01" * minimum
    pos = mapped.find(needle)
    while pos >= 0:
        stop = mapped.find(b"\x00", pos + minimum)
        end = len(mapped) if stop < 0 else stop
        yield pos, end
        pos = mapped.find(needle, end)


def _encoded(run: bytes) -> bool:
    """Looks like encoded data, not a long word: mixed classes and a wide alphabet."""
    return len(set(run[:4096])) >= 14 and any(48 <= c <= 57 for c in run[:4096])


# Network access, looked for only in files an install hook runs.
NETWORK = re.compile(
    rb"\b(?:https?\.(?:get|request)|net\.(?:connect|createConnection)|dns\.(?:lookup|resolve\w*)"
    rb"|XMLHttpRequest|WebSocket|urlopen|urllib\.request|requests\.(?:get|post)|socket\.socket"
    rb"|http\.client)\b|(?<![\w.$])fetch\s*\(|\b(?:curl|wget)\s"
    rb"|(?:require\s*\(\s*|from\s+|import\s+)['\"](?:node:)?(?:https?|net|dns|tls|dgram)['\"]",
)

# A decoder next to an exec: the packed-payload pattern in both languages.
DECODERS = re.compile(
    rb"b64decode|b32decode|b85decode|a85decode|fromhex|unhexlify|zlib\.decompress|bz2\.decompress"
    rb"|lzma\.decompress|codecs\.decode|marshal\.loads|rot_?13|\batob\s*\(|['\"]base64['\"]"
    rb"|fromCharCode|Buffer\.from\s*\(",
)

# A ``.pth`` line that starts with ``import`` runs when the interpreter starts.
PTH_IMPORT = re.compile(rb"^import[ \t]", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str
    label: str
    start: int
    end: int


def scan(data: bytes, lang: str, kinds: frozenset[str] | None = None) -> Iterator[Hit]:
    """Every pattern occurrence for ``lang`` (at most a few per pattern), plus ``decode-exec``
    for an exec with a decoder within a few lines. ``kinds`` limits the search."""
    for label, table, minimum in _RUNS if kinds is None or "encoded-string" in kinds else ():
        count = 0
        for start, end in _runs(data, table, minimum):
            if _encoded(data[start:end]):
                yield Hit("encoded-string", label, start, end)
                count += 1
                if count >= 3:
                    break
    want_obf = kinds is None or "obfuscator" in kinds
    ids = _OBFUSCATOR_ID.findall(data) if want_obf and lang == "js" and b"_0x" in data else []
    if len(ids) >= 12 and len(set(ids)) >= 4:
        m = _OBFUSCATOR_ID.search(data)
        if m:
            yield Hit("obfuscator", f"_0x identifiers ({len(ids)})", m.start(), m.end())
    for pattern in PATTERNS:
        if lang not in pattern.languages or (kinds is not None and pattern.kind not in kinds):
            continue
        count = 0
        for m in pattern.regex.finditer(data):
            start = m.start()
            if start and data[start - 1] in pattern.not_after:
                continue
            yield Hit(pattern.kind, pattern.label, start, m.end())
            if pattern.kind == "dynamic-exec" and pattern.label in _EXECS:
                window = data[max(0, start - 400) : m.end() + 400]
                if DECODERS.search(window):
                    yield Hit("decode-exec", pattern.label + " of decoded data", start, m.end())
            count += 1
            if count >= 3:
                break
    if lang == "pth":
        line = PTH_IMPORT.search(data)
        if line:
            yield Hit("pth-exec", ".pth import line", line.start(), line.end())


_EXECS = frozenset({"eval(", "new Function(", "Function( on non-literal", "exec(", "compile("})


def has_kind(data: bytes, lang: str, kind: str) -> bool:
    """Does ``data`` contain anything of ``kind``? (Used on the baseline, lazily.)"""
    if kind == "pth-exec":
        return lang == "pth" and PTH_IMPORT.search(data) is not None
    if kind == "network":
        return NETWORK.search(data) is not None
    wanted = frozenset({"dynamic-exec"}) if kind == "decode-exec" else frozenset({kind})
    return any(hit.kind == kind for hit in scan(data, lang, wanted))


def excerpt(data: bytes, start: int, end: int, width: int = 100) -> str:
    """A short, escaped, single-line excerpt starting a little before ``data[start:end]``."""
    line_start = data.rfind(b"\n", 0, start) + 1
    lo = max(line_start, start - 20)
    line_end = data.find(b"\n", start)
    hi = min(line_end if line_end >= 0 else len(data), lo + 2 * width)
    text = data[lo:hi].decode("utf-8", "replace")
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= width else shown[: width - 1] + "…"
