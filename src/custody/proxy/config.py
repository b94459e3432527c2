"""The proxy's settings: plain frozen data, built by the CLI (``custody proxy``) or by tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from custody.errors import InputError
from custody.registries.settings import NpmSettings, PypiSettings

ADMIN_TOKEN_ENV = "CUSTODY_PROXY_ADMIN_TOKEN"
UNKNOWN_PACKAGE_MODES = ("first-use", "policy")
MIN_ADMIN_TOKEN = 16


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    npm: NpmSettings | None
    """The npm upstream (base URL, per-scope registries, the proxy's own credentials)."""
    pypi: PypiSettings | None
    """The Python index upstream (``.../simple/``) and its credentials."""
    trust_file: Path | None = None
    """custody.toml; None: nothing trusted, the default policy."""
    database: str | None = None
    """Ledger URL (``sqlite:///...`` or ``postgresql://...``); None: the default SQLite file."""
    database_schema: str | None = None
    """PostgreSQL schema holding the ledger's tables."""
    audit_log: Path | None = None
    """JSON-lines audit log; None: decisions go to the ledger only."""
    admin_token: str | None = field(default=None, repr=False)
    """Bearer token of the admin API; None disables it."""
    allow_writes: bool = False
    """Pass npm publishes and other writes (PUT, POST, DELETE, ``/-/`` endpoints) upstream."""
    unknown_packages: str = "first-use"
    """Packages the trust file does not know: ``first-use`` trusts each package's first
    custodians and holds custody changes after them; ``policy`` judges them exactly as
    ``custody check`` does (``[policy] new-packages``)."""
    max_age: float = 60.0
    """Seconds upstream metadata is used before it is revalidated (a conditional request)."""
    stale_after: float = 3.0
    """Seconds a request waits for a revalidation before it is answered from the last good
    (filtered) copy, marked stale."""
    retry_after_error: float = 5.0
    """After an upstream failure, seconds before the upstream is asked again."""
    upstream_timeout: float = 10.0
    """Seconds per attempt to connect to and read from an upstream."""
    upstream_attempts: int = 2
    sync_interval: float = 1.0
    """Seconds between polls of the ledger (approvals made on other replicas, known-bad
    imports) and of the trust file's modification time."""
    judge_ttl: float = 600.0
    """Seconds a package's decisions are kept before it is judged again (time-weighed rules);
    sooner when a cooldown ends."""
    public_url: str | None = None
    """The URL clients reach the proxy at (behind a load balancer); default: from the request."""
    cache_dir: Path | None = None
    """Verified artifacts (tarballs, wheels) by digest; default: the user cache directory."""
    artifact_hosts: tuple[str, ...] | None = None
    """When set, artifacts are fetched only from the upstreams' own hosts and these."""
    max_artifact_bytes: int = 1024 * 1024 * 1024
    memory_cache_bytes: int = 64 * 1024 * 1024
    """In-memory copies of small artifacts, in total."""
    max_body_bytes: int = 64 * 1024 * 1024
    """Largest request body passed upstream (``--allow-writes``)."""
    audit_dedupe: float = 60.0
    """Seconds within which the same client seeing the same withheld version is logged once."""
    log_level: str = "info"
    ca_files: tuple[str, ...] = ()
    """CA bundles trusted besides the system store (CUSTODY_CA_FILE, SSL_CERT_FILE, ...)."""

    def __post_init__(self) -> None:
        if self.unknown_packages not in UNKNOWN_PACKAGE_MODES:
            raise InputError(
                f"unknown-packages must be one of {', '.join(UNKNOWN_PACKAGE_MODES)}; "
                f"got {self.unknown_packages!r}"
            )
        if self.npm is None and self.pypi is None:
            raise InputError("no upstream configured: give --npm-upstream or --pypi-upstream")
        if self.admin_token is not None and len(self.admin_token) < MIN_ADMIN_TOKEN:
            raise InputError(f"the admin token must have at least {MIN_ADMIN_TOKEN} characters")


def read_admin_token(path: Path | None, env: dict[str, str] | None = None) -> str | None:
    """The admin token from a file (first line, stripped) or ``CUSTODY_PROXY_ADMIN_TOKEN``."""
    environ = env if env is not None else dict(os.environ)
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read the admin token: {exc.strerror or exc}", path=str(path)
            ) from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise InputError("the admin token file is empty", path=str(path))
        return token
    token = environ.get(ADMIN_TOKEN_ENV, "").strip()
    return token or None
