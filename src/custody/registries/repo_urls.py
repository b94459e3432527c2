"""Normalise the many ways packages name their source repository to one comparable URL.

``github:o/r``, ``o/r``, ``git+https://github.com/o/r.git``, ``git@github.com:o/r.git``,
``{"url": ..., "directory": ...}`` all become ``https://github.com/o/r``: https scheme,
lower-cased host, no credentials, no ``.git``, no trailing slash, no fragment or sub-path on
the well-known forges (a monorepo's packages share one repository)."""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlsplit

_SHORTCUTS = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}
_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+\.[a-z]{2,}):(?!//)(.+)$", re.IGNORECASE)
_OWNER_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_TWO_SEGMENT_FORGES = {"github.com", "bitbucket.org"}


def normalise_repository(value: Any) -> str | None:
    """The repository URL in ``https://host/owner/repo`` form, or None when unrecognisable."""
    if isinstance(value, dict):
        value = value.get("url")
    if not isinstance(value, str):
        return None
    return _normalise_text(value)


@functools.lru_cache(maxsize=4096)
def _normalise_text(value: str) -> str | None:
    """Memoised: a packument repeats one repository string for each of its versions."""
    text = value.strip()
    if not text:
        return None
    scheme, sep, rest = text.partition(":")
    if sep and scheme.lower() in _SHORTCUTS and not rest.startswith("//"):
        return _finish(_SHORTCUTS[scheme.lower()], rest)
    if sep and scheme.lower() == "gist" and not rest.startswith("//"):
        return _finish("gist.github.com", rest)
    if _OWNER_REPO.match(text):  # npm's "owner/repo" shorthand means GitHub
        return _finish("github.com", text)
    scp = _SCP_LIKE.match(text)
    if scp and "://" not in text:
        return _finish(scp.group(1), scp.group(2))
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if not parts.hostname or "://" not in text:
        return None
    return _finish(parts.hostname, parts.path)


def _finish(host: str, path: str) -> str | None:
    host = host.lower().removeprefix("www.")
    path = path.split("#", 1)[0].split("?", 1)[0].strip("/")
    segments = [s for s in path.split("/") if s]
    if host in _TWO_SEGMENT_FORGES:
        segments = segments[:2]
    elif "-" in segments:  # GitLab: /group/sub/repo/-/tree/main
        segments = segments[: segments.index("-")]
    if not segments:
        return None
    segments[-1] = segments[-1].removesuffix(".git")
    if not segments[-1]:
        return None
    return f"https://{host}/" + "/".join(segments)
