"""The audit trail: every request's AuditEvent, durable before the gateway acts on the request.

A chat request's record is written when the gateway accepts it (`completed=False`) and must be
durable before the request goes upstream or a byte of a stream leaves; the outcome replaces it at
the end, before the answer (or a stream's last event) leaves. Other requests, answered without an
upstream, get the one final record before their answer. "Durable" means on disk in the local
journal (`store.journal`, fdatasync'd, group-committed), which a background task drains into the
store; with the journal disabled, or when it fails (a full disk), the store itself must take the
record. When neither does, the request is refused with 503 `audit_unavailable` before any upstream
call: no unaudited answers.

Events hold sha256 digests of the request body and of the text sent back; the full content only
with `audit_content` (SAFESTACK_AUDIT_CONTENT). Never the key's secret: it travels in a header,
and the body is all that is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta

from safestack.errors import StoreError
from safestack.records import AuditEvent
from safestack.server.errors import ApiError
from safestack.server.storecalls import StoreCalls
from safestack.store import Store
from safestack.store.journal import AuditJournal, Drained

log = logging.getLogger("safestack.server")


def digest(data: bytes | str | None) -> str | None:
    if data is None:
        return None
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


class AuditTrail:
    """Where the gateway's audit events go: the journal first (when there is one), else the store."""

    def __init__(self, store: Store, calls: StoreCalls, journal: AuditJournal | None) -> None:
        self.store = store
        self.calls = calls
        self.journal = journal
        self._store_failing = False  # for logging a drain failure once per outage

    async def write(self, event: AuditEvent, *, synced: bool = True) -> None:
        """Make `event` durable; 503 `audit_unavailable` when neither the journal nor the store
        takes it. `synced=False` (an outcome whose opening record is durable already): written
        to the journal is enough to go on, its fdatasync follows at once; a power cut between
        the two leaves the opening record, as a crash before the outcome would."""
        journal_error = None
        if self.journal is not None:
            try:
                await asyncio.wrap_future(self.journal.append(event, sync=synced))
                return
            except (OSError, StoreError) as exc:
                journal_error = f"the journal in {self.journal.directory}: {exc}"
                log.error("audit event %s: %s; writing to the store", event.id, journal_error)
        try:
            await self.calls.run(self.store.audit.absorb, [event])
        except StoreError as exc:
            why = f"{journal_error}; the store: {exc}" if journal_error else str(exc)
            raise ApiError(
                503,
                f"the audit log is unavailable, so the request was not answered: {why}",
                type="service_unavailable",
                code="audit_unavailable",
            ) from None

    async def drain(self, *, bounded: bool = False) -> Drained:
        """Move journalled events into the store now (a StoreError when it is down); `bounded`:
        give up waiting after the store calls' deadline (the drain goes on in its thread)."""
        if self.journal is None:
            return Drained()
        run = self.calls.run if bounded else self.calls.run_unbounded
        return await run(self.journal.drain, self.store.audit)

    def drain_now(self) -> Drained:
        """The same, from a thread that is not the event loop's (tests, shutdown)."""
        if self.journal is None:
            return Drained()
        return self.journal.drain(self.store.audit)

    async def drain_periodically(self, every_s: float) -> None:
        """Drain at start (what a previous process left) and then every `every_s` seconds."""
        while True:
            try:
                drained = await self.drain()
                if self._store_failing:
                    log.warning("the store takes audit events again")
                    self._store_failing = False
                if drained.records:
                    log.debug("drained %d audit events into the store", drained.records)
            except StoreError as exc:
                if not self._store_failing:
                    log.error(
                        "audit events wait in the journal, the store does not take them: %s", exc
                    )
                    self._store_failing = True
            except Exception:
                log.exception("draining the audit journal failed")
            await asyncio.sleep(every_s)

    async def close(self, timeout: float) -> None:
        """A last drain (within `timeout`; what is left waits for the next start), then close."""
        if self.journal is None:
            return
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except (StoreError, TimeoutError) as exc:
            log.warning("audit events left in the journal for the next start: %s", exc or "timeout")
        self.journal.close()


async def purge_periodically(
    store: Store, calls: StoreCalls, retention_days: float, every_s: float = 3600.0
) -> None:
    """Delete events older than the retention period now and then every `every_s` seconds."""
    while True:
        before = datetime.now(UTC) - timedelta(days=retention_days)
        try:
            await calls.run_unbounded(store.audit.purge, before)
        except StoreError as exc:
            log.error("purging old audit events failed: %s", exc)
        await asyncio.sleep(every_s)
