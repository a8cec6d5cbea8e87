"""Prometheus metrics: one registry per app (tests run several apps in one process).

The instruments live here, apart from any transport: services count what they do (pulls, ingest,
notifications) and ``node.http.metrics`` times requests and serves ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class Metrics:
    """The instruments of one instance."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Histogram(
            "ncc_http_request_duration_seconds", "HTTP request latency by route and status",
            ["method", "route", "status"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.records_published = Counter(
            "ncc_records_published_total", "Record versions signed by this node", ["type"], registry=r
        )
        self.ingested = Counter(
            "ncc_ingest_records_total", "Records seen by hub ingest, by outcome and code",
            ["node", "outcome", "code"], registry=r,
        )
        self.sync_lag = Gauge("ncc_sync_lag", "Node head sequence minus hub cursor", ["node"], registry=r)
        self.quarantine_size = Gauge("ncc_quarantine_size", "Quarantined records", ["node"], registry=r)
        self.pulls = Counter("ncc_pulls_total", "Feed pulls by node and result", ["node", "result"], registry=r)
        self.notify_failures = Counter(
            "ncc_notify_failures_total", "Failed notifications to the hub", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
