"""The one client for OpenAI-compatible HTTP endpoints: pooled JSON POSTs, one retry, backoff and
timeout policy, one Retry-After parser and one classification of failures (transient or not).

Used by the red-team `openai` target (`models.openai_compatible`), the judge's remote detectors
(`judge.detectors.http`) and, for its policy and error classes, the gateway's upstream
(`server.upstream`). It sits in the lowest layer, next to `records`, `errors` and `settings`,
because `judge` and `models` share a layer and may not import each other: both import this.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
from yarl import URL

if TYPE_CHECKING:
    import aiohttp

FailureKind = Literal["connect", "timeout", "other"]


def api_root(base_url: str) -> str:
    """The base URL without a trailing slash; a bare host gets `/v1`, as the gateway does."""
    url = URL(base_url)
    return str(url.with_path("/v1")) if url.path in ("", "/") else base_url.rstrip("/")


def transient_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: timeouts, conflicts, rate limits, server errors."""
    return status in (408, 409, 429) or status >= 500


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number `attempt` (0 for the first): exponential with "equal jitter"
    (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): half the delay fixed, half
    random, so clients do not retry in step."""
    delay = min(cap, base * 2.0**attempt)
    return delay / 2 + random.uniform(0, delay / 2)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: OpenAI's `retry-after-ms`, else `Retry-After` as
    delta-seconds or an HTTP date (RFC 9110, section 10.2.3); None when absent or unreadable."""
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


GiveUp = Literal["permanent", "exhausted", "retry-after-too-long"]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed try: wait `wait_s` seconds and try again, or give up (`wait_s`
    is None) because the failure is `permanent`, the retries are `exhausted`, or the server's
    Retry-After is longer than the policy allows (`retry-after-too-long`)."""

    wait_s: float | None
    give_up: GiveUp | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait: `backoff_s` doubles per retry up to `max_backoff_s`.

    `decide` is the one retry decision of every safestack client that retries (the judge's
    remote detectors, the red-team runner), so they wait alike for the same failures.
    """

    max_retries: int = 2
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.backoff_s, self.max_backoff_s)

    def decide(self, attempt: int, transient: bool, retry_after: float | None) -> RetryDecision:
        """After failed try `attempt` (0 for the first): retry a `transient` failure while
        retries are left, after the server's Retry-After when it gave one, else the backoff; a
        Retry-After longer than `max_backoff_s` gives up (waiting it out would stall the caller)."""
        if not transient:
            return RetryDecision(None, "permanent")
        if attempt >= self.max_retries:
            return RetryDecision(None, "exhausted")
        if retry_after is None:
            return RetryDecision(self.backoff(attempt))
        if retry_after > self.max_backoff_s:
            return RetryDecision(None, "retry-after-too-long")
        return RetryDecision(retry_after)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """`total` for the whole answer (None: no limit), `connect` to open, `read` between bytes."""

    connect: float
    read: float | None = None
    total: float | None = None

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.total or self.read, connect=self.connect)


