"""Everything one proxy process holds: settings, ledger, trust file, reviews, upstreams, caches,
audit trail and metrics; and the background loop that keeps the shared parts in step."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from starlette.requests import Request

from custody.cache_dir import cache_base
from custody.ledger import Ledger, open_ledger
from custody.proxy.artifacts import ArtifactStore
from custody.proxy.audit import AuditLog
from custody.proxy.config import ProxyConfig
from custody.proxy.metrics import Metrics
from custody.proxy.reviews import Reviews
from custody.proxy.store import PackageStore, StoreSettings
from custody.proxy.trustwatch import TrustWatcher
from custody.proxy.upstream import Upstreams

log = logging.getLogger("custody.proxy")


def _tls_context(ca_files: tuple[str, ...]) -> ssl.SSLContext:
    """The system trust store plus the configured CA bundles, as the registry client uses."""
    context = ssl.create_default_context()
    for path in ca_files:
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            log.warning("ignoring CA bundle %s: %s", path, exc)
    return context


def default_cache_dir() -> Path:
    return cache_base() / "proxy-artifacts"


@dataclass
class ProxyState:
    config: ProxyConfig
    ledger: Ledger
    trust: TrustWatcher
    reviews: Reviews
    metrics: Metrics
    audit: AuditLog
    upstreams: Upstreams
    artifacts: ArtifactStore
    store: PackageStore
    http: httpx.AsyncClient  # writes passed upstream (--allow-writes); never follows redirects
    started: float = field(default_factory=time.time)
    sync_error: str | None = None
    index_cache: tuple[float, list[str]] | None = None
    last_sync: float = 0.0
    _task: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, config: ProxyConfig) -> ProxyState:
        """Open the ledger and load the trust file (raises ``InputError`` on a bad one)."""
        trust = TrustWatcher(config.trust_file)
        ledger = open_ledger(config.database, schema=config.database_schema)
        try:
            reviews = Reviews()
            reviews.apply(ledger.reviews_since(0))
            marker = ledger.proxy_state_marker()
            metrics = Metrics()
            audit = AuditLog(config.audit_log, ledger, dedupe=config.audit_dedupe)
            own = (
                config.npm.ca_file if config.npm else None,
                config.pypi.ca_file if config.pypi else None,
            )
            ca_files = tuple(dict.fromkeys([*config.ca_files, *(f for f in own if f)]))
            upstreams = Upstreams(
                config.npm,
                config.pypi,
                ledger,
                timeout=config.upstream_timeout,
                attempts=config.upstream_attempts,
                ca_files=ca_files,
                artifact_hosts=config.artifact_hosts,
            )
            tls = _tls_context(ca_files)
            artifacts = ArtifactStore(
                config.cache_dir or default_cache_dir(),
                memory_bytes=config.memory_cache_bytes,
                max_bytes=config.max_artifact_bytes,
                timeout=max(30.0, config.upstream_timeout),
                verify=tls,
            )
            http = httpx.AsyncClient(
                follow_redirects=False,
                timeout=httpx.Timeout(120.0, connect=config.upstream_timeout),
                verify=tls,
            )
            store = PackageStore(
                StoreSettings(
                    max_age=config.max_age,
                    stale_after=config.stale_after,
                    retry_after_error=config.retry_after_error,
                    judge_ttl=config.judge_ttl,
                    unknown_packages=config.unknown_packages,
                ),
                upstreams,
                ledger,
                trust,
                reviews,
                metrics,
            )
            store.known_bad = (marker.known_bad, marker.known_bad_imported)
        except BaseException:
            ledger.close()
            raise
        return cls(
            config, ledger, trust, reviews, metrics, audit, upstreams, artifacts, store, http
        )

    # -- background sync ------------------------------------------------------------------

    async def start(self) -> None:
        self.audit.start()
        self._task = asyncio.create_task(self._sync_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.store.aclose()
        await self.artifacts.aclose()
        await self.http.aclose()
        await self.upstreams.aclose()
        self.audit.close()
        self.ledger.close()

    async def sync(self) -> None:
        """Reload a changed trust file; take in reviews made on other replicas and notice new
        known-bad records."""
        before = self.trust.error
        if self.trust.poll():
            self.metrics.trust_reloads.labels("applied").inc()
        elif self.trust.error is not None and self.trust.error != before:
            self.metrics.trust_reloads.labels("error").inc()
        try:
            marker = await asyncio.to_thread(self.ledger.proxy_state_marker)
            if marker.reviews > self.reviews.last_id:
                fresh = await asyncio.to_thread(self.ledger.reviews_since, self.reviews.last_id)
                self.reviews.apply(fresh)
            self.store.known_bad = (marker.known_bad, marker.known_bad_imported)
            self.sync_error = None
            self.last_sync = time.time()
        except Exception as exc:
            self.sync_error = (
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
            log.error("ledger sync failed: %s", self.sync_error)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sync_interval)
            await self.sync()


def state_of(request: Request) -> ProxyState:
    state: ProxyState = request.app.state.proxy
    return state
