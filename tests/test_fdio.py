"""Whole writes and reads on a descriptor, however short each system call comes back."""

from __future__ import annotations

import os
import threading

import pytest

from custody import fdio


def test_write_all_writes_what_short_writes_left(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    calls = []

    def short_write(fd: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data)[:7])  # the kernel may write fewer bytes than asked

    monkeypatch.setattr(fdio.os, "write", short_write)
    data = bytes(range(256)) * 40
    read_end, write_end = os.pipe()
    received: list[bytes | None] = []
    reader = threading.Thread(
        target=lambda: received.append(fdio.read_exactly(read_end, len(data)))
    )
    reader.start()
    try:
        fdio.write_all(write_end, data)
    finally:
        reader.join()
        os.close(read_end)
        os.close(write_end)
    assert received == [data]
    assert len(calls) == -(-len(data) // 7)


def test_read_exactly_joins_short_reads_and_reports_an_early_end() -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"abc")
        os.write(write_end, b"def")
        assert fdio.read_exactly(read_end, 5) == b"abcde"
        os.close(write_end)
        assert fdio.read_exactly(read_end, 2) is None  # one byte, then the end
        assert fdio.read_exactly(read_end, 1) is None
        assert fdio.read_exactly(read_end, 0) == b""
    finally:
        os.close(read_end)
