"""The HTTP plumbing of the remote detectors (`openai_moderation.py`, `llm_judge.py`).

They speak the OpenAI HTTP API, so they work against api.openai.com or any compatible server (vLLM,
llama.cpp, LiteLLM). They are the expensive end of the cascade, and they fail loudly: an outage, a
timeout or an answer that cannot be read raises `DetectorError`, never "no findings".
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
from pydantic import Field, field_validator

from safestack.errors import DetectorError
from safestack.judge.detector import Detector, DetectorOptions
from safestack.policy import Policy

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPENAI_KEY = re.compile(r"sk-[A-Za-z0-9_-]{6,}")
# Connection-level failures happen before the server did any work, so resending is safe.
_RETRYABLE_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


class RemoteOptions(DetectorOptions):
    """Options every remote detector takes: where, how long, how often to retry, which key."""

    base_url: str = Field(description="OpenAI-compatible API root, e.g. https://api.openai.com/v1")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="Name of the environment variable holding the API key (never the key itself); "
        "null for a server without authentication.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds for each of connect and read.")
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries after 429, 5xx, network.")
    backoff: float = Field(
        default=0.5, ge=0, description="First retry delay (s); doubles per retry."
    )
    max_backoff: float = Field(
        default=30.0, ge=0, description="Longest wait before a retry; a longer Retry-After fails."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.openai.com/v1")
        return url.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and not _ENV_NAME.fullmatch(name):
            # Deliberately does not echo the value: it may be a key pasted in by mistake.
            raise ValueError(
                "must be the NAME of an environment variable (like OPENAI_API_KEY), not the key "
                "itself; keys never go in the policy file"
            )
        return name


class RemoteDetector(Detector):
    """HTTP plumbing shared by the remote detectors: headers, retries, errors, JSON decoding.

    Subclasses build a payload, call `_post` (sync) or `_apost` (async), and parse the answer;
    everything between is here once. Clients are created lazily and kept for connection reuse;
    `close()` / `aclose()` release them.
    """

    path: ClassVar[str]
    options: RemoteOptions
    # What to tell the user when the service answers something this detector cannot read.
    unusable_hint: ClassVar[str] = "check that base_url points at an OpenAI-compatible API"

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        super().__init__(policy, options)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._aclient: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    @property
    def url(self) -> str:
        return self.options.base_url + self.path

    def close(self) -> None:
        """Close the pooled connections of the sync client; the owner calls this when done."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client of the running event loop (a server calls this at shutdown)."""
        current = self._aclient
        if current is not None and current[0] is asyncio.get_running_loop():
            self._aclient = None
            await current[1].aclose()

    # -- the two transports: identical steps, sync and async ---------------------------------------
    def _post(self, payload: dict[str, Any]) -> Any:
        request = self._request(payload)
        client = self._sync_client()
        attempt = 0
        while True:
            try:
                response = client.send(request)
            except httpx.TransportError as exc:
                time.sleep(self._delay_after_error(attempt, exc))
            else:
                if response.is_success:
                    return self._decode(response)
                time.sleep(self._delay_after_status(attempt, response))
            attempt += 1

    async def _apost(self, payload: dict[str, Any]) -> Any:
        request = self._request(payload)
        client = self._async_client()
        attempt = 0
        while True:
            try:
                response = await client.send(request)
            except httpx.TransportError as exc:
                await asyncio.sleep(self._delay_after_error(attempt, exc))
            else:
                if response.is_success:
                    return self._decode(response)
                await asyncio.sleep(self._delay_after_status(attempt, response))
            attempt += 1

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.options.timeout)
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        # An AsyncClient's connections belong to the loop that opened them, and each
        # `asyncio.run()` is a new loop: keep the client of the current loop, drop one left by
        # a finished loop (its sockets close when it is collected).
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            self._aclient = (loop, httpx.AsyncClient(timeout=self.options.timeout))
        return self._aclient[1]

    # -- shared steps ------------------------------------------------------------------------------
    def _request(self, payload: dict[str, Any]) -> httpx.Request:
        from safestack import __version__  # at call time: the package may still be importing us

        headers = {
            "Accept": "application/json",
            "User-Agent": f"safestack/{__version__} {self.name}/{self.version}",
        }
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Request("POST", self.url, json=payload, headers=headers)

    def _api_key(self) -> str | None:
        name = self.options.api_key_env
        if name is None:
            return None
        key = os.environ.get(name, "").strip()
        if not key:
            raise DetectorError(
                self.name,
                f"environment variable {name} (api_key_env) is not set; export the API key in it, "
                "or set api_key_env: null for a server without authentication",
            )
        return key

    def _where(self) -> str:
        url = httpx.URL(self.url).copy_with(username=None, password=None, query=None)
        return f"POST {url}"

    def _fail(self, message: str) -> DetectorError:
        return DetectorError(self.name, _one_line(self._scrub(message)))

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything shaped like an OpenAI key) from text we show."""
        name = self.options.api_key_env
        key = os.environ.get(name, "").strip() if name else ""
        if len(key) >= 4:
            text = text.replace(key, "<api key>")
        return _OPENAI_KEY.sub("sk-<redacted>", text)

    def _backoff(self, attempt: int) -> float:
        # Exponential backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff
        # and Jitter", 2015): half the delay fixed, half random, so clients do not retry in step.
        delay = min(self.options.max_backoff, self.options.backoff * 2.0**attempt)
        return delay / 2 + random.uniform(0, delay / 2)

    def _delay_after_error(self, attempt: int, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying after a transport error, or raise DetectorError."""
        where, tries = self._where(), _attempts(attempt)
        if isinstance(exc, _RETRYABLE_ERRORS):
            if attempt < self.options.max_retries:
                return self._backoff(attempt)
            reason = str(exc) or type(exc).__name__
            raise self._fail(
                f"cannot reach {where} ({reason}) after {tries}; check that the server is running "
                "and that base_url is right"
            ) from None
        if isinstance(exc, httpx.TimeoutException):
            # A read timeout is not retried: the server was busy with the request, and resending
            # it would multiply the latency the caller is waiting through.
            raise self._fail(
                f"{where} did not answer within {self.options.timeout:g}s (timeout); raise the "
                "timeout option or check the server's load"
            ) from None
        raise self._fail(
            f"{where} failed ({type(exc).__name__}: {exc}); check base_url and the network"
        ) from None

    def _delay_after_status(self, attempt: int, response: httpx.Response) -> float:
        """Seconds to wait before retrying a non-2xx answer, or raise DetectorError."""
        status, where = response.status_code, self._where()
        retryable = status == 429 or status >= 500
        if retryable and attempt < self.options.max_retries:
            wait = _retry_after(response)
            if wait is None:
                return self._backoff(attempt)
            if wait <= self.options.max_backoff:
                return wait
            raise self._fail(
                f"{where} answered HTTP {status} and asked to retry after {wait:g}s, longer than "
                f"max_backoff={self.options.max_backoff:g}s; try later or raise max_backoff"
            )
        detail = _error_detail(response)
        tries = f" after {_attempts(attempt)}" if retryable else ""
        raise self._fail(f"{where} answered HTTP {status}{tries} ({detail}); {self._hint(status)}")

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            where = f"${self.options.api_key_env}" if self.options.api_key_env else "api_key_env"
            return f"check the API key in {where} and its access to this endpoint"
        if status == 404:
            return "check base_url (it usually ends in /v1) and the model name"
        if status == 429:
            return "the service is rate limiting; lower the request rate or raise max_retries"
        if status >= 500:
            return "the service is failing; try again later or raise max_retries"
        return "the service rejected the request; check the model name and the detector options"

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise self._fail(
                f"{self._where()} answered HTTP {response.status_code} with a body that is not "
                f"valid JSON ({_short(str(exc))}); {self.unusable_hint}"
            ) from None

    def _unusable(self, problem: str) -> DetectorError:
        return self._fail(
            f"{self._where()} sent an unusable answer: {problem}; {self.unusable_hint}"
        )


# -- small pure helpers ----------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (Retry-After, or OpenAI's retry-after-ms), if any."""
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # RFC 9110 also allows an HTTP date
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_detail(response: httpx.Response) -> str:
    """The server's own error message (OpenAI shape: {"error": {"message": ...}}), shortened."""
    try:
        body = response.json()
    except ValueError:
        return _short(response.text) or response.reason_phrase or "no body"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return _short(str(message if message else body))


def _attempts(attempt: int) -> str:
    return "1 attempt" if attempt == 0 else f"{attempt + 1} attempts"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = 160) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
