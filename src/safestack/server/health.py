"""Operations endpoints, without a key: /healthz (the process answers), /readyz (the store, the
audit journal, the rate limiter and the upstream answer), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from safestack.errors import SafestackError
from safestack.server.errors import ApiError, json_response
from safestack.server.gateway import gateway_of
from safestack.server.metrics import CONTENT_TYPE
from safestack.server.openapi import json_content, operation

router = APIRouter()


@router.get("/healthz", openapi_extra=operation(ok=json_content("Health"), secured=False))
async def healthz() -> Response:
    """The process answers (no key)."""
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    openapi_extra=operation(
        ok=json_content("Readiness"),
        secured=False,
        extra={503: {"description": "Not ready", "content": json_content("Readiness")}},
    ),
)
async def readyz(request: Request) -> Response:
    """The store, the rate limiter and the upstream answer (no key); 503 naming what does not."""
    gateway = gateway_of(request)
    checks: dict[str, Any] = {}
    ready = True
    try:
        await gateway.calls.run(gateway.store.revision)
        checks["store"] = "ok"
    except SafestackError as exc:
        checks["store"], ready = f"error: {exc}", False
    journal = gateway.audit.journal
    if journal is None:
        checks["audit_journal"] = "disabled (the store takes every audit event directly)"
    else:
        waiting = await asyncio.to_thread(journal.backlog)
        checks["audit_journal"] = f"ok ({waiting:,} bytes waiting for the store)"
    ping = getattr(gateway.limiter, "ping", None)  # Redis has one; memory needs none
    try:
        if ping is not None:
            await asyncio.wait_for(ping(), timeout=2.0)
        checks["rate_limiter"] = "ok"
    except Exception as exc:
        checks["rate_limiter"], ready = f"error: {exc or type(exc).__name__}", False
    if gateway.upstream is None:
        checks["upstream"] = "not configured (chat answers 503; set --upstream)"
    else:
        try:
            seconds = await gateway.upstream.ping()
            checks["upstream"] = f"ok ({seconds * 1000:.0f} ms)"
        except (ApiError, TimeoutError) as exc:
            message = exc.message if isinstance(exc, ApiError) else "no answer within 2 s"
            checks["upstream"], ready = f"error: {message}", False
    return json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    openapi_extra=operation(ok={"text/plain": {"schema": {"type": "string"}}}, secured=False),
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition (no key)."""
    return Response(gateway_of(request).metrics.exposition(), media_type=CONTENT_TYPE)
