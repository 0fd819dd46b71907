"""The HTTP/1.1 protocol the gateway is served with: uvicorn's h11 one, answering in OpenAI's shape.

uvicorn rejects requests it cannot parse (a NUL in a header, `Content-Length: abc`) before the app
sees them, with a plain-text 400; OpenAI's clients expect `{"error": {...}}`. `safestack serve`
and the tests pass `OpenAIH11Protocol` as uvicorn's `http=` class.
"""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol

from safestack.server.errors import ApiError


class OpenAIH11Protocol(H11Protocol):
    """h11, with uvicorn's own 400 (an unparseable request) in OpenAI's error shape.

    What remains plain text is uvicorn's 503 when `--limit-concurrency` is exceeded and its 500
    when the app fails before starting a response (the app answers every error itself).
    """

    def send_400_response(self, msg: str) -> None:
        # The connection state is unknown after a parse error: write the answer raw, then close.
        error = ApiError(400, f"the HTTP request could not be parsed: {msg}", code="invalid_http")
        body = error.response().body
        head = (
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head + bytes(body))
        self.transport.close()
