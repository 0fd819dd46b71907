"""Limits on work (issue 17, item 4): messages, moderation inputs and characters per request, and
characters per minute per key, refused before the guard or the judge looks at anything.

Before these limits, a chat of 10,000 short messages cost 22-33 s of gateway CPU and was answered
200; the tests below count calls to the guard and the judge rather than time them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_harness import FakeUpstream, Gateway, GatewayFactory, user

from safestack.guard import Guard
from safestack.judge import Judge
from safestack.server.ratelimit import MemoryRateLimiter, RateLimiterError, RedisRateLimiter
from safestack.store import KeyLimits
from services import REDIS_URL, unavailable

CHAT = "/v1/chat/completions"
MODERATIONS = "/v1/moderations"


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call into the guard's input check and the judge, by name (the calls still happen)."""
    calls: list[str] = []

    def spy(cls: type, name: str) -> None:
        original = getattr(cls, name)
        if asyncio.iscoroutinefunction(original):

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                calls.append(name)
                return await original(*args, **kwargs)

            monkeypatch.setattr(cls, name, async_wrapper)
        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                calls.append(name)
                return original(*args, **kwargs)

            monkeypatch.setattr(cls, name, wrapper)

    for cls, name in (
        (Guard, "acheck_input"),
        (Guard, "check_input"),
        (Judge, "prepare"),
        (Judge, "check_batch"),
        (Judge, "check"),
    ):
        spy(cls, name)
    return calls


def post(gateway: Gateway, path: str, body: Any, secret: str) -> httpx.Response:
    return httpx.post(
        gateway.url + path,
        content=json.dumps(body),
        headers={"authorization": f"Bearer {secret}", "content-type": "application/json"},
        timeout=60,
    )


def chat(count: int, text: str = "hi") -> dict[str, Any]:
    return {"model": "acme-chat", "messages": [user(text) for _ in range(count)]}


