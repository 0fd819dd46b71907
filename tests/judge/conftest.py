"""Fixtures for the remote detectors' tests: a fake OpenAI-compatible server on 127.0.0.1.

The detectors talk real HTTP to it (no mocking of httpx). `api` is the running server, answering
from canned replies; `remote_detector` builds a detector aimed at it with fast-failing options
(`remote_options`) whose API key is exported for the test.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from safestack.judge import Sample
from safestack.judge.detectors.http import RemoteDetector
from safestack.policy import Policy
from safestack.records import Finding

KEY_ENV = "SAFESTACK_TEST_REMOTE_KEY"
KEY = "sk-test-0123456789abcdef"
R = TypeVar("R", bound=RemoteDetector)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str -> raw text
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class FakeAPI:
    """An OpenAI-compatible server answering from a queue of canned replies."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.fallback = Reply(500, {"error": {"message": "no canned reply left"}})
        self.received: list[Received] = []
        self.detectors: list[RemoteDetector] = []  # closed at teardown
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        # A short poll interval keeps shutdown() (and so each test's teardown) fast.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reply(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        delay: float = 0.0,
        forever: bool = False,
    ) -> None:
        """Queue the answer to the next request (body: dict/list -> JSON, str -> raw text).

        `forever=True` makes it the answer to every request once the queue is empty.
        """
        canned = Reply(status, body, headers or {}, delay)
        if forever:
            self.fallback = canned
        else:
            self.replies.append(canned)

    def next_reply(self) -> Reply:
        return self.replies.popleft() if self.replies else self.fallback


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            api.received.append(Received(self.path, headers, json.loads(raw)))
            reply = api.next_reply()
            if reply.delay and api.stopping.wait(reply.delay):
                return
            body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = body.encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    server = FakeAPI()
    server.thread.start()
    yield server
    for det in server.detectors:
        det.close()
    server.stopping.set()
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(timeout=5)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake API key, exported in the environment variable `remote_options` name."""
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture
def remote_options(api_key: str) -> dict[str, Any]:
    """Options of a remote detector that fail fast, aimed at a port nothing listens on."""
    return {
        "api_key_env": KEY_ENV,
        "timeout": 2.0,
        "max_retries": 2,
        "backoff": 0.01,
        "base_url": _closed_port_url(),
    }


@pytest.fixture
def remote_detector(remote_options: dict[str, Any]) -> Callable[..., RemoteDetector]:
    """`build(cls, policy, api, **options)`: a detector against `api`, or a dead port if None."""

    def build(cls: type[R], policy: Policy, api: FakeAPI | None, **options: Any) -> R:
        base_url = api.base_url if api is not None else remote_options["base_url"]
        det = cls(policy, cls.Options(**{**remote_options, "base_url": base_url, **options}))
        if api is not None:
            api.detectors.append(det)
        return det

    return build


@pytest.fixture
def adetect() -> Callable[[RemoteDetector, Sample], Awaitable[list[Finding]]]:
    """`det.adetect` in a fresh event loop, closing that loop's client as a server would."""

    async def run(det: RemoteDetector, sample: Sample) -> list[Finding]:
        try:
            return await det.adetect(sample)
        finally:
            await det.aclose()

    return run


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
