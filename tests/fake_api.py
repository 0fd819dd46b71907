"""A fake OpenAI-compatible server on 127.0.0.1, answering any POST from a queue of canned replies.

The remote detectors' tests (tests/judge) and the retry tests (test_http.py) talk real HTTP to it:
no mocking of httpx or aiohttp. Imported by name from the test folders.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from safestack.judge.detectors.http import RemoteDetector


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
        self.detectors: list[RemoteDetector] = []  # closed when the server stops
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


@contextmanager
def serving() -> Iterator[FakeAPI]:
    """A running FakeAPI; on exit its detectors are closed and the server stopped."""
    server = FakeAPI()
    server.thread.start()
    try:
        yield server
    finally:
        for det in server.detectors:
            det.close()
        server.stopping.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
