"""Alerts: every enforcement decision POSTed as JSON to the deployment's webhooks, in the background.

`AlertSender.send` queues and returns at once, so neither the decision nor the gateway waits for a
webhook. Each URL has its own worker thread: a webhook that is down or slow delays only its own
alerts, retried with exponential backoff (`safestack.http.backoff_delay`); one that never takes an
alert is logged and counted (`AlertCounts.failed`). `close(timeout)` waits for what is queued,
at most `timeout` seconds (a CLI process exiting), and counts what was left undelivered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from safestack.errors import EnforcementError
from safestack.http import backoff_delay, transient_status
from safestack.records import EnforcementDecision

log = logging.getLogger("safestack.monitor")

ALERT_SCHEMA = "safestack.enforcement.alert/1"
_STOP = object()


@dataclass(slots=True)
class AlertCounts:
    """What the sender did, over every webhook."""

    sent: int = 0
    retried: int = 0
    failed: int = 0  # gave up after the retries, or refused for good (a 4xx other than 408/429)
    undelivered: int = 0  # still queued when the sender was closed


def alert_payload(decision: EnforcementDecision, appeal: str | None) -> dict[str, Any]:
    """The JSON body of one alert: the decision as stored, its mode, and the appeal text."""
    return {
        "schema": ALERT_SCHEMA,
        "mode": "shadow" if decision.shadow else "enforced",
        "appeal": appeal,
        "decision": decision.model_dump(mode="json"),
    }


def check_webhook(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise EnforcementError(
            f"webhook {url[:100]!r} is not an http:// or https:// URL "
            "(SAFESTACK_MONITOR_WEBHOOKS, a JSON list of URLs)"
        )
    return url


def display_url(url: str) -> str:
    """The webhook's scheme and host only: its path or query often holds a token."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<an invalid URL>"
    return f"{parsed.scheme}://{parsed.host}{f':{parsed.port}' if parsed.port else ''}/..."


class AlertSender:
    """POSTs alerts to each of `urls` from one background thread per URL."""

    def __init__(
        self,
        urls: list[str],
        *,
        retries: int = 5,
        timeout: float = 5.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.urls = [check_webhook(url) for url in urls]
        self.counts = AlertCounts()
        self._retries = retries
        self._backoff = (backoff_s, max_backoff_s)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._queues: list[queue.SimpleQueue[Any]] = []
        self._threads: list[threading.Thread] = []
        for url in self.urls:
            pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._deliver, args=(url, pending), name="safestack-alerts", daemon=True
            )
            thread.start()
            self._queues.append(pending)
            self._threads.append(thread)

    def send(self, payload: dict[str, Any]) -> None:
        """Queue `payload` for every webhook; returns at once."""
        for pending in self._queues:
            pending.put(payload)

    def close(self, timeout: float = 10.0) -> AlertCounts:
        """Deliver what is queued for at most `timeout` seconds, then stop; the counts."""
        for pending in self._queues:
            pending.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._closing.set()  # a worker still retrying gives up at its next wait
        for thread in self._threads:
            thread.join(1.0)
        with self._lock:
            for pending in self._queues:
                while True:
                    try:
                        item = pending.get_nowait()
                    except queue.Empty:
                        break
                    if item is not _STOP:
                        self.counts.undelivered += 1
        if self.counts.undelivered:
            log.error("%d alert(s) not delivered before closing", self.counts.undelivered)
        self._client.close()
        return self.counts

    def _deliver(self, url: str, pending: queue.SimpleQueue[Any]) -> None:
        while True:
            payload = pending.get()
            if payload is _STOP:
                return
            if self._closing.is_set():
                with self._lock:
                    self.counts.undelivered += 1
                continue
            self._post(url, payload)

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        decision = payload.get("decision", {}).get("id")
        for attempt in range(self._retries + 1):
            try:
                reply = self._client.post(url, json=payload)
                if reply.status_code < 300:
                    with self._lock:
                        self.counts.sent += 1
                    return
                why = f"HTTP {reply.status_code}"
                transient = transient_status(reply.status_code)
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
                transient = True
            if not transient or attempt == self._retries:
                with self._lock:
                    self.counts.failed += 1
                log.error(
                    "alert for decision %s: webhook %s failed after %d tries (%s)",
                    decision,
                    display_url(url),
                    attempt + 1,
                    why,
                )
                return
            with self._lock:
                self.counts.retried += 1
            log.warning(
                "alert for decision %s: webhook %s: %s; retrying", decision, display_url(url), why
            )
            if self._closing.wait(backoff_delay(attempt, *self._backoff)):
                with self._lock:
                    self.counts.undelivered += 1
                return
