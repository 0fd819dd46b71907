"""Rate limits: the token bucket's arithmetic, its 429 answer, and one bucket shared by replicas.

The Redis tests use the server at SAFESTACK_TEST_REDIS_URL (default 127.0.0.1:6379), under a key
prefix unique to this run, removed afterwards. Without a server they are skipped locally and fail
on CI (CI=true), where one must be running.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis

from safestack.errors import SafestackError
from safestack.server.ratelimit import (
    Decision,
    MemoryRateLimiter,
    RateLimiterError,
    RedisRateLimiter,
    rate_limiter_from_url,
)
from services import REDIS_URL, unavailable

RUN_PREFIX = f"safestack-test:{uuid.uuid4().hex[:12]}:"

T = TypeVar("T")


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The test Redis, after checking it answers; cleans this run's keys at the end."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    problem = None
    try:
        client.ping()
    except redis.RedisError as exc:
        problem = str(exc)
    if problem is not None:
        client.close()
        message = (
            f"REDIS TESTS NOT RUN: cannot reach {REDIS_URL} ({problem}); "
            "start Redis or point SAFESTACK_TEST_REDIS_URL at one"
        )
        unavailable(message)
    try:
        yield REDIS_URL
    finally:
        for key in client.scan_iter(match=f"{RUN_PREFIX}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix of one test's own, under this run's."""
    return f"{RUN_PREFIX}{uuid.uuid4().hex[:8]}:"


def redis_keys(prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return list(client.scan_iter(match=f"{prefix}*"))
    finally:
        client.close()


# -- the bucket's arithmetic, on an injected clock ----------------------------------------------


def test_a_full_bucket_allows_a_burst_then_refuses_with_retry_after() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)

    decisions = [run(limiter.acquire("key", rate_per_minute=60, burst=5)) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert all(d.retry_after == 0.0 for d in decisions[:5])
    # 60 per minute is one token a second: the refused request fits in one second.
    assert decisions[5] == Decision(allowed=False, retry_after=1.0, remaining=0.0)


def test_tokens_refill_at_the_rate_and_stop_at_burst() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(4):
        run(limiter.acquire("key", rate_per_minute=120, burst=4))  # 2 tokens a second

    clock.advance(0.25)  # half a token back
    refused = run(limiter.acquire("key", rate_per_minute=120, burst=4))
    assert not refused.allowed
    assert refused.remaining == pytest.approx(0.5)
    assert refused.retry_after == pytest.approx(0.25)

    clock.advance(refused.retry_after)  # waiting exactly as told is enough
    assert run(limiter.acquire("key", rate_per_minute=120, burst=4)).allowed

    clock.advance(3600)  # an hour idle refills only up to the burst
    after_idle = run(limiter.acquire("key", rate_per_minute=120, burst=4))
    assert after_idle == Decision(allowed=True, retry_after=0.0, remaining=3.0)


def test_a_request_can_cost_several_or_part_of_a_token() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    assert run(limiter.acquire("key", 60, 10, cost=7)).remaining == 3.0
    assert run(limiter.acquire("key", 60, 10, cost=0.5)).remaining == 2.5
    refused = run(limiter.acquire("key", 60, 10, cost=4))
    assert not refused.allowed and refused.retry_after == pytest.approx(1.5)
    assert refused.remaining == 2.5  # a refused request takes nothing


def test_each_key_has_its_own_bucket() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    assert run(limiter.acquire("alice", 60, 1)).allowed
    assert not run(limiter.acquire("alice", 60, 1)).allowed
    assert run(limiter.acquire("bob", 60, 1)).allowed


def test_concurrent_requests_never_overspend_the_bucket() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())

    async def burst_of_requests() -> list[Decision]:
        return await asyncio.gather(*(limiter.acquire("key", 60, 10) for _ in range(100)))

    decisions = run(burst_of_requests())
    assert sum(d.allowed for d in decisions) == 10


def test_full_buckets_are_forgotten_so_memory_stays_bounded() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)

    async def clients(name: str) -> None:
        for n in range(3000):
            await limiter.acquire(f"{name}-{n}", rate_per_minute=600, burst=10)

    run(clients("early"))
    clock.advance(1.0)  # one token back in 0.1 s: every early bucket is full again
    run(clients("late"))
    assert len(limiter._buckets) < 4000
    # Forgetting a full bucket changes nothing a client can see.
    assert run(limiter.acquire("early-0", 600, 10)).remaining == 9.0


