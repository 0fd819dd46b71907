"""Prometheus metrics of one gateway: requests by endpoint and status, guard actions by category,
latency histograms (whole request, guard checks, upstream), and enforcement (decisions in the
store by action and mode, requests refused or warned by a measure). Served at `/metrics`.

Each app has its own registry, so several apps in one process (tests, benchmarks) do not collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from safestack.server.enforcement import EnforcementState

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

        self.enforced_refusals = Counter(
            "safestack_enforced_refusals",
            "Requests refused by an enforcement measure: 'suspend' (403) or 'throttle' (429 past "
            "the throttled rate), by account kind ('key' or 'user', an end user of a key).",
            ["action", "account"],
            registry=self.registry,
        )
        self.enforcement_warnings = Counter(
            "safestack_enforcement_warnings",
            "Requests answered with a warning header (x-safestack-warning), by account kind.",
            ["account"],
            registry=self.registry,
        )

    def watch_enforcement(self, state: EnforcementState) -> None:
        """Export the enforcement log's decision counts and how fresh this replica's copy is."""
        self.registry.register(_DecisionCounts(state))
        Gauge(
            "safestack_enforcement_state_age_seconds",
            "Seconds since this replica last read the enforcement log (checked or re-read); it "
            "grows while the store cannot be read and the last known measures stay in force.",
            registry=self.registry,
        ).set_function(state.age)

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


class _DecisionCounts(Collector):
    """`safestack_enforcement_decisions_total{action, mode}`: the decisions in the store's log as
    this replica last read it. Every replica reports the same log: aggregate with max, not sum."""

    def __init__(self, state: EnforcementState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "safestack_enforcement_decisions",
            "Enforcement decisions in the store's log, by action (warn, throttle, suspend, lift) "
            "and mode (enforced, shadow); the same on every replica (use max across them).",
            labels=["action", "mode"],
        )
        for (action, mode), count in sorted(self._state.active.counts.items()):
            family.add_metric([action, mode], count)
        yield family
