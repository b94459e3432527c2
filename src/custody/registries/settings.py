"""Where the registries are and how to authenticate: plain frozen data, resolved by config.py.

Secrets never appear in ``repr``: the fields holding them are excluded."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from custody.registries.urls import origin


@dataclass(frozen=True, slots=True)
class Auth:
    """Credentials for one registry: a bearer token, or a username and password."""

    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    source: str = ""  # where it came from, for messages ("~/.npmrc", "CUSTODY_NPM_TOKEN")

    def header(self) -> str | None:
        """The ``Authorization`` header value, or None when there is nothing to send."""
        if self.token:
            return f"Bearer {self.token}"
        if self.username is not None or self.password is not None:
            raw = f"{self.username or ''}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return None


def nerf_dart(url: str) -> str:
    """npm's credential key for a URL: ``//host[:port]/path/`` without scheme or file name."""
    parts = urlsplit(url)
    path = parts.path if parts.path.endswith("/") else parts.path.rsplit("/", 1)[0] + "/"
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"//{netloc}{path}"


@dataclass(frozen=True, slots=True)
class NpmSettings:
    """The npm registry (base URL with a trailing slash), per-scope registries, credentials keyed
    by npm's "nerf dart" (``//host/path/``)."""

    registry: str
    source: str  # which setting chose the registry ("CUSTODY_NPM_REGISTRY", a file path ...)
    scopes: Mapping[str, str] = field(default_factory=dict)  # "@scope" -> registry URL
    auth: Mapping[str, Auth] = field(default_factory=dict, repr=False)
    ca_file: str | None = None  # npmrc "cafile"

    def registry_for(self, package: str) -> str:
        if package.startswith("@"):
            scope = package.split("/", 1)[0].lower()
            if scope in self.scopes:
                return self.scopes[scope]
        return self.registry

    def auth_for(self, url: str) -> Auth | None:
        """Credentials for a request URL: the longest configured ``//host/path/`` prefix, the way
        npm walks up a registry path. Never crosses hosts."""
        if not self.auth:
            return None
        key = nerf_dart(url)
        while True:
            found = self.auth.get(key)
            if found is not None:
                return found
            if key.count("/") <= 3:  # "//host/"
                return None
            key = key[: key.rstrip("/").rfind("/") + 1]


@dataclass(frozen=True, slots=True)
class PypiSettings:
    """The PEP 503/691 index URL (``.../simple/``) and its credentials.

    ``auth`` is sent only to the index's own origin; ``netrc`` holds per-host credentials from
    ``~/.netrc`` (as pip uses them), including for file hosts."""

    index_url: str
    source: str
    auth: Auth | None = field(default=None, repr=False)
    netrc: Mapping[str, Auth] = field(default_factory=dict, repr=False)
    ca_file: str | None = None  # pip's "cert" (PIP_CERT or pip.conf)

    def auth_for(self, url: str) -> Auth | None:
        if self.auth is not None and origin(url) == origin(self.index_url):
            return self.auth
        host = urlsplit(url).hostname or ""
        return self.netrc.get(host.lower())


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Per ecosystem settings; None for an ecosystem that was not asked for."""

    npm: NpmSettings | None = None
    pypi: PypiSettings | None = None
    ca_files: tuple[str, ...] = ()  # extra trusted CA bundles, added to the system store
