"""Small URL helpers shared by the readers: redaction, origins, trailing slashes."""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urljoin, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """The URL with any ``user:password@`` part replaced by ``***@`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``(url_without_userinfo, username, password)``, both percent-decoded."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=host))
    return clean, unquote(user) or None, unquote(password) if sep else None


def with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` with the default port filled in, for same-origin checks."""
    parts: SplitResult = urlsplit(url)
    port = parts.port
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def parsed_url(value: str) -> SplitResult | None:
    """``value`` split into its parts; None when it cannot be (a broken IPv6 host, a port that
    is not a number from 0 to 65535): such a URL would fail on first use."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # validated only when asked for
    except ValueError:
        return None
    return parts


def join_url(base: str, href: str) -> str | None:
    """``href`` resolved against ``base``; None when the result cannot be parsed."""
    try:
        joined = urljoin(base, href)
    except ValueError:
        return None
    return joined if parsed_url(joined) is not None else None


def http_url_problem(value: str) -> str | None:
    """Why ``value`` is not a usable registry URL (for a message that never quotes it), or None."""
    parts = parsed_url(value)
    if parts is None:
        return "is not a valid URL (bad host or port)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    return None


def is_http_url(value: str) -> bool:
    return http_url_problem(value) is None
