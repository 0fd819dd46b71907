"""What the remote detectors (`openai_moderation.py`, `llm_judge.py`) share: options, the API key,
retries and errors, over the one OpenAI-compatible client (`safestack.http`).

They work against api.openai.com or any compatible server (vLLM, llama.cpp, LiteLLM). They are the
expensive end of the cascade, and they fail loudly: an outage, a timeout or an answer that cannot
be read raises `DetectorError`, never "no findings".
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from safestack.errors import DetectorError
from safestack.http import (
    Endpoint,
    Reply,
    RetryPolicy,
    Timeouts,
    TransportFailure,
    transient_status,
)
from safestack.judge.detector import Detector, DetectorOptions
from safestack.policy import Policy

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPENAI_KEY = re.compile(r"sk-[A-Za-z0-9_-]{6,}")


class RemoteOptions(DetectorOptions):
    """Options every remote detector takes: where, how long, how often to retry, which key."""

    base_url: str = Field(description="OpenAI-compatible API root, e.g. https://api.openai.com/v1")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="Name of the environment variable holding the API key (never the key itself); "
        "null for a server without authentication.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds for each of connect and read.")
    max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries after 408, 409, 429, 5xx, network."
    )
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


class RemoteCalls:
    """What every remote plugin shares (text detectors here, image detectors in
    `judge/image_detectors/`): headers, retries, errors, JSON decoding.

    Subclasses build a payload, call `post` (sync) or `apost` (async), and parse the answer;
    everything between is here once, over one `safestack.http.Endpoint` kept for connection reuse;
    `close()` / `aclose()` release it. The plugin's `__init__` calls `connect()` once its options
    are set.
    """

    name: ClassVar[str]
    version: str
    path: ClassVar[str]
    options: RemoteOptions
    # What to tell the user when the service answers something this detector cannot read.
    unusable_hint: ClassVar[str] = "check that base_url points at an OpenAI-compatible API"

    def connect(self) -> None:
        """Set up the endpoint and the retry policy from the options."""
        timeout = self.options.timeout
        self.endpoint = Endpoint(self.url, Timeouts(connect=timeout, read=timeout))
        self.retry = RetryPolicy(
            self.options.max_retries, self.options.backoff, self.options.max_backoff
        )

    @property
    def url(self) -> str:
        return self.options.base_url + self.path

    def close(self) -> None:
        """Close the pooled connections of the sync client; the owner calls this when done."""
        self.endpoint.close()

    async def aclose(self) -> None:
        """Close the async client of the running event loop (a server calls this at shutdown)."""
        await self.endpoint.aclose()

    # -- the two transports: identical steps, sync and async ---------------------------------------
    def post(self, payload: dict[str, Any]) -> Any:
        """POST `payload`, retrying what the retry policy allows; the decoded JSON answer."""
        headers = self._headers()
        attempt = 0
        while True:
            try:
                reply = self.endpoint.post(payload, headers)
            except TransportFailure as failure:
                time.sleep(self._delay_after_failure(attempt, failure))
            else:
                if reply.ok:
                    return self._decode(reply)
                time.sleep(self._delay_after_status(attempt, reply))
            attempt += 1

    async def apost(self, payload: dict[str, Any]) -> Any:
        headers = self._headers()
        attempt = 0
        while True:
            try:
                reply = await self.endpoint.apost(payload, headers)
            except TransportFailure as failure:
                await asyncio.sleep(self._delay_after_failure(attempt, failure))
            else:
                if reply.ok:
                    return self._decode(reply)
                await asyncio.sleep(self._delay_after_status(attempt, reply))
            attempt += 1

    # -- shared steps ------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        from safestack import __version__  # at call time: the package may still be importing us

        headers = {
            "Accept": "application/json",
            "User-Agent": f"safestack/{__version__} {self.name}/{self.version}",
        }
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

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
        parts = urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]  # never show credentials in the URL
        return f"POST {urlunsplit((parts.scheme, host, parts.path, '', ''))}"

    def _fail(self, message: str) -> DetectorError:
        return DetectorError(self.name, one_line(self._scrub(message)))

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything shaped like an OpenAI key) from text we show."""
        name = self.options.api_key_env
        key = os.environ.get(name, "").strip() if name else ""
        if len(key) >= 4:
            text = text.replace(key, "<api key>")
        return _OPENAI_KEY.sub("sk-<redacted>", text)

    def _delay_after_failure(self, attempt: int, failure: TransportFailure) -> float:
        """Seconds to wait before retrying after no answer came, or raise DetectorError."""
        where, tries = self._where(), _attempts(attempt)
        if failure.kind == "connect":
            # Connection-level failures happen before the server did any work: resending is safe.
            decision = self.retry.decide(attempt, transient=True, retry_after=None)
            if decision.wait_s is not None:
                return decision.wait_s
            raise self._fail(
                f"cannot reach {where} ({failure}) after {tries}; check that the server is running "
                "and that base_url is right"
            ) from None
        if failure.kind == "timeout":
            # A read timeout is not retried: the server was busy with the request, and resending
            # it would multiply the latency the caller is waiting through.
            raise self._fail(
                f"{where} did not answer within {self.options.timeout:g}s (timeout); raise the "
                "timeout option or check the server's load"
            ) from None
        raise self._fail(
            f"{where} failed ({type(failure.cause).__name__}: {failure}); check base_url and the "
            "network"
        ) from None

    def _delay_after_status(self, attempt: int, reply: Reply) -> float:
        """Seconds to wait before retrying a non-2xx answer, or raise DetectorError."""
        status, where = reply.status, self._where()
        retryable = transient_status(status)
        decision = self.retry.decide(attempt, retryable, reply.retry_after)
        if decision.wait_s is not None:
            return decision.wait_s
        if decision.give_up == "retry-after-too-long":
            raise self._fail(
                f"{where} answered HTTP {status} and asked to retry after {reply.retry_after:g}s, "
                f"longer than max_backoff={self.options.max_backoff:g}s; try later or raise "
                "max_backoff"
            )
        detail = _error_detail(reply)
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

    def _decode(self, reply: Reply) -> Any:
        try:
            return reply.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise self._fail(
                f"{self._where()} answered HTTP {reply.status} with a body that is not "
                f"valid JSON ({shorten(str(exc))}); {self.unusable_hint}"
            ) from None

    def unusable(self, problem: str) -> DetectorError:
        """The error for an answer that came but cannot be read."""
        return self._fail(
            f"{self._where()} sent an unusable answer: {problem}; {self.unusable_hint}"
        )


class RemoteDetector(RemoteCalls, Detector):
    """A text detector that asks a remote service (`openai_moderation.py`, `llm_judge.py`)."""

    options: RemoteOptions

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        Detector.__init__(self, policy, options)
        self.connect()


# -- small pure helpers ----------------------------------------------------------------------------


def _error_detail(reply: Reply) -> str:
    """The server's own error message (OpenAI shape: {"error": {"message": ...}}), shortened."""
    try:
        body = reply.json()
    except ValueError:
        return shorten(reply.text) or reply.reason or "no body"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return shorten(str(message if message else body))


def is_probability(value: Any) -> bool:
    """A score a service sent that can be used: a finite number in [0, 1], not a bool."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )


def _attempts(attempt: int) -> str:
    return "1 attempt" if attempt == 0 else f"{attempt + 1} attempts"


def one_line(text: str) -> str:
    return " ".join(text.split())


def shorten(text: str, limit: int = 160) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
