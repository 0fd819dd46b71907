"""Access control: the bearer key, its scopes and its rate limit.

Keys are verified by the store (which keeps only their hashes); a verified key is cached in
memory for `key_cache_seconds`, keyed by the secret's sha256, so the store is not asked on every
request (a revoked key stops working within that time). Scopes: `moderate` for /v1/moderations,
`chat` for chat completions and models, `admin` for /admin.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Literal

from starlette.requests import Request

from safestack.server.errors import ApiError
from safestack.server.ratelimit import RateLimiter
from safestack.server.storecalls import StoreCalls
from safestack.settings import Settings
from safestack.store import ApiKey, Store

Scope = Literal["moderate", "chat", "admin"]

_MAX_CACHED = 10_000


class KeyCache:
    """Verified keys by the sha256 of their secret, for a few seconds."""

    def __init__(self, store: Store, ttl: float, calls: StoreCalls):
        self._store = store
        self._ttl = ttl
        self._calls = calls
        self._keys: dict[str, tuple[ApiKey, float]] = {}

    async def verify(self, secret: str) -> ApiKey | None:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        key = await self._calls.run(self._store.keys.verify, secret)
        if key is None:
            self._keys.pop(digest, None)
            return None
        if self._ttl > 0:
            if len(self._keys) >= _MAX_CACHED:
                self._keys = {d: e for d, e in self._keys.items() if e[1] > now}
                if len(self._keys) >= _MAX_CACHED:
                    self._keys.clear()
            self._keys[digest] = (key, now + self._ttl)
        return key


async def authenticate(request: Request, keys: KeyCache) -> ApiKey:
    """The key of `Authorization: Bearer <secret>`; 401 when missing, unknown or revoked."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(
            401,
            "missing API key: send 'Authorization: Bearer <key>'; an administrator creates keys "
            "with `safestack keys create`",
            code="invalid_api_key",
        )
    key = await keys.verify(secret)
    if key is None:
        raise ApiError(
            401, "invalid API key: it is unknown or has been revoked", code="invalid_api_key"
        )
    return key


def require_scope(key: ApiKey, scope: Scope) -> None:
    if scope not in key.scopes:
        raise ApiError(
            403,
            f"API key '{key.id}' lacks the '{scope}' scope this endpoint needs "
            f"(it has: {', '.join(key.scopes) or 'none'})",
            type="permission_error",
            code="insufficient_scope",
        )


async def limit_rate(
    key: ApiKey,
    limiter: RateLimiter,
    settings: Settings,
    *,
    throttle: tuple[int | None, int | None] | None = None,
) -> dict[str, str]:
    """Take one request from the key's bucket; 429 with Retry-After when it is empty.

    `throttle` (rate per minute, burst): an enforcement decision's lower limit, which wins over
    the key's own while it is lower. Returns the rate-limit headers to send. A limiter that fails
    (Redis down) refuses the request: an unenforceable limit is not read as no limit.
    """
    rate = key.rate_per_minute or settings.rate_per_minute
    burst = None
    if rate is not None:
        burst = key.burst or settings.burst or max(1, rate // 4)
    if throttle is not None and throttle[0] is not None:
        low_rate = throttle[0]
        low_burst = throttle[1] or max(1, low_rate // 4)
        if rate is None or low_rate < rate:
            rate = low_rate
        burst = low_burst if burst is None else min(burst, low_burst)
    if rate is None or burst is None:
        return {}
    try:
        decision = await limiter.acquire(key.id, rate, burst)
    except Exception as exc:
        raise limiter_unavailable(exc) from None
    headers = {
        "x-ratelimit-limit-requests": str(rate),
        "x-ratelimit-remaining-requests": str(max(0, math.floor(decision.remaining))),
    }
    if not decision.allowed:
        retry = max(1, math.ceil(decision.retry_after))
        raise ApiError(
            429,
            f"rate limit of {rate} requests per minute (burst {burst}) reached for key "
            f"'{key.id}'; retry after {retry} s",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={**headers, "retry-after": str(retry)},
        )
    return headers


def limiter_unavailable(exc: Exception) -> ApiError:
    """503 for a limiter that failed (Redis down): an unenforceable limit is not read as none."""
    return ApiError(
        503,
        f"the rate limiter is unavailable ({type(exc).__name__}: {exc}); retry shortly",
        type="service_unavailable",
        code="rate_limiter_unavailable",
    )
