"""The gateway's FastAPI app: `create_app()` wires the routes to the dependencies it is given.

Everything is passed in (settings built at the edge, the store, the rate limiter, the policies,
the upstream); nothing here reads the environment. `safestack serve` (cli/serve.py) builds those
and runs the app with uvicorn; tests and benchmarks build their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from safestack.monitor.ladder import load_ladder
from safestack.server import admin, chat, health, image_generation, models, moderations
from safestack.server.audit import AuditTrail, purge_periodically
from safestack.server.auth import KeyCache
from safestack.server.catalog import ModelCatalog
from safestack.server.enforcement import EnforcementState
from safestack.server.errors import ApiError
from safestack.server.gateway import Gateway
from safestack.server.images import MediaGate
from safestack.server.metrics import Metrics
from safestack.server.openapi import openapi_document
from safestack.server.policies import PolicyCache
from safestack.server.provenance import text_signer
from safestack.server.ratelimit import RateLimiter
from safestack.server.storecalls import StoreCalls
from safestack.server.upstream import Upstream
from safestack.settings import Settings
from safestack.store import Store
from safestack.store.journal import AuditJournal, journal_directory

log = logging.getLogger("safestack.server")


def create_app(
    settings: Settings,
    *,
    store: Store,
    limiter: RateLimiter,
    policies: PolicyCache,
    upstream: Upstream | None = None,
    require_auth: bool = True,
    models_ttl: float = 60.0,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """The gateway. `upstream=None` serves moderations only (chat answers 503 and says why);
    `require_auth=False` lets every request in without a key (local development only);
    `on_shutdown` runs last when the app stops (a worker process closing what it opened).

    Opens the audit journal (unless `settings.audit_journal` is off): a StoreError when its
    directory cannot be written; reads the strike ladder (`settings.monitor_ladder`): an
    EnforcementError naming the file and line when it is wrong.
    """
    calls = StoreCalls.for_settings(settings)
    journal = None
    if settings.audit_journal:
        journal = AuditJournal(journal_directory(settings.audit_journal_path(), store.display_url))
    trail = AuditTrail(store, calls, journal)
    enforcement = EnforcementState(store, calls, settings, load_ladder(settings.monitor_ladder))
    metrics = Metrics()
    metrics.watch_enforcement(enforcement)
    gateway = Gateway(
        settings=settings,
        store=store,
        calls=calls,
        audit=trail,
        limiter=limiter,
        policies=policies,
        upstream=upstream,
        catalog=ModelCatalog(upstream, models_ttl) if upstream is not None else None,
        keys=KeyCache(store, settings.key_cache_seconds, calls),
        metrics=metrics,
        require_auth=require_auth,
        media=MediaGate.build(settings, store),
        enforcement=enforcement,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What a previous process left in the journal is drained first, then as events come.
        tasks = [
            asyncio.create_task(trail.drain_periodically(settings.audit_drain_seconds)),
            asyncio.create_task(enforcement.refresh_periodically()),
        ]
        # The deployment's setting wins; otherwise the default policy's audit.retention_days.
        retention = settings.audit_retention_days or policies.default.policy.audit.retention_days
        if retention is not None:
            tasks.append(asyncio.create_task(purge_periodically(store, calls, retention)))
        if settings.media_reload_seconds > 0:
            follow = gateway.media.follow_banks(store, calls, settings.media_reload_seconds)
            tasks.append(asyncio.create_task(follow))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await trail.close(timeout=calls.deadline)
            await enforcement.aclose()
            calls.close()
            await gateway.media.aclose()
            for loaded in policies.loaded():  # their connections belong to this app's loop
                for image_detector in loaded.image_detectors:
                    await image_detector.aclose()
            if upstream is not None:
                await upstream.aclose()
            if on_shutdown is not None:
                await on_shutdown()

    app = FastAPI(
        title="safestack gateway",
        description="An OpenAI-compatible API with the guard applied to every request "
        "(docs/server.md).",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",  # no key needed, like /healthz
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.image_signer = image_generation.image_signer(settings)  # None unless enabled
    app.state.text_signer = text_signer(settings)
    for module in (chat, moderations, image_generation, models, admin, health):
        app.include_router(module.router)
    document = None

    def openapi() -> dict[str, Any]:
        nonlocal document
        if document is None:
            document = openapi_document(app)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(HTTPException, _http_error)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in OpenAI's error shape too."""
    assert isinstance(exc, HTTPException)
    code = {404: "unknown_url", 405: "method_not_allowed"}.get(exc.status_code)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return ApiError(exc.status_code, message, code=code, headers=dict(exc.headers or {})).response()
