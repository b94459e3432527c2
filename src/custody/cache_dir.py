"""Where Custody keeps what it downloads and derives: ``CUSTODY_CACHE_DIR``, else the user cache
directory. The ledger, the artifact and comparison caches, source clones and the proxy's
artifacts all live under it (light to import: no SQLAlchemy, no HTTP)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_DIR_ENV = "CUSTODY_CACHE_DIR"


def cache_base() -> Path:
    """``CUSTODY_CACHE_DIR`` if set, else the user cache directory for ``custody``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or platformdirs.user_cache_dir("custody"))