@dataclass(frozen=True, slots=True)
class OpenAIErrorBody:
    """The `{"error": {...}}` of an OpenAI-style error answer (empty strings when absent)."""

    message: str
    code: str
    type: str


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer read whole (before the connection goes back to the pool)."""

    status: int
    reason: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers)

    def json(self) -> Any:
        return json.loads(self.body)  # ValueError (incl. UnicodeDecodeError) when it is not JSON

    def error(self) -> OpenAIErrorBody:
        try:
            body = self.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        return OpenAIErrorBody(
            str(error.get("message") or ""),
            str(error.get("code") or ""),
            str(error.get("type") or ""),
        )


class TransportFailure(Exception):
    """No answer came. `kind`: `connect` (before the server did any work: safe to resend),
    `timeout` (the server may be busy with the request), `other`."""

    def __init__(self, kind: FailureKind, cause: BaseException) -> None:
        self.kind = kind
        self.cause = cause
        super().__init__(str(cause) or type(cause).__name__)


def classify_httpx(exc: httpx.HTTPError) -> FailureKind:
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError | httpx.RemoteProtocolError):
        return "connect"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "other"


def classify_aiohttp(exc: BaseException) -> FailureKind:
    import aiohttp

    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect"
    if isinstance(exc, TimeoutError):  # aiohttp's read and total timeouts are TimeoutErrors
        return "timeout"
    if isinstance(
        exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | aiohttp.ClientOSError
    ):
        return "connect"
    return "other"


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON without NaN, as OpenAI-compatible servers expect."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class Endpoint:
    """JSON POSTs to one URL, with pooled connections: sync over httpx, async over aiohttp (a
    third of httpx's CPU per request: a red-team run is thousands of them). Redirects are not
    followed (a 3xx is an answer); proxies and CA bundles come from the environment, read once.
    """

    def __init__(
        self, url: str, timeouts: Timeouts, headers: Mapping[str, str] | None = None
    ) -> None:
        self.url = url
        self.timeouts = timeouts
        self.headers = dict(headers or {})
        if not any(name.lower() == "content-type" for name in self.headers):
            self.headers["Content-Type"] = "application/json"
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None

    def post(self, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeouts.httpx())
            client = self._client
        try:
            response = client.post(
                self.url, content=encode_json(payload), headers={**self.headers, **(headers or {})}
            )
        except httpx.HTTPError as exc:
            raise TransportFailure(classify_httpx(exc), exc) from exc
        return Reply(
            response.status_code, response.reason_phrase, response.content, response.headers
        )

    async def apost(
        self, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Reply:
        import aiohttp

        session = self._session_of_loop()
        try:
            async with session.post(
                self.url,
                data=encode_json(payload),
                headers={**self.headers, **(headers or {})},
                allow_redirects=False,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as answer:
                return Reply(
                    answer.status, answer.reason or "", await answer.read(), answer.headers
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransportFailure(classify_aiohttp(exc), exc) from exc

    async def astream(
        self, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Reply | bytes]:
        """POST and yield the `data:` payloads of a server-sent event stream as they arrive; an
        answer that is not a 200 event stream (an error, a server that ignores `stream`) is
        yielded whole, as one Reply."""
        import aiohttp

        session = self._session_of_loop()
        try:
            async with session.post(
                self.url,
                data=encode_json(payload),
                headers={**self.headers, **(headers or {})},
                allow_redirects=False,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as answer:
                kind = answer.headers.get("Content-Type", "")
                if answer.status != 200 or not kind.startswith("text/event-stream"):
                    body = await answer.read()
                    yield Reply(answer.status, answer.reason or "", body, answer.headers)
                    return
                async for line in answer.content:
                    if line.startswith(b"data:"):
                        yield line[5:].strip()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransportFailure(classify_aiohttp(exc), exc) from exc

    def _session_of_loop(self) -> aiohttp.ClientSession:
        """The pooled session of the running event loop (a session cannot outlive its loop)."""
        # aiohttp is imported on first use: it costs a quarter of a second.
        import aiohttp
        from aiohttp.helpers import get_env_proxy_for_url

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            url = URL(self.url)
            # As httpx does: certifi's CA bundle (or SSL_CERT_FILE / SSL_CERT_DIR), and the proxy
            # the environment names for this URL. aiohttp's own `trust_env` would also look up
            # ~/.netrc in a thread on every request.
            tls: ssl.SSLContext | bool = (
                httpx.create_ssl_context() if url.scheme == "https" else True
            )
            try:
                self._proxy, self._proxy_auth = get_env_proxy_for_url(url)
            except LookupError:
                self._proxy, self._proxy_auth = None, None
            # A session left by a finished loop is dropped; its sockets close when collected.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self.timeouts.total,
                    sock_connect=self.timeouts.connect,
                    sock_read=self.timeouts.read,
                ),
                connector=aiohttp.TCPConnector(ssl=tls),
            )
            self._loop = loop
        return self._session

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        # A session left behind by an earlier event loop cannot be closed from this one.
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()
