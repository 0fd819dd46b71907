"""One request through the gateway: authenticate, authorise, rate-limit, do the work, audit, count.

`handle()` runs every API route the same way, so each route only says what its work is. The `Call`
gathers what the audit event and the metrics report: the key, the model, the guard's action,
categories and scores, the text sent back, the error. A streamed answer audits itself when the
stream ends (`Call.deferred`), still before its last event leaves. A call that goes upstream first
writes an opening record (`begin`), durable before the upstream is called (`opened`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from safestack.errors import InputError, PolicyError, StoreError
from safestack.monitor.identity import IDENTITY_FIELDS
from safestack.records import Action, AuditEvent
from safestack.server.audit import digest
from safestack.server.auth import Scope, authenticate, require_scope
from safestack.server.enforcement import enforce_key
from safestack.server.errors import (
    ApiError,
    bad_request,
    body_timeout,
    client_closed,
    internal_error,
)
from safestack.server.gateway import Gateway, gateway_of
from safestack.store import ApiKey

log = logging.getLogger("safestack.server")


@dataclass(slots=True)
class Call:
    endpoint: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    key: ApiKey | None = None
    model: str | None = None
    body: bytes = b""
    payload: Any = None
    policy: str | None = None
    keep_content: bool = False  # the policy's audit.content, or the deployment's override
    action: Action | None = None
    categories: set[str] = field(default_factory=set)
    scores: dict[str, float] = field(default_factory=dict)
    output: str | None = None
    response_content: Any = None
    error: str | None = None
    stream: bool = False
    status: int = 200
    deferred: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    opening: asyncio.Future[None] | None = None  # the opening record's write, once begun
    opening_waited: bool = False
    end_user: str | None = None  # hashed (server/enforcement.py); never the raw identifier
    enforcement: list[str] = field(default_factory=list)  # measures applied, "warn:dec_..."

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def act(self, action: Action, categories: list[str], scores: dict[str, float]) -> None:
        """Fold one guard decision in: the strictest action, all categories, the highest scores."""
        if self.action is None or action.rank > self.action.rank:
            self.action = action
        self.categories.update(categories)
        for category, score in scores.items():
            if score > self.scores.get(category, -1.0):
                self.scores[category] = score

    def content(self) -> dict[str, Any]:
        """The request and response as kept with audit.content; end-user ids replaced by their
        hash, so the raw identifier is never stored."""
        request = self.payload
        if isinstance(request, dict) and any(request.get(name) for name in IDENTITY_FIELDS):
            request = dict(request)
            hashed = f"hmac-sha256:{self.end_user}" if self.end_user else "<not kept>"
            for name in IDENTITY_FIELDS:
                if request.get(name):
                    request[name] = hashed
                    hashed = "<not kept>"  # the legacy field beside the one that was hashed
        return {"request": request, "response": self.response_content}

    def audit_event(self, *, keep_content: bool, completed: bool = True) -> AuditEvent:
        """What the audit log keeps of this call: digests always, the content when asked.
        `completed=False`: the opening record, before the outcome is known."""
        return AuditEvent(
            id=self.id,
            created_at=self.created_at,
            key_id=self.key.id if self.key is not None else None,
            endpoint=self.endpoint,
            model=self.model,
            action=self.action,
            status_code=self.status if completed else None,
            completed=completed,
            latency_ms=round(self.elapsed() * 1000, 3),
            categories=sorted(self.categories),
            scores=dict(sorted(self.scores.items())),
            policy=self.policy,
            input_digest=digest(self.body) if self.body else None,
            output_digest=digest(self.output),
            content=self.content() if keep_content else None,
            error=self.error,
            stream=self.stream,
            end_user=self.end_user,
            enforcement=", ".join(self.enforcement)[:1000] or None,
        )

    def verdict_headers(self) -> dict[str, str]:
        """The verdict summary every answer carries, for clients and proxies that log headers."""
        headers = {"x-safestack-request-id": self.id}
        if self.policy is not None:
            headers["x-safestack-policy"] = self.policy
        if self.action is not None:
            headers["x-safestack-action"] = self.action.value
            headers["x-safestack-categories"] = ",".join(sorted(self.categories))
        return headers


Work = Callable[[Gateway, Call, Request], Awaitable[Response]]


async def handle(request: Request, endpoint: str, scope: Scope, work: Work) -> Response:
    gateway = gateway_of(request)
    call = Call(endpoint)
    try:
        if gateway.require_auth:
            call.key = await authenticate(request, gateway.keys)
            require_scope(call.key, scope)
            call.headers.update(await enforce_key(gateway, call))
        response = await work(gateway, call, request)
    except ApiError as error:
        response = _error(call, error)
    except ClientDisconnect:  # the client left before its body arrived: its doing, not a 500
        response = _error(call, client_closed())
    except InputError as exc:  # a message the judge cannot take (too long, undecodable)
        response = _error(call, bad_request(str(exc), param=exc.field, code="invalid_input"))
    except PolicyError as exc:
        response = _error(call, ApiError(500, str(exc), type="server_error", code="policy_error"))
    except StoreError as exc:
        unavailable = ApiError(503, str(exc), type="service_unavailable", code="store_unavailable")
        response = _error(call, unavailable)
    except Exception as exc:  # fail closed: nothing unexpected is forwarded or reported as safe
        log.exception("request %s to %s failed", call.id, endpoint)
        response = _error(call, internal_error(exc, call.id))
    if call.deferred:
        return response
    return await finish(gateway, call, response)


async def finish(gateway: Gateway, call: Call, response: Response) -> Response:
    """Audit and count the call, and add the verdict headers to its response."""
    call.status = response.status_code
    failure = await conclude(gateway, call)
    if failure is not None:
        response = failure.response()
    response.headers.update({**call.headers, **call.verdict_headers()})
    return response


async def conclude(gateway: Gateway, call: Call) -> ApiError | None:
    """Write the call's audit event (when a key was identified, or auth is off) and count it.

    Returns the error to answer instead when the audit log cannot take the event.
    """
    failure = None
    if _audited(gateway, call):
        opened_ok = False
        if call.opening is not None:  # the outcome follows its opening record
            with contextlib.suppress(Exception):  # a failed one was answered already
                await call.opening
                opened_ok = True
        started = time.perf_counter()
        try:
            keep_content = call.keep_content or gateway.settings.audit_content
            event = call.audit_event(keep_content=keep_content)
            # With the opening record durable, the outcome need not wait for its own fdatasync.
            await gateway.audit.write(event, synced=not opened_ok)
            gateway.metrics.audit_wait.labels("outcome").observe(time.perf_counter() - started)
        except ApiError as error:
            log.error("request %s: %s", call.id, error.message)
            failure = error
            call.status = error.status
    gateway.metrics.observe_request(
        call.endpoint,
        call.status,
        call.elapsed(),
        call.action.value if call.action is not None else None,
        sorted(call.categories),
    )
    return failure


def begin(gateway: Gateway, call: Call) -> None:
    """Start writing the call's opening record ("accepted, not yet answered"), so that the write
    overlaps the guard's checks; `opened()` waits for it before anything goes upstream."""
    if _audited(gateway, call) and call.opening is None:
        keep_content = call.keep_content or gateway.settings.audit_content
        event = call.audit_event(keep_content=keep_content, completed=False)
        call.opening = asyncio.ensure_future(gateway.audit.write(event))


