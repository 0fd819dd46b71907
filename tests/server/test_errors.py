"""Bad input and failures answer in OpenAI's error shape, with the right status, and are audited
whenever a key was identified."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from server_harness import FakeUpstream, Gateway, GatewayFactory, system, unused_port, user

from safestack.server.errors import NO_UPSTREAM

CHAT = [user("How do I reset my router?")]


def assert_error_shape(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)


def post(gateway: Gateway, path: str, secret: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return httpx.post(
        gateway.url + path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs
    )


def test_malformed_json_is_400(gateway: Gateway) -> None:
    response = post(
        gateway,
        "/v1/chat/completions",
        gateway.key(),
        content=b'{"model": "acme-chat", "messages": [',
        headers={"content-type": "application/json"},
    )
    error = assert_error_shape(response, 400, "invalid_json")
    assert "not valid JSON" in error["message"]
    [event] = gateway.audit()
    assert event.status_code == 400 and event.error is not None and "invalid_json" in event.error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": CHAT}, "model"),
        ({"model": "acme-chat", "messages": []}, "messages"),
        (
            {"model": "acme-chat", "messages": [{"role": "wizard", "content": "hi"}]},
            "messages[0].role",
        ),
        (
            {
                "model": "acme-chat",
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ],
            },
            "messages[0].content[0]",
        ),
    ],
    ids=["no model", "no messages", "unknown role", "image part"],
)
def test_invalid_requests_are_400_naming_the_field(
    gateway: Gateway, body: dict[str, Any], param: str
) -> None:
    response = post(gateway, "/v1/chat/completions", gateway.key(), json=body)
    assert assert_error_shape(response, 400)["param"] == param


def test_an_oversized_body_is_413_before_it_is_read(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, max_request_bytes=10_000)
    big = [user("x " * 20_000)]
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(model="acme-chat", messages=big)
    assert caught.value.status_code == 413 and caught.value.code == "request_too_large"
    assert upstream.requests == []
    [event] = gateway.audit()
    assert event.status_code == 413


def test_a_missing_or_unknown_key_is_401(gateway: Gateway) -> None:
    response = post(
        gateway, "/v1/chat/completions", None, json={"model": "acme-chat", "messages": CHAT}
    )
    assert (
        "safestack keys create" in assert_error_shape(response, 401, "invalid_api_key")["message"]
    )
    with pytest.raises(openai.AuthenticationError):
        gateway.client("ssk_00000000.not-a-real-secret").models.list()
    assert gateway.audit() == []  # no key identified: counted in metrics, not audited


def test_a_revoked_key_stops_working_once_the_cache_expires(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, key_cache_seconds=0)
    key, secret = gateway.store.keys.create("soon revoked", ["chat"])
    client = gateway.client(secret)
    assert [m.id for m in client.models.list()]
    gateway.store.keys.revoke(key.id)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_a_key_without_the_scope_is_403(gateway: Gateway) -> None:
    moderate_only = gateway.client(gateway.key("moderate"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        moderate_only.chat.completions.create(model="acme-chat", messages=CHAT)
    assert caught.value.code == "insufficient_scope"
    chat_only = gateway.client(gateway.key("chat"))
    with pytest.raises(openai.PermissionDeniedError):
        chat_only.moderations.create(input="hello")
    assert [e.status_code for e in gateway.audit()] == [403, 403]


def test_over_the_rate_limit_is_429_with_retry_after(gateway: Gateway) -> None:
    client = gateway.client(gateway.key("moderate", rate_per_minute=60, burst=2))
    client.moderations.create(input="hello")
    client.moderations.create(input="hello again")
    with pytest.raises(openai.RateLimitError) as caught:
        client.moderations.create(input="and again")
    headers = caught.value.response.headers
    assert caught.value.code == "rate_limit_exceeded"
    assert 1 <= int(headers["retry-after"]) <= 2
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert sorted(e.status_code for e in gateway.audit()) == [200, 200, 429]


def test_an_unknown_or_disallowed_model_is_404(gateway: Gateway, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().chat.completions.create(model="no-such-model", messages=CHAT)
    assert caught.value.code == "model_not_found"
    limited = gateway.client(gateway.key("chat", models=["acme-chat"]))
    with pytest.raises(openai.NotFoundError):
        limited.chat.completions.create(model="acme-large", messages=CHAT)
    assert limited.chat.completions.create(model="acme-chat", messages=CHAT).choices
    assert [m.id for m in limited.models.list()] == ["acme-chat"]
    assert upstream.requests and all(r["model"] == "acme-chat" for r in upstream.requests)


def test_an_upstream_that_is_down_is_502_and_audited(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(f"http://127.0.0.1:{unused_port()}/v1")
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            gateway.client().chat.completions.create(
                model="acme-chat", messages=CHAT, stream=stream
            )
        assert caught.value.status_code == 502 and caught.value.code == "upstream_unreachable"
    events = gateway.audit()
    assert [e.status_code for e in events] == [502, 502]
    assert all(e.error and "upstream_unreachable" in e.error for e in events)


def test_a_slow_upstream_is_504_and_audited(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, upstream_timeout=0.3)
    gateway.client(gateway.key()).models.list()  # the model list is fetched before it is slow
    upstream.delay = 1.0
    for stream in (False, True):
        started = time.perf_counter()
        with pytest.raises(openai.APIStatusError) as caught:
            gateway.client().chat.completions.create(
                model="acme-chat", messages=[system(), *CHAT], stream=stream
            )
        assert caught.value.status_code == 504 and caught.value.code == "upstream_timeout"
        assert time.perf_counter() - started < 0.9
    events = [e for e in gateway.audit() if e.endpoint == "/v1/chat/completions"]
    assert sorted(e.status_code for e in events) == [504, 504]
    assert all(e.action is not None for e in events)  # the guard had decided; the upstream failed


def test_a_stream_whose_upstream_stalls_ends_with_an_error_event(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, upstream_timeout=0.3)
    upstream.chunk_delay = 1.0
    stream = gateway.client().chat.completions.create(model="acme-chat", messages=CHAT, stream=True)
    with pytest.raises(openai.APIError, match="did not answer"):
        list(stream)
    [event] = gateway.audit()
    assert event.stream and event.error is not None and "upstream_timeout" in event.error


def test_without_an_upstream_chat_is_503_with_how_to_configure_it(
    start_gateway: GatewayFactory,
) -> None:
    gateway = start_gateway(None)
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(model="acme-chat", messages=CHAT)
    assert caught.value.status_code == 503 and caught.value.code == "no_upstream"
    assert caught.value.message.endswith(NO_UPSTREAM) and "--upstream" in NO_UPSTREAM
    flagged = gateway.client().moderations.create(input="I am going to kill you").results[0]
    assert flagged.flagged  # moderations work without an upstream


def test_unknown_paths_and_methods_answer_in_the_error_shape(gateway: Gateway) -> None:
    assert_error_shape(httpx.get(gateway.url + "/v1/nothing"), 404, "unknown_url")
    assert_error_shape(httpx.get(gateway.url + "/v1/chat/completions"), 405, "method_not_allowed")