@pytest.mark.parametrize(
    ("rate_per_minute", "burst", "cost", "message"),
    [
        (0, 5, 1.0, "rate_per_minute must be at least 1"),
        (60, 0, 1.0, "burst must be at least 1"),
        (60, 5, 6.0, r"cost must be between 0 and burst \(5\)"),
        (60, 5, -1.0, "cost must be between"),
    ],
)
def test_limits_that_make_no_sense_are_refused(
    rate_per_minute: int, burst: int, cost: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run(MemoryRateLimiter().acquire("key", rate_per_minute, burst, cost))


# -- choosing a limiter -------------------------------------------------------------------------


def test_no_url_means_in_memory_limits_and_a_redis_url_means_redis() -> None:
    assert isinstance(rate_limiter_from_url(None), MemoryRateLimiter)
    assert isinstance(rate_limiter_from_url(""), MemoryRateLimiter)
    limiter = rate_limiter_from_url("redis://127.0.0.1:6379/0")
    assert isinstance(limiter, RedisRateLimiter)
    run(limiter.aclose())


def test_a_url_that_is_not_redis_is_a_clear_error() -> None:
    with pytest.raises(RateLimiterError, match=r"not a Redis URL.*SAFESTACK_REDIS_URL") as caught:
        rate_limiter_from_url("http://user:s3cret@cache:6379")
    assert "s3cret" not in str(caught.value)


def test_unreachable_redis_is_a_clear_error_with_the_password_masked() -> None:
    limiter = RedisRateLimiter("redis://:s3cret-pw@127.0.0.1:1/0", timeout=1.0)

    async def attempt() -> None:
        try:
            with pytest.raises(RateLimiterError) as caught:
                await limiter.acquire("key", 60, 5)
            message = str(caught.value)
            assert "redis://:***@127.0.0.1:1/0" in message
            assert "s3cret-pw" not in message
            assert "SAFESTACK_REDIS_URL" in message
            assert "\n" not in message
            assert isinstance(caught.value, SafestackError)
            assert caught.value.__suppress_context__  # one line in the log, no driver traceback
            with pytest.raises(RateLimiterError, match=r"127\.0\.0\.1:1/0"):
                await limiter.ping()
        finally:
            await limiter.aclose()

    run(attempt())


# -- Redis: the same bucket, shared by replicas ---------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def make_limiter(
    request: pytest.FixtureRequest, prefix: str
) -> Callable[[], MemoryRateLimiter | RedisRateLimiter]:
    if request.param == "memory":
        return MemoryRateLimiter
    request.getfixturevalue("redis_url")
    return lambda: RedisRateLimiter(REDIS_URL, prefix=prefix)


def test_both_limiters_give_the_same_429_answer(
    make_limiter: Callable[[], MemoryRateLimiter | RedisRateLimiter],
) -> None:
    async def scenario() -> list[Decision]:
        limiter = make_limiter()
        try:
            # 6 a minute: 10 s per token, so the clock moving during the test hardly matters.
            return [await limiter.acquire("key", rate_per_minute=6, burst=3) for _ in range(4)]
        finally:
            await limiter.aclose()

    decisions = run(scenario())
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [round(d.remaining) for d in decisions] == [2, 1, 0, 0]
    assert 9.9 < decisions[3].retry_after <= 10.0


def test_two_replicas_share_one_bucket(redis_url: str, prefix: str) -> None:
    async def scenario() -> tuple[list[bool], Decision]:
        replica_a = RedisRateLimiter(redis_url, prefix=prefix)
        replica_b = RedisRateLimiter(redis_url, prefix=prefix)
        try:
            allowed = [
                (await replica_a.acquire("ssk_shared", 1, 3)).allowed,
                (await replica_b.acquire("ssk_shared", 1, 3)).allowed,
                (await replica_a.acquire("ssk_shared", 1, 3)).allowed,
                (await replica_b.acquire("ssk_shared", 1, 3)).allowed,
            ]
            return allowed, await replica_a.acquire("ssk_shared", 1, 3)
        finally:
            await replica_a.aclose()
            await replica_b.aclose()

    allowed, last = run(scenario())
    assert allowed == [True, True, True, False]
    assert not last.allowed
    assert 59.0 < last.retry_after <= 60.0  # one a minute


def test_replicas_racing_for_one_bucket_never_overspend_it(redis_url: str, prefix: str) -> None:
    async def scenario() -> list[Decision]:
        replicas = [RedisRateLimiter(redis_url, prefix=prefix) for _ in range(4)]
        try:
            return await asyncio.gather(
                *(replica.acquire("ssk_hot", 1, 20) for replica in replicas for _ in range(25))
            )
        finally:
            for replica in replicas:
                await replica.aclose()

    decisions = run(scenario())
    assert sum(d.allowed for d in decisions) == 20


def test_a_redis_bucket_refills_with_time_and_then_expires(redis_url: str, prefix: str) -> None:
    async def scenario() -> tuple[Decision, Decision, Decision]:
        limiter = RedisRateLimiter(redis_url, prefix=prefix)
        try:
            first = await limiter.acquire("ssk_fast", rate_per_minute=1200, burst=1)  # 20/s
            refused = await limiter.acquire("ssk_fast", rate_per_minute=1200, burst=1)
            await asyncio.sleep(refused.retry_after + 0.01)
            return first, refused, await limiter.acquire("ssk_fast", 1200, 1)
        finally:
            await limiter.aclose()

    first, refused, later = run(scenario())
    assert first.allowed and not refused.allowed and later.allowed
    assert 0 < refused.retry_after <= 0.05
    [key] = redis_keys(prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        # Empty after 'later', full again 50 ms on: Redis drops it within that and a second.
        assert 0 < client.pttl(key) <= 1050
        assert set(client.hkeys(key)) == {b"tokens", b"ms"}
    finally:
        client.close()