def assert_limit_error(response: httpx.Response, param: str, *phrases: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text[:300]
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_limit_exceeded"
    assert error["param"] == param
    for phrase in phrases:
        assert phrase in error["message"], error["message"]
    return error


def test_a_10000_message_chat_is_refused_before_the_guard_runs(
    gateway: Gateway, upstream: FakeUpstream, judged: list[str]
) -> None:
    response = post(gateway, CHAT, chat(10_000), gateway.key())

    assert_limit_error(
        response, "messages", "messages: 10,000 exceeds this key's limit of 256 per request"
    )
    assert judged == [] and upstream.requests == []
    [event] = gateway.audit()
    assert event.status_code == 400 and event.model == "acme-chat"
    assert event.error is not None and "10,000 exceeds" in event.error
    assert event.input_digest is not None  # the body was read, digested, and judged not at all


def test_a_10000_string_moderation_is_refused_before_the_judge_runs(
    gateway: Gateway, judged: list[str]
) -> None:
    response = post(gateway, MODERATIONS, {"input": ["hello"] * 10_000}, gateway.key())

    assert_limit_error(response, "input", "input: 10,000 exceeds this key's limit of 256")
    assert judged == []
    [event] = gateway.audit()
    assert event.status_code == 400 and "10,000" in (event.error or "")


def test_characters_over_the_limit_are_refused_for_chat_and_moderation(
    start_gateway: GatewayFactory, upstream: FakeUpstream, judged: list[str]
) -> None:
    gateway = start_gateway(upstream.url, max_chars=1000)
    secret = gateway.key()

    refused = post(gateway, CHAT, chat(2, "a" * 600), secret)
    assert_limit_error(
        refused, "messages", "characters: 1,200 exceeds this key's limit of 1,000 per request"
    )
    refused = post(gateway, MODERATIONS, {"input": ["b" * 400] * 3}, secret)
    assert_limit_error(refused, "input", "characters: 1,200 exceeds")
    assert judged == []
    # At the limit is allowed: the limit is the most a request may ask, not one less.
    assert post(gateway, MODERATIONS, {"input": ["b" * 500] * 2}, secret).status_code == 200


def test_a_keys_own_limits_override_the_servers_both_ways(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, max_messages=4, max_inputs=3)
    default = gateway.key()
    higher = gateway.key(limits=KeyLimits(max_messages=8, max_inputs=6))
    lower = gateway.key(limits={"max_messages": 2, "max_inputs": 1})

    assert_limit_error(post(gateway, CHAT, chat(6), default), "messages", "limit of 4 per")
    assert post(gateway, CHAT, chat(6), higher).status_code == 200
    assert_limit_error(post(gateway, CHAT, chat(9), higher), "messages", "9 exceeds", "of 8 per")
    assert post(gateway, CHAT, chat(2), lower).status_code == 200
    assert_limit_error(post(gateway, CHAT, chat(3), lower), "messages", "of 2 per request")

    five = {"input": ["hello there"] * 5}
    assert_limit_error(post(gateway, MODERATIONS, five, default), "input", "limit of 3 per")
    assert len(post(gateway, MODERATIONS, five, higher).json()["results"]) == 5
    assert_limit_error(
        post(gateway, MODERATIONS, {"input": ["a", "b"]}, lower), "input", "limit of 1 per"
    )
    # A single string or a list of content parts is one input whatever its length.
    parts = {"input": [{"type": "text", "text": "hello"}] * 4}
    assert len(post(gateway, MODERATIONS, parts, lower).json()["results"]) == 1


def test_without_auth_the_servers_limits_apply(
    start_gateway: GatewayFactory, upstream: FakeUpstream, judged: list[str]
) -> None:
    gateway = start_gateway(upstream.url, require_auth=False, max_messages=3)
    response = httpx.post(gateway.url + CHAT, json=chat(4), timeout=30)
    assert_limit_error(response, "messages", "4 exceeds the gateway's limit of 3 per request")
    assert judged == []


# -- characters per minute, on both rate limiters -------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[MemoryRateLimiter | RedisRateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    prefix = f"safestack-test-{uuid.uuid4().hex[:8]}:"

    async def probe() -> None:
        limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
        try:
            await limiter.ping()
        finally:
            await limiter.aclose()

    try:
        asyncio.run(probe())
    except RateLimiterError as exc:
        unavailable(f"Redis limits test NOT RUN: {exc}; set SAFESTACK_TEST_REDIS_URL")
    yield RedisRateLimiter(REDIS_URL, prefix=prefix)  # connects inside the gateway's loop


def test_characters_per_minute_are_a_budget_per_key(
    start_gateway: GatewayFactory,
    upstream: FakeUpstream,
    limiter: MemoryRateLimiter | RedisRateLimiter,
) -> None:
    gateway = start_gateway(upstream.url, limiter=limiter, chars_per_minute=10_000)
    secret = gateway.key(limits={"chars_per_minute": 1000})
    other = gateway.key()  # the server's budget, 10,000

    first = post(gateway, MODERATIONS, {"input": "a" * 600}, secret)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-characters"] == "1000"
    assert first.headers["x-ratelimit-remaining-characters"] == "400"

    second = post(gateway, CHAT, chat(1, "b" * 600), secret)
    assert second.status_code == 429
    error = second.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "rate_limit_error",
        "rate_limit_exceeded",
        "messages",
    )
    assert "characters: 600 would exceed this key's limit of 1,000 per minute" in error["message"]
    # 200 characters short at 1,000 a minute: 12 s until they are back.
    assert 11 <= int(second.headers["retry-after"]) <= 12
    assert upstream.requests == []

    # More than a whole minute's budget can never pass: a 400, not a 429 to retry forever.
    assert_limit_error(
        post(gateway, MODERATIONS, {"input": "c" * 1500}, secret),
        "input",
        "characters: 1,500 exceeds this key's limit of 1,000 per minute",
    )
    # Each key has its own budget.
    assert post(gateway, MODERATIONS, {"input": "a" * 600}, other).status_code == 200
    statuses = sorted(e.status_code for e in gateway.audit())
    assert statuses == [200, 200, 400, 429]
