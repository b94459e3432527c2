"""Registry bodies kept as the registry sent them, gzip-compressed.

Custody asks registries for ``Content-Encoding: gzip`` and keeps the compressed bytes: the
ledger stores them as they came (instead of inflating 50 MB of packuments and compressing them
again), and a parser worker inflates them on its own core. ``gunzip`` inflates with a limit
on the inflated size, so a small answer cannot expand into gigabytes (a decompression bomb)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

GZIP_MAGIC = b"\x1f\x8b"


class TooLarge(ValueError):
    """The inflated body would exceed the limit."""


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def content_coding(headers: Mapping[str, str]) -> str:
    """The ``Content-Encoding`` of an answer, lower-cased (codings are case-insensitive, RFC
    9110 8.4.1); "" when there is none. ``headers`` has lower-case names, as httpx gives them."""
    return headers.get("content-encoding", "").strip().lower()


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate a gzip body (every member of it). Raises ``TooLarge`` beyond ``limit`` bytes
    and ``zlib.error`` for a corrupt stream."""
    out: list[bytes] = []
    total = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        chunk = inflater.decompress(rest, limit - total + 1)
        total += len(chunk)
        if total > limit or inflater.unconsumed_tail:
            raise TooLarge(f"inflates to more than {limit // 2**20} MB")
        out.append(chunk)
        if not inflater.eof:
            raise zlib.error("truncated gzip stream")
        rest = inflater.unused_data.lstrip(b"\x00")  # trailing padding some servers send
    return b"".join(out)


def inflated_size(data: bytes) -> int:
    """The size the gzip trailer records (ISIZE, modulo 2**32): a good output buffer size."""
    return int.from_bytes(data[-4:], "little") if len(data) >= 18 else 0
