"""A scripted OpenAI-compatible chat target on 127.0.0.1 for the console's tests: it answers
(streamed a word at a time when asked to stream) `[<model>] You said: <last user message>`, or, when the message says so, `<script>` markup
(SCRIPT), a 500 error (FAIL) or nothing for 3 s (SLOW: longer than the tests' target timeout).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCRIPT_ANSWER = "<script>document.title='pwned'</script><b>not bold</b> Here is how to pick a lock."


def answer_for(model: str, messages: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    if "FAIL" in last:
        return 500, {"error": {"message": "the model server fell over", "type": "server_error"}}
    if "SLOW" in last:
        time.sleep(3)
    text = SCRIPT_ANSWER if "SCRIPT" in last else f"[{model}] You said: {last}"
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    if system and "PIRATE" in system:
        text = "Arr! " + text
    return 200, {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(body)  # type: ignore[attr-defined]
        status, payload = answer_for(body.get("model", "?"), body.get("messages", []))
        if status == 200 and body.get("stream"):
            self.stream(payload)
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, payload: dict[str, Any]) -> None:
        """The answer as server-sent events, a word at a time (as vLLM or the gateway stream)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        text = payload["choices"][0]["message"]["content"]
        words = text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == len(words) - 1 else word + " "
            chunk = {
                "choices": [{"index": 0, "delta": {"content": piece}}],
                "model": payload["model"],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.005)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def fake_target() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(base_url, requests received) of a running fake target."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd.requests  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
