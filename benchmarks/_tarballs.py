"""Synthetic npm tarballs for the benchmark registry: small, distinct per release, and
deterministic, so the packuments can publish their digests and the registry can rebuild the
same bytes on request instead of storing 20,000 files.

Each is a gzipped tar with ``package/package.json`` and an 8 KB ``package/index.js`` (2 KB
compressed: the real packuments' tarballs are not in the fixtures)."""

from __future__ import annotations

import base64
import hashlib
import zlib

_MTIME = 499162500  # npm's fixed tarball mtime (1985-10-26)
_FILLER = b"".join(
    b"exports.f%d = (x) => x * %d + %d;\n" % (i, i * 7919 % 1000, i * 104729 % 977)
    for i in range(240)
)


def _member(path: bytes, data: bytes) -> bytes:
    header = bytearray(512)
    header[0 : len(path)] = path
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % len(data)
    header[136:148] = b"%011o\0" % _MTIME
    header[148:156] = b"        "  # the checksum counts its own field as spaces
    header[156:157] = b"0"
    header[257:265] = b"ustar\x0000"
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + data + b"\0" * (-len(data) % 512)


def tarball(name: str, version: str) -> bytes:
    """The tarball of ``name@version``: the same bytes every time."""
    manifest = b'{"name": "%s", "version": "%s", "main": "index.js"}\n' % (
        name.encode(),
        version.encode(),
    )
    index = b"// %s@%s\n%s" % (name.encode(), version.encode(), _FILLER)
    raw = _member(b"package/package.json", manifest) + _member(b"package/index.js", index)
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: gzip framing, mtime 0
    return deflate.compress(raw + b"\0" * 1024) + deflate.flush()


def tarball_path(name: str, version: str) -> str:
    """``name/-/basename-version.tgz``, npm's layout (``@scope/x/-/x-1.0.0.tgz``)."""
    return f"{name}/-/{name.rpartition('/')[2]}-{version}.tgz"


def parse_tarball_path(path: str) -> tuple[str, str] | None:
    """``(name, version)`` from a ``tarball_path``, or None."""
    name, sep, filename = path.partition("/-/")
    basename = name.rpartition("/")[2]
    if not sep or not filename.startswith(basename + "-") or not filename.endswith(".tgz"):
        return None
    return name, filename[len(basename) + 1 : -len(".tgz")]


def dist(registry: str, name: str, version: str) -> dict[str, object]:
    """The packument ``dist`` object for the tarball (``registry`` ends with a slash)."""
    data = tarball(name, version)
    return {
        "tarball": registry + tarball_path(name, version),
        "shasum": hashlib.sha1(data).hexdigest(),
        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
        "fileCount": 2,
    }
