"""A webhook receiver on loopback that tests steer: take alerts, fail them, or hang until released.
Imported by name (tests/ is on the path) from tests/monitor and tests/server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    url: str = ""
    status: int = 200  # what to answer
    hang: threading.Event | None = None  # when set: wait for it before answering
    received: list[dict[str, Any]] = field(default_factory=list)
    tries: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook(status: int = 200, hang: bool = False) -> Iterator[Webhook]:
    hook = Webhook(status=status, hang=threading.Event() if hang else None)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            hook.tries += 1
            hook.arrived.set()
            if hook.hang is not None:
                hook.hang.wait(30)
            if hook.status < 300:
                hook.received.append(json.loads(body))
            self.send_response(hook.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token-123"
    try:
        yield hook
    finally:
        if hook.hang is not None:
            hook.hang.set()
        server.shutdown()
        server.server_close()
