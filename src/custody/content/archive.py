"""Read package archives (npm ``.tgz``, wheels, sdists) fully in memory, refusing hostile ones.

Nothing is extracted to disk, executed or imported. Every read is bounded: decompression runs in
chunks against a shared budget (total bytes, file count, per-file size, compression ratio,
nesting depth) and stops the moment a limit is crossed, whatever the headers claim. A hostile or
broken archive yields an ``ArchiveRefusal`` (never an exception), which the content signal turns
into a ``content.unsafe-archive`` finding.

Paths are normalised to ``/``-separated relative paths. The single top-level folder of a tarball
or sdist zip (``package/`` for npm, ``name-1.0/`` for an sdist) is stripped and kept as
``root``, so releases whose tarballs use different roots compare file by file; wheels keep their
paths. Members of nested archives (a ``.tgz`` or ``.zip`` inside the package) are listed as
``outer.zip!/inner/path`` up to ``max_depth`` levels; a nested archive that cannot be read stays
an opaque file (package managers never open it), but a nested bomb or too deep a nesting refuses
the whole archive.
"""

from __future__ import annotations

import bz2
import io
import itertools
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, Any, Literal, Protocol

# The budgets live in limits.py (light to import); re-exported here where they are used.
from custody.content.limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from custody.content.limits import SDIST_LIMITS as SDIST_LIMITS
from custody.content.limits import ArchiveLimits as ArchiveLimits
from custody.content.limits import MiB as MiB

RefusalReason = Literal[
    "path-traversal",  # .., absolute paths, drive letters, backslashes escaping the root
    "link",  # symlink or hardlink (anywhere in npm tarballs and wheels; escaping, in sdists)
    "special-file",  # device, FIFO, sparse or unknown member type
    "duplicate-name",  # two members with the same normalised path
    "too-large",  # total uncompressed bytes, or one file, over the limit
    "too-many-files",
    "compression-ratio",  # a decompression bomb
    "too-deep",  # nested archives deeper than max_depth
    "overlapping-entries",  # zip entries sharing bytes (the "better zip bomb")
    "trailing-data",  # bytes after the end of the compressed stream or zip
    "truncated",  # the compressed stream or tar ends early
    "corrupt",  # bad checksum, bad header, unsupported compression or encryption
    "unknown-format",
]

# Bomb-type reasons: inside a nested archive these refuse the outer one as well.
_RESOURCE_REASONS = frozenset({"too-large", "too-many-files", "compression-ratio", "too-deep"})


@dataclass(frozen=True, slots=True)
class ArchiveContents:
    """The files of a readable archive."""

    format: str  # "tar.gz", "tar.bz2", "tar.xz", "tar", "zip"
    files: Mapping[str, bytes]  # normalised path -> content (read-only mapping)
    root: str | None = None  # stripped top-level folder ("package"), if any
    links: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    compressed_size: int = 0

    @property
    def total_size(self) -> int:
        return sum(len(b) for b in self.files.values())


@dataclass(frozen=True, slots=True)
class ArchiveRefusal:
    """Why an archive was not read. ``member`` names the offending entry when there is one."""

    reason: RefusalReason
    detail: str
    member: str | None = None
    limit: int | float | None = None
    value: int | float | None = None

    def evidence(self) -> dict[str, object]:
        out: dict[str, object] = {"reason": self.reason, "detail": self.detail}
        if self.member is not None:
            out["member"] = escape(self.member, 200)
        if self.limit is not None:
            out["limit"] = self.limit
        if self.value is not None:
            out["value"] = self.value
        return out


ArchiveResult = ArchiveContents | ArchiveRefusal


