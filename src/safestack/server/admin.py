"""Admin endpoints (scope `admin`): read the audit log over HTTP, for consoles and monitors.

A read first drains this process's audit journal, so it sees the events this gateway wrote."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from safestack.errors import StoreError
from safestack.server.calls import Call, handle
from safestack.server.errors import bad_request, json_response
from safestack.server.gateway import Gateway
from safestack.server.openapi import KEY_ERRORS, json_content, operation

AUDIT = "/admin/audit"

router = APIRouter()


@router.get(
    AUDIT,
    openapi_extra=operation(
        ok=json_content("AuditEventList"),
        errors=KEY_ERRORS,
        parameters=[
            {"name": "key_id", "in": "query", "schema": {"type": "string"}},
            {
                "name": "since",
                "in": "query",
                "description": "Events at or after this time; it needs a timezone.",
                "schema": {"type": "string", "format": "date-time"},
            },
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            },
        ],
    ),
)
async def audit(request: Request) -> Response:
    """Audit events, newest first (scope `admin`)."""
    return await handle(request, AUDIT, "admin", _audit)


async def _audit(gateway: Gateway, call: Call, request: Request) -> Response:
    """Recent audit events, newest first: `?key_id=...&since=ISO-8601&limit=100`."""
    query = request.query_params
    try:
        limit = int(query.get("limit", "100"))
        since = datetime.fromisoformat(query["since"]) if "since" in query else None
    except ValueError as exc:
        raise bad_request(f"bad query parameter: {exc}", param="limit/since") from None
    if not 1 <= limit <= 1000:
        raise bad_request("'limit' must be between 1 and 1000", param="limit")
    if since is not None and since.tzinfo is None:
        raise bad_request("'since' needs a timezone, e.g. 2026-01-31T00:00:00Z", param="since")
    if since is not None:
        try:
            since = since.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable UTC time
            raise bad_request(
                "'since' is out of range once converted to UTC", param="since"
            ) from None
    with contextlib.suppress(StoreError):  # the read below says so if the store is down
        await gateway.audit.drain(bounded=True)
    events = await gateway.calls.run(
        gateway.store.audit.events, key_id=query.get("key_id"), since=since, limit=limit
    )
    return json_response({"object": "list", "data": [e.model_dump(mode="json") for e in events]})
