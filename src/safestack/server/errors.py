"""Errors the gateway answers with, in OpenAI's shape: {"error": {message, type, code, param}}.

Raised anywhere below a route as `ApiError`; `calls.handle()` turns it into the response (and the
audit event's `error`). OpenAI's clients read `type` and `code`; safestack adds its own codes
(`blocked:<category>`, `upstream_timeout`, ...) listed in docs/server.md.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class ApiError(Exception):
    """An answer other than success: status, OpenAI error fields, extra headers and body fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": error, **self.extra}

    def response(self) -> Response:
        return json_response(self.body(), self.status, self.headers)


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def client_closed() -> ApiError:
    """The client closed the connection before sending its whole request. 499 is nginx's
    "client closed request": nobody reads the answer, but the audit event says whose fault it was."""
    return ApiError(
        499,
        "the client closed the connection before sending the whole request body",
        code="client_closed_request",
    )


def body_timeout(received: int, timeout: float) -> ApiError:
    """The client sent part of its body and then nothing: the connection is closed after this,
    as the rest of the body can no longer be told apart from a next request."""
    return ApiError(
        408,
        f"the request body did not arrive within {timeout:g} s ({received:,} bytes came); "
        "send the whole body promptly (the limit is SAFESTACK_BODY_TIMEOUT)",
        code="request_timeout",
        headers={"connection": "close"},
    )


def internal_error(exc: BaseException, request_id: str) -> ApiError:
    """An unexpected failure: the class name only (messages may quote content), and the id the
    audit event and the log carry."""
    return ApiError(
        500,
        f"internal error ({type(exc).__name__}); request id {request_id}",
        type="server_error",
        code="internal_error",
    )


def upstream_unavailable() -> ApiError:
    return ApiError(
        503,
        NO_UPSTREAM,
        type="service_unavailable",
        code="no_upstream",
    )


NO_UPSTREAM = (
    "no upstream model server is configured: start the gateway with "
    "`safestack serve --upstream http://127.0.0.1:8000/v1` (any OpenAI-compatible server: vLLM, "
    "Ollama, llama.cpp, TGI, OpenAI) or set SAFESTACK_UPSTREAM_URL; /v1/moderations works without one"
)
