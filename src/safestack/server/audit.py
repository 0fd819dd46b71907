"""The audit trail: one AuditEvent per request (`Call.audit_event`), durable in the store before
the answer leaves.

Events hold sha256 digests of the request body and of the text sent back; the full content only
with `audit_content` (SAFESTACK_AUDIT_CONTENT). Never the key's secret: it travels in a header,
and the body is all that is kept. Writes run in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from safestack.errors import StoreError
from safestack.records import AuditEvent
from safestack.server.errors import ApiError
from safestack.store import Store


def digest(data: bytes | str | None) -> str | None:
    if data is None:
        return None
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


async def record(store: Store, event: AuditEvent) -> None:
    """Write the event; a store that cannot take it turns the answer into a 503 (no unaudited
    answers)."""
    try:
        await asyncio.to_thread(store.audit.record, event)
    except StoreError as exc:
        raise ApiError(
            503,
            f"the audit log is unavailable, so the request was not answered: {exc}",
            type="service_unavailable",
            code="audit_unavailable",
        ) from None


async def purge_periodically(store: Store, retention_days: float, every_s: float = 3600.0) -> None:
    """Delete events older than the retention period now and then every `every_s` seconds."""
    while True:
        before = datetime.now(UTC) - timedelta(days=retention_days)
        await asyncio.to_thread(store.audit.purge, before)
        await asyncio.sleep(every_s)
