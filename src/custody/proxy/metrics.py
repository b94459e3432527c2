"""Prometheus metrics at ``/metrics`` (one registry per app, so several apps can share a
process in tests). Label values are bounded: routes are templates, never raw paths."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "custody_proxy_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "custody_proxy_request_seconds",
            "Time to answer a request, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.withheld = Counter(
            "custody_proxy_withheld_versions",
            "Versions removed from metadata answers (held or blocked), by ecosystem and action.",
            ["ecosystem", "action"],
            registry=r,
        )
        self.refused = Counter(
            "custody_proxy_refused_artifacts",
            "Artifact downloads refused (403), by ecosystem and action.",
            ["ecosystem", "action"],
            registry=r,
        )
        self.held = Gauge(
            "custody_proxy_held_releases",
            "Releases held or blocked among the packages this replica has judged.",
            ["ecosystem"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "custody_proxy_upstream_errors",
            "Upstream failures (after retries), by ecosystem and kind.",
            ["ecosystem", "kind"],
            registry=r,
        )
        self.stale = Counter(
            "custody_proxy_stale_responses",
            "Metadata answered from the last good filtered copy because the upstream failed "
            "or was slow.",
            ["ecosystem"],
            registry=r,
        )
        self.judgements = Counter(
            "custody_proxy_judgements",
            "Packages judged (every version), by ecosystem.",
            ["ecosystem"],
            registry=r,
        )
        self.judge_seconds = Histogram(
            "custody_proxy_judge_seconds",
            "Time to judge every version of a package.",
            ["ecosystem"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "custody_proxy_cache",
            "Metadata and artifact answers by cache outcome (hit, refresh, judge, miss).",
            ["kind", "outcome"],
            registry=r,
        )
        self.trust_reloads = Counter(
            "custody_proxy_trust_reloads",
            "Trust file reloads, by result (applied, error).",
            ["result"],
            registry=r,
        )
        self.reviews = Counter(
            "custody_proxy_reviews",
            "Approvals and denials made through this replica's admin API.",
            ["verdict"],
            registry=r,
        )
