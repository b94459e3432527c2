"""The trust file as the proxy sees it: loaded at start, reloaded when it changes on disk.

A file that no longer parses is not applied: the proxy keeps judging with the last good version,
reports the error on ``/healthz`` and in the log, and counts it in the metrics, until the file is
fixed. A proxy started with a broken file does not start."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from custody.errors import InputError
from custody.trust import EMPTY_TRUST, TrustFile, load_trust_file

log = logging.getLogger("custody.proxy")


@dataclass(frozen=True, slots=True)
class LoadedTrust:
    trust: TrustFile
    version: str  # a digest of the file's bytes ("builtin" without a file)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class TrustWatcher:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.error: str | None = None
        self.reloads = 0
        self._stamp = _stamp(path) if path is not None else None
        self.current = self._load()  # raises InputError: a proxy does not start on a bad file

    def _load(self) -> LoadedTrust:
        if self.path is None:
            return LoadedTrust(EMPTY_TRUST, "builtin")
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", path=str(self.path)) from None
        trust = load_trust_file(self.path)
        return LoadedTrust(trust, hashlib.sha256(data).hexdigest()[:16])

    def poll(self) -> bool:
        """Reload when the file changed on disk; True when a new version was applied."""
        if self.path is None:
            return False
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            self.error = f"{self.path} is missing; still using the version loaded before"
            log.error("trust file: %s", self.error)
            return False
        try:
            loaded = self._load()
        except InputError as exc:
            self.error = f"{exc}; still using the version loaded before"
            log.error("trust file not reloaded: %s", self.error)
            return False
        self.error = None
        if loaded.version == self.current.version:
            return False
        self.current = loaded
        self.reloads += 1
        log.info("trust file reloaded: %s (version %s)", self.path, loaded.version)
        return True
