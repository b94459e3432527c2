"""The parser worker process (``python -m custody.registries.parse_worker``); see ``parsing.py``.

It reads requests from stdin and writes answers to stdout, in order, each a frame: a 4-byte
big-endian length, then msgpack. A request is ``[kind, body, name, registry, fetched_at,
limit]`` (``kind`` names one of ``PARSERS``, nothing else can be called; ``body`` as the
registry sent it, gzip or not; ``limit`` bounds its inflated size); an answer is ``[True, blob]``
(the msgpack-encoded history) or ``[False, message]`` (UTF-8) for a document the parser
refused (``BadDocument``). Any other failure ends the process: the parent then parses in-process."""

from __future__ import annotations

import signal
import struct
import sys
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

import msgspec

from custody.registries.gzipped import TooLarge, gunzip, is_gzip
from custody.registries.http import BadDocument
from custody.registries.npm_packument import parse_packument_blob

PARSERS: dict[str, Callable[[bytes, str, str, datetime], bytes]] = {
    "npm-packument": parse_packument_blob,
}
HEADER = struct.Struct(">I")

_encoder = msgspec.msgpack.Encoder()
_request = msgspec.msgpack.Decoder(type=tuple[str, bytes, str, str, datetime, int])


def parse_request(
    kind: str, body: bytes, name: str, registry: str, fetched_at: datetime, limit: int
) -> bytes:
    """Inflate ``body`` if it is gzip, parse it with ``PARSERS[kind]``, return the encoded
    history. Raises ``BadDocument`` (a corrupt stream or a decompression bomb included)."""
    if is_gzip(body):
        try:
            body = gunzip(body, limit)
        except (TooLarge, zlib.error) as exc:
            raise BadDocument(f"{name}: {exc}") from None
    return PARSERS[kind](body, name, registry, fetched_at)


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame's payload; None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    while (payload := read_frame(inp)) is not None:
        try:
            answer: list[object] = [True, parse_request(*_request.decode(payload))]
        except BadDocument as exc:
            answer = [False, str(exc).encode()]
        out.write(frame(_encoder.encode(answer)))
        out.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
