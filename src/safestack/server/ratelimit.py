"""Per-key rate limits for the gateway: a token bucket, in memory or shared through Redis.

Each key has a bucket of `burst` tokens that refills at `rate_per_minute`; a request takes `cost`
tokens, or is refused with the seconds until it would fit (the 429's Retry-After). With Redis
(`SAFESTACK_REDIS_URL`) every replica of the gateway draws from the same buckets.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from safestack.errors import SafestackError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

# Float sums drift: a client that waited exactly `retry_after` must not be refused by 1e-15 tokens.
_EPSILON = 1e-9
# The in-memory limiter forgets full buckets (identical to new ones) once it holds this many.
_SWEEP_MIN = 1024


class RateLimiterError(SafestackError):
    """The rate limiter's store (Redis) failed; the gateway refuses requests rather than guess."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request for tokens."""

    allowed: bool
    retry_after: float  # seconds until the same request would be allowed; 0.0 when it was
    remaining: float  # tokens left in the bucket after this request


class RateLimiter(Protocol):
    async def acquire(
        self, key: str, rate_per_minute: int, burst: int, cost: float = 1.0
    ) -> Decision: ...


def _check(rate_per_minute: int, burst: int, cost: float) -> None:
    if rate_per_minute <= 0:
        raise ValueError(f"rate_per_minute must be at least 1, got {rate_per_minute}")
    if burst <= 0:
        raise ValueError(f"burst must be at least 1, got {burst}")
    if not 0 <= cost <= burst:
        raise ValueError(f"cost must be between 0 and burst ({burst}), got {cost}")


def _draw(tokens: float, rate_per_second: float, cost: float) -> tuple[float, Decision]:
    """Take `cost` from a bucket holding `tokens`: the tokens left and the decision."""
    if tokens + _EPSILON >= cost:
        left = max(0.0, tokens - cost)
        return left, Decision(allowed=True, retry_after=0.0, remaining=left)
    return tokens, Decision(
        allowed=False, retry_after=(cost - tokens) / rate_per_second, remaining=tokens
    )


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float  # clock reading when `tokens` was right
    full_at: float  # clock reading from which the bucket is full again, i.e. forgettable


class MemoryRateLimiter:
    """Buckets in this process: right for one gateway process, wrong for several replicas.

    `clock` is a monotonic time in seconds (injectable for tests). Safe under asyncio (no await
    between reading and writing a bucket) and across threads (a lock guards the buckets).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._sweep_at = _SWEEP_MIN

    async def acquire(
        self, key: str, rate_per_minute: int, burst: int, cost: float = 1.0
    ) -> Decision:
        _check(rate_per_minute, burst, cost)
        rate = rate_per_minute / 60.0
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            tokens = float(burst)
            if bucket is not None:
                tokens = min(tokens, bucket.tokens + max(0.0, now - bucket.updated) * rate)
            left, decision = _draw(tokens, rate, cost)
            self._buckets[key] = _Bucket(left, now, now + (burst - left) / rate)
            if len(self._buckets) > self._sweep_at:
                self._forget_full_buckets(now)
        return decision

    async def aclose(self) -> None:
        """Nothing to release; here so both limiters close the same way."""

    def _forget_full_buckets(self, now: float) -> None:
        for key in [key for key, bucket in self._buckets.items() if bucket.full_at <= now]:
            del self._buckets[key]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._buckets))


# The bucket, read and written in one step: Redis runs a script alone, so replicas cannot
# interleave. Time is the Redis server's, so replicas whose clocks disagree still agree here.
# KEYS[1]: the bucket, a hash {tokens, ms}; ARGV: rate_per_minute, burst, cost.
# Returns {allowed (0/1), remaining, retry_after seconds}, numbers as strings (Redis would
# truncate Lua numbers to integers). Needs Redis 5 or later (TIME inside a script).
_BUCKET_LUA = """
local rate = tonumber(ARGV[1]) / 60000
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
end
local allowed = 0
local retry_after = 0
if tokens + 1e-9 >= cost then
  tokens = math.max(0, tokens - cost)
  allowed = 1
else
  retry_after = (cost - tokens) / rate / 1000
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'ms', string.format('%.17g', now))
-- Once full again the bucket is the same as no bucket: let Redis drop it then.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return {allowed, string.format('%.17g', tokens), string.format('%.17g', retry_after)}
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every gateway replica that uses the same URL and prefix.

    Any Redis failure raises RateLimiterError; the connection is made at the first request.
    """

    def __init__(
        self, url: str, *, prefix: str = "safestack:ratelimit:", timeout: float = 2.0
    ) -> None:
        try:
            from redis.asyncio import Redis
        except ModuleNotFoundError:
            raise RateLimiterError(
                "rate limits in Redis need the redis package: pip install redis "
                "(or unset SAFESTACK_REDIS_URL for in-process limits)"
            ) from None
        self.display_url = _mask(url)
        self.prefix = prefix
        try:
            self._redis: Redis = Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        except ValueError as exc:
            raise RateLimiterError(
                f"'{self.display_url}' is not a Redis URL ({exc}); "
                "expected e.g. redis://127.0.0.1:6379/0 in SAFESTACK_REDIS_URL"
            ) from None
        self._script: AsyncScript = self._redis.register_script(_BUCKET_LUA)

    async def acquire(
        self, key: str, rate_per_minute: int, burst: int, cost: float = 1.0
    ) -> Decision:
        _check(rate_per_minute, burst, cost)
        from redis.exceptions import RedisError

        try:
            allowed, remaining, retry_after = await self._script(
                keys=[self.prefix + key], args=[rate_per_minute, burst, cost]
            )
        except (RedisError, OSError) as exc:
            raise RateLimiterError(self._failed(exc)) from None
        return Decision(
            allowed=bool(allowed), retry_after=float(retry_after), remaining=float(remaining)
        )

    async def ping(self) -> None:
        """Raise RateLimiterError unless Redis answers (for a readiness check)."""
        from redis.exceptions import RedisError

        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise RateLimiterError(self._failed(exc)) from None

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _failed(self, exc: BaseException) -> str:
        lines = str(exc).strip().splitlines()
        reason = lines[0].rstrip(".") if lines else type(exc).__name__
        return (
            f"rate limiter: Redis at {self.display_url} failed: {reason}; "
            "is Redis running, and is SAFESTACK_REDIS_URL right?"
        )


def rate_limiter_from_url(url: str | None) -> RateLimiter:
    """In-memory limits for no URL; Redis for redis://, rediss:// or unix:// URLs."""
    if not url:
        return MemoryRateLimiter()
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        return RedisRateLimiter(url)
    raise RateLimiterError(
        f"'{_mask(url)}' is not a Redis URL; set SAFESTACK_REDIS_URL to e.g. "
        "redis://127.0.0.1:6379/0, or leave it unset for in-process limits"
    )


def _mask(url: str) -> str:
    """The URL with its password (redis://user:password@host) replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