async def opened(gateway: Gateway, call: Call) -> None:
    """Wait until the opening record is durable; 503 `audit_unavailable` when nothing took it."""
    if call.opening is None:
        return
    if call.opening_waited:
        await call.opening  # done: raises again if it failed
        return
    call.opening_waited = True
    started = time.perf_counter()
    try:
        await call.opening
    finally:
        gateway.metrics.audit_wait.labels("opening").observe(time.perf_counter() - started)


def _audited(gateway: Gateway, call: Call) -> bool:
    """Calls are audited once a key was identified, or always when auth is off."""
    return call.key is not None or not gateway.require_auth


def _error(call: Call, error: ApiError) -> Response:
    call.error = f"{error.status} {error.code or error.type}: {error.message}"
    call.response_content = error.body()
    call.headers.update(error.headers)
    return error.response()


async def read_json(request: Request, call: Call, limit: int, timeout: float) -> dict[str, Any]:
    """The request body as a JSON object: 413 before reading when it is over `limit` bytes,
    408 when it has not all arrived within `timeout` seconds, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(size, limit)
                chunks.append(chunk)
    except TimeoutError:
        raise body_timeout(size, timeout) from None
    call.body = b"".join(chunks)
    payload = parse_json(call.body)
    if not isinstance(payload, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    call.payload = payload
    return payload


def parse_json(body: bytes) -> Any:
    """Strict JSON (RFC 8259): no NaN or Infinity, no number that overflows, nesting bounded.

    Python's parser takes NaN and 1e999 and its encoder then refuses them after the guard ran,
    deep nesting raises RecursionError, and a 5,000-digit integer a ValueError: all 400s here.
    """
    try:
        payload = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    except ValueError as exc:  # JSONDecodeError, a non-finite number, an integer too long
        raise bad_request(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    except RecursionError:
        raise _too_deep() from None
    if _depth_over(payload, MAX_JSON_DEPTH):
        raise _too_deep()
    return payload


# Far beyond any chat request or tool schema, far below Python's recursion limit (1,000).
MAX_JSON_DEPTH = 64


def _too_deep() -> ApiError:
    return bad_request(
        f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels", code="invalid_json"
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is out of the range of a 64-bit float")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and objects more than `limit` deep (iterative: no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children and depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        f"the request body ({size:,} bytes or more) is over the limit of {limit:,} bytes "
        "(SAFESTACK_MAX_REQUEST_BYTES)",
        code="request_too_large",
    )
