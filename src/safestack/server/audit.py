"""The audit trail: one AuditEvent per request, durable in the store before the answer leaves.

Events hold sha256 digests of the request body and of the text sent back; the full content only
with `audit_content` (SAFESTACK_AUDIT_CONTENT). Never the key's secret: it travels in a header,
and the body is all that is kept. Writes run in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from safestack.errors import StoreError
from safestack.records import AuditEvent
from safestack.server.errors import ApiError
from safestack.store import Store

if TYPE_CHECKING:
    from safestack.server.calls import Call


def digest(data: bytes | str | None) -> str | None:
    if data is None:
        return None
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def audit_event(call: Call, *, keep_content: bool) -> AuditEvent:
    return AuditEvent(
        id=call.id,
        created_at=call.created_at,
        key_id=call.key.id if call.key is not None else None,
        endpoint=call.endpoint,
        model=call.model,
        action=call.action,
        status_code=call.status,
        latency_ms=round(call.elapsed() * 1000, 3),
        categories=sorted(call.categories),
        scores=dict(sorted(call.scores.items())),
        policy=call.policy,
        input_digest=digest(call.body) if call.body else None,
        output_digest=digest(call.output),
        content=call.content() if keep_content else None,
        error=call.error,
        stream=call.stream,
    )


async def record(store: Store, event: AuditEvent) -> None:
    """Write the event; a store that cannot take it turns the answer into a 503 (no unaudited
    answers)."""
    try:
        await asyncio.to_thread(store.record_audit, event)
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
        await asyncio.to_thread(store.purge_audit, before)
        await asyncio.sleep(every_s)
