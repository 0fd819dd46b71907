"""Prometheus metrics of one gateway: requests by endpoint and status, guard actions by category,
and latency histograms (whole request, guard checks, upstream). Served at `/metrics`.

Each app has its own registry, so several apps in one process (tests, benchmarks) do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Buckets from 1 ms: the guard's fast path is a few ms, an upstream answer seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The audit record's wait is an fdatasync or a commit: from a tenth of a millisecond.
_AUDIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "safestack_requests",
            "Requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.actions = Counter(
            "safestack_actions",
            "Guard actions by endpoint, action and flagged category ('none' when nothing was).",
            ["endpoint", "action", "category"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "safestack_request_seconds",
            "Time from request to response (to the last byte for streams), by endpoint.",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.guard_latency = Histogram(
            "safestack_guard_seconds",
            "Time in the guard's checks, by stage (input, output, stream, moderation).",
            ["stage"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "safestack_upstream_seconds",
            "Time the upstream took to answer (to its first chunk for streams).",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.audit_wait = Histogram(
            "safestack_audit_wait_seconds",
            "Time a request waited for its audit record to be durable, by record: 'opening' (the "
            "part the guard's input check did not overlap) and 'outcome'.",
            ["record"],
            buckets=_AUDIT_BUCKETS,
            registry=self.registry,
        )

    def observe_request(
        self,
        endpoint: str,
        status: int,
        seconds: float,
        action: str | None,
        categories: list[str],
    ) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if action is not None:
            for category in categories or ["none"]:
                self.actions.labels(endpoint, action, category).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