class _Refused(Exception):
    def __init__(self, refusal: ArchiveRefusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


def _refuse(
    reason: RefusalReason,
    detail: str,
    member: str | None = None,
    limit: float | None = None,
    value: float | None = None,
) -> _Refused:
    return _Refused(ArchiveRefusal(reason, detail, member, limit, value))


def escape(text: str, limit: int = 120) -> str:
    """A short printable form of untrusted text for messages and evidence."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


class _Budget:
    """Counters shared by one archive and its nested archives."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.total = 0
        self.files = 0

    def count_member(self, name: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise _refuse(
                "too-many-files",
                f"more than {self.limits.max_files} members",
                name,
                self.limits.max_files,
                self.files,
            )

    def add_bytes(self, n: int, name: str | None) -> None:
        self.total += n
        if self.total > self.limits.max_total:
            raise _refuse(
                "too-large",
                f"more than {self.limits.max_total // MiB} MiB uncompressed",
                name,
                self.limits.max_total,
                self.total,
            )


# ------------------------------------------------------------------------------ paths

_DRIVE = re.compile(r"^[A-Za-z]:")


def _normalise(raw: str) -> str:
    """A safe relative ``/`` path, or ``_Refused`` when ``raw`` could land outside the tree."""
    if "\x00" in raw:
        raise _refuse("path-traversal", "NUL byte in member name", raw)
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        raise _refuse("path-traversal", "absolute member path", raw)
    parts = [p for p in re.split(r"[/\\]", raw) if p not in ("", ".")]
    if ".." in parts:
        raise _refuse("path-traversal", "member path climbs out with ..", raw)
    return "/".join(parts)


def _link_escapes(member: str, target: str, hard: bool) -> bool:
    """Would a link named ``member`` pointing at ``target`` resolve outside the tree?"""
    if target.startswith(("/", "\\")) or _DRIVE.match(target) or "\x00" in target:
        return True
    base = [] if hard else re.split(r"[/\\]", member)[:-1]
    depth = len([p for p in base if p not in ("", ".")])
    for part in re.split(r"[/\\]", target):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False


def _strip_root(files: dict[str, bytes], links: dict[str, str]) -> tuple[str | None, bool]:
    """The single top-level folder every member shares, if any."""
    names = [*files, *links]
    if not names:
        return None, False
    first = names[0].split("/", 1)[0]
    if all("/" in n and n.split("/", 1)[0] == first for n in names):
        return first, True
    return None, False


# ------------------------------------------------------------------------------ decompression


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _ZlibAdapter:
    """zlib's decompressobj behind the bz2/lzma interface (``needs_input``)."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._d.unconsumed_tail

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if not data:
            data = self._d.unconsumed_tail
        return self._d.decompress(data, max(max_length, 0))


_MAGIC = {
    b"\x1f\x8b": "gz",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
}

_CHUNK_IN = 256 * 1024
_CHUNK_OUT = 4 * MiB


def _new_decompressor(kind: str) -> _Decompressor:
    if kind == "gz":
        return _ZlibAdapter()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


class _Inflater(io.RawIOBase):
    """A read-only stream of the decompressed bytes, produced in bounded chunks with the limits
    checked as they come (total size, ratio), concatenated members joined. ``finish()`` reads
    to the end and refuses a truncated stream or bytes after it."""

    def __init__(self, data: bytes, kind: str, budget: _Budget, name: str) -> None:
        super().__init__()
        self._data = data
        self._kind = kind
        self._magic = next(m for m, k in _MAGIC.items() if k == kind)
        self._limits = budget.limits
        self._cap = max(0, budget.limits.max_total - budget.total)
        self._name = name
        self._d = _new_decompressor(kind)
        self._pos = 0  # compressed bytes handed to the decompressor
        self._piece = b""
        self._off = 0
        self.produced = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._off >= len(self._piece) and not self._done:
            self._fill()
        chunk = self._piece[self._off : self._off + len(view)]
        self._off += len(chunk)
        view[: len(chunk)] = chunk
        return len(chunk)

    def finish(self) -> None:
        while not self._done:
            self._fill()

    def _fill(self) -> None:
        try:
            self._step()
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
            raise _refuse("corrupt", f"bad compressed data: {exc}", self._name) from None

    def _step(self) -> None:
        d, data = self._d, self._data
        self._piece, self._off = b"", 0
        if d.eof:
            rest = d.unused_data + data[self._pos :]
            if not rest or not rest.strip(b"\x00"):
                self._done = True  # end of stream, or zero padding (allowed by gzip)
                return
            if not rest.startswith(self._magic):
                raise _refuse(
                    "trailing-data",
                    f"{len(rest)} bytes after the end of the compressed stream",
                    self._name,
                )
            self._d = _new_decompressor(self._kind)  # another member (gzip/bz2 concatenation)
            self._data, self._pos = rest, 0
            return
        if d.needs_input and self._pos < len(data):
            chunk = data[self._pos : self._pos + _CHUNK_IN]
            self._pos += len(chunk)
        else:
            chunk = b""
        piece = d.decompress(chunk, _CHUNK_OUT)
        if not piece and not chunk and not d.eof and d.needs_input:
            raise _refuse("truncated", "the compressed stream ends early", self._name)
        self.produced += len(piece)
        limits = self._limits
        if self.produced > self._cap:
            raise _refuse(
                "too-large",
                f"more than {limits.max_total // MiB} MiB uncompressed",
                self._name,
                limits.max_total,
                self.produced,
            )
        consumed = max(self._pos, 1)
        if self.produced > limits.ratio_min_size and self.produced > limits.max_ratio * consumed:
            raise _refuse(
                "compression-ratio",
                f"compression ratio above {limits.max_ratio:g}:1",
                self._name,
                limits.max_ratio,
                round(self.produced / consumed, 1),
            )
        self._piece = piece


# ------------------------------------------------------------------------------ formats

_NESTED_SUFFIXES = (".tgz", ".tar.gz", ".tar.bz2", ".tar.xz", ".tar", ".zip", ".whl", ".jar")


def _detect(data: bytes) -> str | None:
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "tar"
    return None


def _read_tar(stream: IO[bytes], budget: _Budget, limits: ArchiveLimits, outer: str) -> _Tree:
    """Walk a tar stream member by member (``r|``: nothing seeks, nothing is kept but the
    files' bytes), reading each member's data as it comes."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 (closed below)
    except tarfile.TarError as exc:
        raise _refuse("corrupt", f"not a readable tar: {exc}", outer or None) from None
    with tar:
        while True:
            try:
                member = tar.next()
            except tarfile.TarError as exc:
                text = str(exc)
                reason: RefusalReason = "truncated" if "end of" in text else "corrupt"
                raise _refuse(reason, f"bad tar header: {text}", outer or None) from None
            if member is None:
                break
            shown = outer + member.name
            budget.count_member(shown)
            path = _normalise(member.name)
            if member.isdir():
                continue
            if path in files or path in links:
                raise _refuse("duplicate-name", "two members with the same path", shown)
            if member.issym() or member.islnk():
                kind = "hardlink" if member.islnk() else "symlink"
                if not limits.internal_links or _link_escapes(
                    member.name, member.linkname, member.islnk()
                ):
                    raise _refuse("link", f"{kind} to {escape(member.linkname, 80)}", shown)
                links[path] = member.linkname
                continue
            if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
                what = {
                    tarfile.CHRTYPE: "character device",
                    tarfile.BLKTYPE: "block device",
                    tarfile.FIFOTYPE: "FIFO",
                    tarfile.GNUTYPE_SPARSE: "sparse file",
                }.get(member.type, f"member of type {member.type!r}")
                raise _refuse("special-file", what, shown)
            if member.issparse():
                raise _refuse("special-file", "sparse file", shown)
            if member.size > limits.max_file:
                raise _refuse(
                    "too-large",
                    f"one file over {limits.max_file // MiB} MiB",
                    shown,
                    limits.max_file,
                    member.size,
                )
            budget.add_bytes(member.size, shown)
            handle = tar.extractfile(member)
            try:
                data = handle.read() if handle is not None else b""
            except tarfile.TarError as exc:
                raise _refuse("truncated", f"member data: {exc}", shown) from None
            if len(data) != member.size:
                raise _refuse("truncated", "a member's data runs past the end", shown)
            files[path] = data
    return _Tree(files, links)


def _zip_end(data: bytes) -> int:
    """Where the end-of-central-directory record (with its comment) ends, or -1."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if at < 0 or at + 22 > len(data):
        return -1
    comment_len = int.from_bytes(data[at + 20 : at + 22], "little")
    return at + 22 + comment_len


def _read_zip(data: bytes, budget: _Budget, limits: ArchiveLimits, outer: str) -> _Tree:
    name = outer or None
    end = _zip_end(data)
    if end < 0:
        raise _refuse("corrupt", "no zip end record", name)
    if end != len(data):
        raise _refuse("trailing-data", f"{len(data) - end} bytes after the zip end record", name)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise _refuse("corrupt", f"not a readable zip: {exc}", name) from None
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    with zf:
        infos = zf.infolist()
        if budget.files + len(infos) > limits.max_files:
            raise _refuse(
                "too-many-files",
                f"more than {limits.max_files} members",
                name,
                limits.max_files,
                budget.files + len(infos),
            )
        _check_overlap(infos, name)
        for info in infos:
            shown = outer + info.filename
            budget.count_member(shown)
            path = _normalise(info.filename)
            if info.is_dir():
                continue
            if path in files or path in links:
                raise _refuse("duplicate-name", "two members with the same path", shown)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _refuse("link", "symlink entry in a zip", shown)
            if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise _refuse("special-file", f"member of mode {oct(mode)}", shown)
            if info.flag_bits & 0x1:
                raise _refuse("corrupt", "encrypted member", shown)
            if info.file_size > limits.max_file:
                raise _refuse(
                    "too-large",
                    f"one file over {limits.max_file // MiB} MiB",
                    shown,
                    limits.max_file,
                    info.file_size,
                )
            files[path] = _read_zip_member(zf, info, budget, limits, shown)
    return _Tree(files, links)


def _check_overlap(infos: list[zipfile.ZipInfo], name: str | None) -> None:
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for a, b in itertools.pairwise(ordered):
        if a.header_offset + 30 + a.compress_size > b.header_offset:
            raise _refuse("overlapping-entries", "zip entries share bytes", b.filename)


def _read_zip_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, limits: ArchiveLimits, shown: str
) -> bytes:
    """Read one member in chunks, counting real bytes (headers can lie)."""
    chunks: list[bytes] = []
    size = 0
    try:
        with zf.open(info) as fh:
            while True:
                piece = fh.read(_CHUNK_OUT)
                if not piece:
                    break
                size += len(piece)
                budget.add_bytes(len(piece), shown)
                if size > limits.max_file:
                    raise _refuse(
                        "too-large",
                        f"one file over {limits.max_file // MiB} MiB",
                        shown,
                        limits.max_file,
                        size,
                    )
                if size > limits.ratio_min_size and size > limits.max_ratio * max(
                    info.compress_size, 1
                ):
                    raise _refuse(
                        "compression-ratio",
                        f"compression ratio above {limits.max_ratio:g}:1",
                        shown,
                        limits.max_ratio,
                        round(size / max(info.compress_size, 1), 1),
                    )
                chunks.append(piece)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
        raise _refuse("corrupt", f"unreadable member: {exc}", shown) from None
    except NotImplementedError as exc:
        raise _refuse("corrupt", f"unsupported compression: {exc}", shown) from None
    return b"".join(chunks)


@dataclass(slots=True)
class _Tree:
    files: dict[str, bytes]
    links: dict[str, str]


def _read(
    data: bytes, budget: _Budget, limits: ArchiveLimits, depth: int, outer: str
) -> tuple[str, _Tree]:
    if depth > limits.max_depth:
        raise _refuse(
            "too-deep",
            f"archives nested more than {limits.max_depth} deep",
            outer.rstrip("!/") or None,
            limits.max_depth,
            depth,
        )
    kind = _detect(data)
    if kind is None:
        raise _refuse("unknown-format", "not a tar, gzip, bzip2, xz or zip archive", outer or None)
    if kind == "zip":
        tree = _read_zip(data, budget, limits, outer)
        return "zip", tree
    if kind == "tar":
        return "tar", _read_tar(io.BytesIO(data), budget, limits, outer)
    inflater = _Inflater(data, kind, budget, outer.rstrip("!/") or "archive")
    stream = io.BufferedReader(inflater, buffer_size=256 * 1024)
    if _detect(stream.peek(262)[:262]) in ("gz", "bz2", "xz"):
        raise _refuse("too-deep", "a compressed stream inside a compressed stream", outer or None)
    tree = _read_tar(stream, budget, limits, outer)
    inflater.finish()  # the rest of the stream: tar padding, then nothing
    return f"tar.{kind}", tree


def _open_nested(
    tree: _Tree, budget: _Budget, limits: ArchiveLimits, depth: int, outer: str
) -> None:
    """Add the members of archives found inside ``tree`` as ``inner!/path`` entries."""
    for path, data in list(tree.files.items()):
        if not path.lower().endswith(_NESTED_SUFFIXES) or _detect(data) is None:
            continue
        prefix = f"{path}!/"
        try:
            _fmt, inner = _read(data, budget, limits, depth + 1, outer + prefix)
            _open_nested(inner, budget, limits, depth + 1, outer + prefix)
        except _Refused as exc:
            if exc.refusal.reason in _RESOURCE_REASONS:
                raise
            continue  # an unreadable nested archive stays an opaque file
        for name, content in inner.files.items():
            tree.files[prefix + name] = content


def read_archive(
    data: bytes, *, strip_root: bool = True, limits: ArchiveLimits = DEFAULT_LIMITS
) -> ArchiveResult:
    """Read an archive from memory. Never raises for bad input: hostile or broken archives come
    back as ``ArchiveRefusal``. ``strip_root`` drops a single shared top-level folder (tarballs,
    sdists); pass False for wheels."""
    budget = _Budget(limits)
    try:
        fmt, tree = _read(data, budget, limits, 1, "")
        root = None
        if strip_root:
            root, _ = _strip_root(tree.files, tree.links)
            if root is not None:
                cut = len(root) + 1
                tree = _Tree(
                    {k[cut:]: v for k, v in tree.files.items()},
                    {k[cut:]: v for k, v in tree.links.items()},
                )
        _open_nested(tree, budget, limits, 1, "")
    except _Refused as exc:
        return exc.refusal
    except (RecursionError, MemoryError):
        return ArchiveRefusal("too-deep", "archive structure too deep or too large to read")
    return ArchiveContents(
        format=fmt,
        files=MappingProxyType(tree.files),
        root=root,
        links=MappingProxyType(tree.links),
        compressed_size=len(data),
    )
