"""The upstream model server: any OpenAI-compatible API (vLLM, Ollama, llama.cpp, TGI, OpenAI).

One httpx AsyncClient per gateway (it streams and relays, so it keeps its own client), opened and
closed with the app; its timeouts and failure classes are those of `safestack.http`. Transport failures become the
gateway's answers: unreachable -> 502, no answer within the timeout -> 504; an upstream 4xx is
passed on as the upstream said it, an upstream 5xx becomes 502.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from safestack.errors import SafestackError
from safestack.http import Timeouts, classify_httpx
from safestack.server.errors import ApiError


class Upstream:
    """Requests to one OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_connections: int = 256,
    ):
        self.base_url = normalise_base_url(base_url)
        self.timeout = timeout
        self._timeouts = Timeouts(connect=min(connect_timeout, timeout), read=timeout).httpx()
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        # Made on first use, inside the event loop that will use it.
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url + "/",
                headers=self._headers,
                timeout=self._timeouts,
                limits=self._limits,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- calls -------------------------------------------------------------------------------
    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST chat/completions (not streamed); the whole answer within `timeout` or 504."""
        try:
            with anyio.fail_after(self.timeout):
                response = await self.client.post("chat/completions", json=body)
        except TimeoutError:
            raise _timeout(self.timeout) from None
        except httpx.HTTPError as exc:
            raise _transport_error(self.base_url, exc, self.timeout) from None
        _raise_for_status(response)
        return _json_object(response)

    async def generate_images(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST images/generations; the whole answer within `timeout` or 504."""
        try:
            with anyio.fail_after(self.timeout):
                response = await self.client.post("images/generations", json=body)
        except TimeoutError:
            raise _timeout(self.timeout) from None
        except httpx.HTTPError as exc:
            raise _transport_error(self.base_url, exc, self.timeout) from None
        _raise_for_status(response)
        return _json_object(response)

    async def open_stream(self, body: dict[str, Any]) -> UpstreamStream:
        """POST chat/completions with stream: true; returns once the upstream's headers arrive."""
        request = self.client.build_request("POST", "chat/completions", json=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(self.base_url, exc, self.timeout) from None
        if response.status_code >= 400:
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise _transport_error(self.base_url, exc, self.timeout) from None
            finally:
                await response.aclose()
            _raise_for_status(response)
        return UpstreamStream(response, self.base_url, self.timeout)

    async def models(self) -> list[dict[str, Any]]:
        """GET models: the upstream's model objects (`data`)."""
        try:
            response = await self.client.get("models")
        except httpx.HTTPError as exc:
            raise _transport_error(self.base_url, exc, self.timeout) from None
        _raise_for_status(response)
        data = _json_object(response).get("data")
        if not isinstance(data, list):
            raise ApiError(
                502,
                f"upstream {self.base_url}/models answered without a 'data' list",
                type="upstream_error",
                code="upstream_bad_response",
            )
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def ping(self, timeout: float = 2.0) -> float:
        """Seconds the upstream took to list its models; raises ApiError when it cannot."""
        started = time.perf_counter()
        with anyio.fail_after(timeout):
            await self.models()
        return time.perf_counter() - started


class UpstreamStream:
    """The chunks of one streamed answer, parsed from server-sent events; `aclose()` when done."""

    def __init__(self, response: httpx.Response, base_url: str, timeout: float):
        self._response = response
        self._base_url = base_url
        self._timeout = timeout

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """Each `data:` event as a JSON object, until `[DONE]` or the end of the response."""
        data: list[str] = []
        try:
            async for line in self._response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                    continue
                if line or not data:
                    continue  # comments, event names, keep-alives
                event, data = "\n".join(data), []
                if event.strip() == "[DONE]":
                    return
                yield _chunk(event, self._base_url)
            if data and "\n".join(data).strip() != "[DONE]":
                yield _chunk("\n".join(data), self._base_url)
        except httpx.HTTPError as exc:
            raise _transport_error(self._base_url, exc, self._timeout) from None

    async def aclose(self) -> None:
        await self._response.aclose()


def normalise_base_url(url: str) -> str:
    """The base URL without a trailing slash; a bare host gets OpenAI's `/v1`."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SafestackError(
            f"upstream URL '{url}' is not an http(s) URL; expected e.g. http://127.0.0.1:8000/v1"
        )
    return url if parts.path else url + "/v1"


def _chunk(event: str, base_url: str) -> dict[str, Any]:
    try:
        chunk = json.loads(event)
    except json.JSONDecodeError:
        chunk = None
    if not isinstance(chunk, dict):
        raise ApiError(
            502,
            f"upstream {base_url} sent a stream event that is not a JSON object: {event[:80]!r}",
            type="upstream_error",
            code="upstream_bad_response",
        )
    if isinstance(chunk.get("error"), dict):
        message = chunk["error"].get("message") or "unknown error"
        raise ApiError(
            502,
            f"upstream {base_url} failed mid-stream: {message}",
            type="upstream_error",
            code="upstream_error",
        )
    return chunk


def _timeout(seconds: float) -> ApiError:
    return ApiError(
        504,
        f"the upstream did not answer within {seconds:g} s (SAFESTACK_UPSTREAM_TIMEOUT)",
        type="upstream_error",
        code="upstream_timeout",
    )


def _transport_error(base_url: str, exc: httpx.HTTPError, timeout: float) -> ApiError:
    if classify_httpx(exc) == "timeout":  # no answer in time; a connect timeout is unreachable
        return _timeout(timeout)
    reason = str(exc) or type(exc).__name__
    return ApiError(
        502,
        f"upstream {base_url} is unreachable: {reason}",
        type="upstream_error",
        code="upstream_unreachable",
    )


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    error: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except (ValueError, UnicodeDecodeError):
        pass
    message = str(error.get("message") or response.text[:200] or response.reason_phrase)
    if status in (401, 403):  # about the gateway's credentials, not the client's: a gateway fault
        raise ApiError(
            502,
            f"upstream refused the gateway's credentials ({status}: {message}); "
            "check SAFESTACK_UPSTREAM_API_KEY",
            type="upstream_error",
            code="upstream_auth",
        )
    if status >= 500:
        raise ApiError(
            502,
            f"upstream answered {status}: {message}",
            type="upstream_error",
            code="upstream_error",
        )
    raise ApiError(
        status,
        message,
        type=str(error.get("type") or "invalid_request_error"),
        code=error.get("code") if isinstance(error.get("code"), str) else None,
        param=error.get("param") if isinstance(error.get("param"), str) else None,
    )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            502,
            f"upstream {response.request.url} answered with something other than a JSON object",
            type="upstream_error",
            code="upstream_bad_response",
        )
    return body
