"""An exclusive lock on a trust file while it is read, changed and written back, so that two
``custody approve`` runs at once both keep their entry (without it the last writer wins).

The lock is ``fcntl.flock`` on a lock file beside the trust file (``.custody.toml.lock``; the
trust file itself is replaced on every save, so it cannot carry the lock). The holder deletes
the lock file when it is done, so none is left behind in the project; a process that was
waiting on the deleted file sees that it is gone once it gets the lock, and tries again on a
new one. A lock file left by a process that was killed is simply used and deleted by the next
edit (``flock`` locks end with their process). Where the platform has no ``fcntl``, there is
no lock; the editor still refuses to overwrite a file that changed since it was read."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from custody.errors import TrustFileError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_TIMEOUT = 10.0
"""Seconds to wait for another process to finish its edit."""


def lock_path(target: Path) -> Path:
    """The lock file of the trust file ``target`` (a resolved path)."""
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def locked(
    target: Path, *, shown: Path | None = None, timeout: float = LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold the exclusive lock of the trust file ``target`` (a resolved path); ``shown`` is
    the path to name in messages. Raises :class:`TrustFileError` when the lock cannot be made
    or another process holds it for longer than ``timeout`` seconds."""
    where = str(shown or target)
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = lock_path(target)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise TrustFileError(
                f"cannot lock it for editing ({path}): {exc.strerror or exc}", path=where
            ) from None
        try:
            _wait(fd, deadline)
            held = os.fstat(fd)
            current = os.stat(path)
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                break
        except FileNotFoundError:
            pass  # the holder before us deleted it: lock a new one
        except BlockingIOError:
            os.close(fd)
            raise TrustFileError(
                f"another process has been editing it for {timeout:g} s (it holds the lock "
                f"on {path}); try again when it is done",
                path=where,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # releases the lock


def _wait(fd: int, deadline: float) -> None:
    """``flock`` ``fd`` exclusively, polling until ``deadline`` (then ``BlockingIOError``)."""
    assert fcntl is not None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
