"""The Sigstore trust root that signatures are checked against.

Offline (the default) uses the public-good instance's ``trusted_root.json`` that sigstore-python
keeps in its TUF cache (``<user cache dir>/sigstore-python/tuf/...``), which it seeds from the
copy embedded in the installed package: no request is sent. ``online=True`` first refreshes
that cache over TUF (signed metadata, rollback-protected), then verifies with the refreshed root;
later offline runs use the refreshed copy. If the cache directory cannot be written, the
embedded copy is read directly.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import logging
import threading

from sigstore.models import TrustedRoot
from sigstore.verify import Verifier

log = logging.getLogger(__name__)


class _QuietOffline(logging.Filter):
    """sigstore warns on every offline verifier it builds; offline is our default, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "offline mode" not in record.getMessage()


logging.getLogger("sigstore._internal.tuf").addFilter(_QuietOffline())

_EMBEDDED = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
_LOCK = threading.Lock()


class TrustRootUnavailable(Exception):
    """No trust root could be loaded (TUF refresh failed online, or no usable copy)."""


def sigstore_version() -> str:
    try:
        return importlib.metadata.version("sigstore")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def describe(online: bool) -> str:
    """How the trust root was obtained, for evidence and ``custody verify``."""
    how = "refreshed over TUF" if online else "offline: cached or embedded copy"
    return f"sigstore public-good trusted root (sigstore {sigstore_version()}, {how})"


def _embedded() -> Verifier:
    resource = importlib.resources.files("sigstore") / "_store" / _EMBEDDED / "trusted_root.json"
    with importlib.resources.as_file(resource) as path:
        return Verifier(trusted_root=TrustedRoot.from_file(str(path)))


@functools.cache
def _verifier(online: bool) -> Verifier:
    try:
        return Verifier.production(offline=not online)
    except OSError as exc:  # an unwritable cache dir: use the embedded copy as it ships
        if online:
            raise TrustRootUnavailable(f"cannot refresh the sigstore trust root: {exc}") from exc
        log.debug("sigstore cache unusable (%s); using the embedded trust root", exc)
        return _embedded()
    except Exception as exc:  # TUFError and friends
        if online:
            raise TrustRootUnavailable(f"cannot refresh the sigstore trust root: {exc}") from exc
        try:
            return _embedded()
        except Exception as inner:
            raise TrustRootUnavailable(f"no sigstore trust root: {inner}") from inner


def verifier(online: bool = False) -> Verifier:
    """The process-wide verifier (built once per mode; thread-safe). Raises
    ``TrustRootUnavailable``."""
    with _LOCK:
        return _verifier(online)
