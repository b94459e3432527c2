"""The parser worker process (``python -m custody.registries.parse_worker``); see ``parsing.py``.

It reads requests from stdin and writes answers to stdout, in order, each a frame: the two bytes
``MAGIC``, a 4-byte big-endian length, then msgpack. A request is ``[seq, kind, body, name,
registry, fetched_at, limit]`` (``seq`` numbers it; ``kind`` names one of ``PARSERS``, nothing
else can be called; ``body`` as the registry sent it, gzip or not; ``limit`` bounds its
inflated size); an answer is ``[seq, True, blob]`` (the msgpack-encoded history) or ``[seq,
False, message]`` (UTF-8) for a document the parser refused (``BadDocument``). Before any
answer the worker says it is ready with ``hello()``, an empty answer numbered ``HELLO_SEQ``,
once its imports are done: until then the parent parses in-process rather than queue documents
behind a starting interpreter. The magic and the echoed ``seq`` let the parent notice a stream
that lost or gained bytes instead of waiting for a length read from the middle of a document.
Any other failure ends the process: the parent then parses in-process.

Frames are read and written with ``custody.fdio`` on the raw descriptors, not through
``sys.stdout.buffer``: see there for the bytes a stopped and continued writer loses."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
import zlib
from collections.abc import Callable
from datetime import datetime

import msgspec

from custody.fdio import read_exactly, write_all
from custody.registries.documents import BadDocument
from custody.registries.gzipped import TooLarge, gunzip, is_gzip
from custody.registries.npm_packument import parse_packument_blob

PARSERS: dict[str, Callable[[bytes, str, str, datetime], bytes]] = {
    "npm-packument": parse_packument_blob,
}
MAGIC = b"\xc5\x7d"
HEADER = struct.Struct(">2sI")  # MAGIC, then the payload's length

_encoder = msgspec.msgpack.Encoder()
HELLO_SEQ = -1
_request = msgspec.msgpack.Decoder(type=tuple[int, str, bytes, str, str, datetime, int])


class OutOfStep(Exception):
    """A frame did not start with ``MAGIC``: the stream lost or gained bytes."""


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


def frame_size(header: bytes) -> int:
    """The payload length a frame header announces. Raises ``OutOfStep``."""
    magic, size = HEADER.unpack(header)
    if magic != MAGIC:
        raise OutOfStep(f"a frame began with {header!r}")
    return int(size)


def read_frame(fd: int) -> bytes | None:
    """One frame's payload; None at the end of the stream. Raises ``OutOfStep``."""
    header = read_exactly(fd, HEADER.size)
    if header is None:
        return None
    return read_exactly(fd, frame_size(header))


def frame(payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, len(payload)) + payload


def hello() -> bytes:
    """The frame a worker writes first: an empty answer numbered ``HELLO_SEQ``."""
    return frame(_encoder.encode([HELLO_SEQ, True, b""]))


def serve(inp: int, out: int) -> None:
    while (payload := read_frame(inp)) is not None:
        seq, kind, body, name, registry, fetched_at, limit = _request.decode(payload)
        try:
            blob = parse_request(kind, body, name, registry, fetched_at, limit)
            answer: list[object] = [seq, True, blob]
        except BadDocument as exc:
            answer = [seq, False, str(exc).encode()]
        write_all(out, frame(_encoder.encode(answer)))


PIPE_BYTES = 1 << 20
"""Capacity asked for both pipes (Linux's default is 64 KiB; 1 MiB is what an unprivileged
process may set). With 64 KiB the worker spent half its time blocked in ``write`` until the
parent's event loop, busy with downloads, came round to read an answer."""


def widen_pipes(*fds: int, size: int = PIPE_BYTES) -> None:
    """Best effort: where ``F_SETPIPE_SZ`` is missing (not Linux) or refused, the pipes stay as
    they are."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows)
        return
    setter = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setter is None:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setter, size)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    widen_pipes(sys.stdin.fileno(), sys.stdout.fileno())
    write_all(sys.stdout.fileno(), hello())
    serve(sys.stdin.fileno(), sys.stdout.fileno())
    # Every answer went out through write_all: nothing is buffered. Skipping the interpreter's
    # teardown ends the process at once, and the parent waits for that end (about 30 ms).
    os._exit(0)


if __name__ == "__main__":
    main()
