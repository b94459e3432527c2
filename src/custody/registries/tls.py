"""The TLS context of registry requests: the system trust store (like pip with truststore, or
npm) plus configured CA bundles, built in a thread.

Loading the system store takes 20-50 ms. OpenSSL does it without holding the GIL, so a client
starts the build when its cache preload sees that the run will ask a registry
(``RegistryClient.preload``), and the first ``https`` request waits only for what is left of
it; a run answered from the cache never starts it. This module imports neither httpx nor the
transport. Contexts are shared by every client of a process (a run opens one for histories and
another for artifacts) and rebuilt when a CA bundle file changes."""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Versions = tuple[tuple[str, tuple[int, int] | None], ...]
"""Each CA bundle with its (mtime, size), None when it cannot be read: the sharing key."""

_KEPT = 8
_builds: dict[Versions, _Build] = {}
_lock = threading.Lock()


class _Build:
    """One context being built (or built) in a thread. Not a daemon: the interpreter waits
    for it (tens of milliseconds) before it finalizes, because a daemon thread still inside
    OpenSSL when a process exits early (an error raised right after the build started) could
    crash it (SIGSEGV)."""

    def __init__(self, versions: Versions) -> None:
        self._versions = versions
        self._context: ssl.SSLContext | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="custody-tls", daemon=False)
        self._thread.start()

    def _run(self) -> None:
        try:
            context = ssl.create_default_context()
            for path, _version in self._versions:
                try:
                    context.load_verify_locations(cafile=path)
                except (OSError, ssl.SSLError) as exc:
                    log.warning("ignoring CA bundle %s: %s", path, exc)
            self._context = context
        except BaseException as exc:  # raised in the thread that asks for the context
            self._failure = exc

    def result(self) -> ssl.SSLContext:
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        assert self._context is not None
        return self._context


def _versions(ca_files: tuple[str, ...]) -> Versions:
    out: list[tuple[str, tuple[int, int] | None]] = []
    for path in ca_files:
        try:
            stat = os.stat(path)
        except OSError:
            out.append((path, None))
        else:
            out.append((path, (stat.st_mtime_ns, stat.st_size)))
    return tuple(out)


def ssl_context_soon(ca_files: tuple[str, ...]) -> Callable[[], ssl.SSLContext]:
    """The shared context for ``ca_files``, its build started now if it is not under way or
    done: call the result to have it (it waits for the build if need be)."""
    versions = _versions(ca_files)
    with _lock:
        build = _builds.get(versions)
        if build is None:
            while len(_builds) >= _KEPT:
                del _builds[next(iter(_builds))]  # the oldest
            build = _builds[versions] = _Build(versions)
    return build.result


def ssl_context(ca_files: tuple[str, ...]) -> ssl.SSLContext:
    """The shared context for ``ca_files`` (built now if need be)."""
    return ssl_context_soon(ca_files)()
