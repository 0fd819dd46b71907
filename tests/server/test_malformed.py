"""Malformed requests (issue 17, item 2) are a 4xx in OpenAI's error shape, never a 500.

Each body goes to the real gateway on loopback as raw bytes, so JSON that Python's own encoder
would refuse to write (NaN, 1e999, 1,000 levels deep) reaches it as a client could send it.
uvicorn's own rejections (a NUL in a header, a Content-Length that is not a number) go over a
raw socket, since httpx refuses to send them.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from server_harness import FakeUpstream, Gateway, GatewayFactory

USER = '{"role": "user", "content": "How do I reset my router?"}'
DEEP = "[" * 1000 + "]" * 1000


def chat(messages: str = f"[{USER}]", extra: str = "") -> bytes:
    return f'{{"model": "acme-chat", "messages": {messages}{extra}}}'.encode()


MALFORMED = {
    "role is a list": ("/v1/chat/completions", chat('[{"role": ["user"], "content": "hi"}]')),
    "role is an object": ("/v1/chat/completions", chat('[{"role": {}, "content": "hi"}]')),
    "part type is an object": (
        "/v1/chat/completions",
        chat('[{"role": "user", "content": [{"type": {}, "text": "hi"}]}]'),
    ),
    "source is a list": (
        "/v1/chat/completions",
        chat('[{"role": "user", "content": "hi", "source": ["tool"]}]'),
    ),
    "NaN temperature": ("/v1/chat/completions", chat(extra=', "temperature": NaN')),
    "Infinity temperature": ("/v1/chat/completions", chat(extra=', "temperature": -Infinity')),
    "1e999 temperature": ("/v1/chat/completions", chat(extra=', "temperature": 1e999')),
    "5,000-digit integer": ("/v1/chat/completions", chat(extra=', "seed": ' + "9" * 5000)),
    "nested 1,000 deep": ("/v1/chat/completions", chat(extra=f', "metadata": {DEEP}')),
    "lone surrogate": ("/v1/chat/completions", chat('[{"role": "user", "content": "a \\ud800"}]')),
    "moderation part type is an object": (
        "/v1/moderations",
        b'{"input": [{"type": {}, "text": "hi"}]}',
    ),
    "moderation NaN": ("/v1/moderations", b'{"input": "hi", "model": NaN}'),
    "moderation nested 1,000 deep": ("/v1/moderations", f'{{"input": {DEEP}}}'.encode()),
}


def assert_openai_error(status: int, body: bytes) -> None:
    assert 400 <= status < 500, body[:300]
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(("path", "body"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_json_bodies_are_4xx_in_openai_shape(
    gateway: Gateway, path: str, body: bytes
) -> None:
    response = httpx.post(
        gateway.url + path,
        content=body,
        headers={"authorization": f"Bearer {gateway.key()}", "content-type": "application/json"},
        timeout=30,
    )
    assert_openai_error(response.status_code, response.content)
    assert response.headers["content-type"].startswith("application/json")
    [event] = gateway.audit()
    assert event.status_code == response.status_code


RAW = {
    "NUL in a header": b"POST /v1/moderations HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    "Content-Length abc": b"POST /v1/moderations HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
}


@pytest.mark.parametrize("request_bytes", list(RAW.values()), ids=list(RAW))
def test_requests_uvicorn_rejects_are_400_in_openai_shape(
    gateway: Gateway, request_bytes: bytes
) -> None:
    address = urlsplit(gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower()
    assert_openai_error(status, body)


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00", "2026-13-01T00:00:00Z"]
)
def test_an_audit_query_out_of_range_is_400(gateway: Gateway, since: str) -> None:
    # Year 1 at +01:00 is before the first UTC time Python can hold: it was a 503 from the store.
    response = httpx.get(
        gateway.url + "/admin/audit",
        params={"since": since},
        headers={"authorization": f"Bearer {gateway.key('admin')}"},
        timeout=30,
    )
    assert_openai_error(response.status_code, response.content)
    assert response.json()["error"]["param"] in ("since", "limit/since")


def test_a_client_that_leaves_mid_body_is_audited_as_a_client_error(gateway: Gateway) -> None:
    address = urlsplit(gateway.url)
    body = chat()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.key()}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.encode() + body[: len(body) // 2])
    deadline = time.monotonic() + 10
    while not (events := gateway.audit()) and time.monotonic() < deadline:
        time.sleep(0.05)
    [event] = events
    assert event.status_code == 499
    assert event.error is not None and "closed the connection" in event.error


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/moderations"])
def test_a_client_that_stalls_mid_body_gets_408_and_is_audited(
    start_gateway: GatewayFactory, upstream: FakeUpstream, path: str
) -> None:
    # Issue 17, item 3: half a body held the connection for more than 150 s.
    gateway = start_gateway(upstream.url, body_timeout=0.5)
    address = urlsplit(gateway.url)
    body = chat() if path.endswith("completions") else b'{"input": "hello there"}'
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.key()}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head.encode() + body[: len(body) // 2])
        received = b""
        while chunk := sock.recv(65536):  # until the gateway closes the connection
            received += chunk
        elapsed = time.monotonic() - started
    head_in, _, answer = received.partition(b"\r\n\r\n")
    assert head_in.startswith(b"HTTP/1.1 408 ")
    assert 0.5 <= elapsed < 5
    assert_openai_error(408, answer)
    error = json.loads(answer)["error"]
    assert error["code"] == "request_timeout" and "SAFESTACK_BODY_TIMEOUT" in error["message"]
    [event] = gateway.audit()
    assert event.status_code == 408 and event.endpoint == path
    assert upstream.requests == []
