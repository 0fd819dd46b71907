"""Admin endpoints (scope `admin`): read the audit log over HTTP, for consoles and monitors.

A read first drains this process's audit journal, so it sees the events this gateway wrote."""

from __future__ import annotations

import contextlib
from datetime import datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from safestack.errors import StoreError
from safestack.server.calls import Call, handle
from safestack.server.errors import bad_request, json_response
from safestack.server.gateway import Gateway

AUDIT = "/admin/audit"

router = APIRouter()


@router.get(AUDIT)
async def audit(request: Request) -> Response:
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
    with contextlib.suppress(StoreError):  # the read below says so if the store is down
        await gateway.audit.drain(bounded=True)
    events = await gateway.calls.run(
        gateway.store.audit.events, key_id=query.get("key_id"), since=since, limit=limit
    )
    return json_response({"object": "list", "data": [e.model_dump(mode="json") for e in events]})
