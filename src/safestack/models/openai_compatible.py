"""A chat model behind any OpenAI-compatible `/v1/chat/completions` endpoint.

vLLM, llama.cpp's server, Ollama, OpenAI itself, or the safestack gateway: one pooled aiohttp
session per model (a third of httpx's CPU per request: a red-team run is thousands of them).
Failures become `ModelError`s a campaign can retry (timeouts, 429, 5xx, garbage) or not (other
4xx); a guard's block is an answer, `finish_reason: "content_filter"`, not an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator
from yarl import URL

from safestack.models.base import (
    Capabilities,
    ChatModel,
    Completion,
    GenerationSettings,
    ModelError,
    ModelOptions,
    model,
)
from safestack.records import Message, Role

if TYPE_CHECKING:
    import aiohttp

# Request fields the generation settings own: extra_body may not change what an Attempt records.
_SETTINGS_FIELDS = frozenset(
    {"model", "messages", "temperature", "top_p", "max_tokens", "seed", "stop", "stream"}
)
# Error codes meaning "a safety system refused": safestack's gateway (`blocked:<category>`, type
# `policy_violation`) and Azure OpenAI's content filter (`content_filter`).
_BLOCK_TYPES = frozenset({"policy_violation"})
_BLOCK_CODES = frozenset({"content_filter", "content_policy_violation"})


class EndpointError(ModelError):
    """A failed HTTP call: the status (None when no answer came) and the server's Retry-After."""

    def __init__(
        self,
        model: str,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(model, message, transient=transient)
        self.status = status
        self.retry_after = retry_after


class OpenAIOptions(ModelOptions):
    base_url: str = Field(
        default="http://127.0.0.1:8787/v1",
        description="The API root; a bare host gets /v1 (default: a local safestack gateway).",
    )
    model: str = Field(description="The model name the server knows.")
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(
        default=None, description="Read the key from this environment variable instead."
    )
    timeout_s: float = Field(default=60.0, gt=0, description="For the whole answer.")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    system_prompt: bool = True
    multi_turn: bool = True
    tools: bool = Field(default=False, description="Send tool messages with role 'tool'.")
    developer_role: Literal["system", "developer"] = Field(
        default="system",
        description="Role developer messages are sent as (most servers know only 'system').",
    )
    send_source: bool = Field(
        default=False,
        description="Mark tool output with safestack's `source` field, so a safestack gateway "
        "judges it as untrusted; other servers may reject the unknown field.",
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Extra request fields (e.g. top_k, repetition_penalty)."
    )

    @field_validator("extra_body")
    @classmethod
    def _no_settings_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(_SETTINGS_FIELDS & value.keys())
        if clash:
            raise ValueError(
                f"{', '.join(clash)} come from the generation settings or the target, "
                "not extra_body"
            )
        return value


def api_root(base_url: str) -> str:
    """The base URL without a trailing slash; a bare host gets `/v1`, as the gateway does."""
    url = URL(base_url)
    return str(url.with_path("/v1")) if url.path in ("", "/") else base_url.rstrip("/")


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110, section 10.2.3)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class _Reply:
    """What came back: read whole before the connection goes back to the pool."""

    status: int
    reason: str
    retry_after: str | None
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)  # ValueError (incl. UnicodeDecodeError) when it is not JSON


@model("openai")
class OpenAICompatibleModel(ChatModel):
    """A model served over HTTP with OpenAI's chat-completions API."""

    Options = OpenAIOptions
    options: OpenAIOptions

    def __init__(self, options: OpenAIOptions | None = None) -> None:
        super().__init__(options)
        self._model_id = f"{self.options.model}@{api_root(self.options.base_url)}"
        self.capabilities = Capabilities(
            system_prompt=self.options.system_prompt,
            multi_turn=self.options.multi_turn,
            tools=self.options.tools,
        )
        self.url = api_root(self.options.base_url) + "/chat/completions"
        self._headers = {**self.options.headers}
        key = self._api_key()
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        if not any(name.lower() == "content-type" for name in self._headers):
            self._headers["Content-Type"] = "application/json"
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None

    @property
    def model_id(self) -> str:
        return self._model_id

    def _api_key(self) -> str | None:
        if self.options.api_key_env is None:
            return self.options.api_key.get_secret_value() if self.options.api_key else None
        key = os.environ.get(self.options.api_key_env)
        if not key:
            raise ModelError(
                self.model_id,
                f"api_key_env names {self.options.api_key_env}, which is not set: export it "
                "or give api_key",
            )
        return key

    def _session_for_calls(self) -> aiohttp.ClientSession:
        """The pooled session of the running event loop (a session cannot outlive its loop)."""
        # aiohttp is imported on first use: it costs a quarter of a second, and loading a
        # campaign imports every registered model kind.
        import aiohttp
        from aiohttp.helpers import get_env_proxy_for_url

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            url = URL(self.url)
            # As httpx did: certifi's CA bundle (or SSL_CERT_FILE / SSL_CERT_DIR), and the proxy
            # the environment names for this URL, read once. aiohttp's own `trust_env` would
            # also look up ~/.netrc in a thread on every request.
            tls: ssl.SSLContext | bool = True
            if url.scheme == "https":
                import httpx  # only for its CA-bundle logic (certifi, SSL_CERT_FILE/DIR)

                tls = httpx.create_ssl_context()
            try:
                self._proxy, self._proxy_auth = get_env_proxy_for_url(url)
            except LookupError:
                self._proxy, self._proxy_auth = None, None
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(
                    total=self.options.timeout_s, sock_connect=self.options.connect_timeout_s
                ),
                connector=aiohttp.TCPConnector(ssl=tls),
            )
            self._loop = loop
        return self._session

    def wire_messages(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        """The conversation in the request's shape."""
        wire: list[dict[str, Any]] = []
        for message in messages:
            item: dict[str, Any] = {"role": message.role.value, "content": message.content}
            if message.role == Role.DEVELOPER:
                item["role"] = self.options.developer_role
            elif message.role == Role.TOOL and self.options.tools:
                item["tool_call_id"] = message.name or "call_0"
            elif message.role == Role.TOOL:
                # Without tool support a server rejects role "tool": the output is shown as data.
                source = f" from {message.name}" if message.name else ""
                item = {"role": "user", "content": f"Tool output{source}:\n{message.content}"}
            if self.options.send_source and message.source in ("tool", "retrieval"):
                item["source"] = message.source
            elif self.options.send_source and message.role == Role.TOOL:
                item["source"] = "tool"
            wire.append(item)
        return wire

    def request_body(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.options.extra_body,
            "model": self.options.model,
            "messages": self.wire_messages(messages),
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_tokens,
        }
        if settings.seed is not None:
            body["seed"] = settings.seed
        if settings.stop:
            body["stop"] = list(settings.stop)
        return body

    async def complete(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> Completion:
        # Serialised as httpx's `json=` did: compact, UTF-8, no NaN.
        payload = json.dumps(
            self.request_body(messages, settings),
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
        import aiohttp

        session = self._session_for_calls()
        started = time.perf_counter()
        try:
            async with session.post(
                self.url,
                data=payload,
                allow_redirects=False,  # httpx follows none either: a 3xx is an error
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as answer:
                response = _Reply(
                    answer.status,
                    answer.reason or "",
                    answer.headers.get("Retry-After"),
                    await answer.read(),
                )
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors
            raise EndpointError(
                self.model_id,
                f"no answer from {self.url} within {self.options.timeout_s:g}s "
                f"({type(exc).__name__})",
                transient=True,
            ) from exc
        except aiohttp.ClientError as exc:
            raise EndpointError(
                self.model_id, f"cannot reach {self.url}: {exc!r}", transient=True
            ) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            return self._refusal_or_raise(response, latency_ms)
        return self._completion(response, latency_ms)

    def _completion(self, response: _Reply, latency_ms: float) -> Completion:
        try:
            data = response.json()
        except ValueError:
            raise self._garbage(response, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise self._garbage(response, "the body is not a JSON object")
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or not isinstance(message, dict):
            raise self._garbage(response, "no choices[0].message")
        finish = choice.get("finish_reason")
        text = _text(message)
        if text is None and finish == "content_filter":
            text = ""  # Azure's filter answers with null content and nothing else
        if text is None:
            raise self._garbage(response, "choices[0].message has no text, refusal or tool call")
        usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
        return Completion(
            text=text,
            model=str(data.get("model") or self.options.model),
            finish_reason=finish if isinstance(finish, str) else None,
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            latency_ms=latency_ms,
        )

    def _refusal_or_raise(self, response: _Reply, latency_ms: float) -> Completion:
        status = response.status
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        detail = str(error.get("message") or response.text[:300] or response.reason)
        code, kind = str(error.get("code") or ""), str(error.get("type") or "")
        if status == 400 and (
            code.startswith("blocked:") or code in _BLOCK_CODES or kind in _BLOCK_TYPES
        ):
            # The guard refused the request: the refusal is the target's answer to score.
            return Completion(
                text=detail,
                model=self.options.model,
                finish_reason="content_filter",
                latency_ms=latency_ms,
            )
        transient = status in (408, 409, 429) or status >= 500
        label = f" {code}" if code else ""
        raise EndpointError(
            self.model_id,
            f"HTTP {status}{label} from {self.url}: {detail}",
            transient=transient,
            status=status,
            retry_after=retry_after(response.retry_after),
        )

    def _garbage(self, response: _Reply, what: str) -> EndpointError:
        # Proxies and overloaded servers answer 200 with HTML or a truncated body; retry those.
        return EndpointError(
            self.model_id,
            f"HTTP 200 from {self.url} is not an OpenAI chat completion ({what}): "
            f"{response.text[:200]!r}",
            transient=True,
            status=response.status,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        # A session left behind by an earlier event loop cannot be closed from this one.
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()


def _text(message: dict[str, Any]) -> str | None:
    """The answer's text: content (a string or text parts), else a refusal, else tool calls."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if isinstance(content, str) and (content or not message.get("tool_calls")):
        return content
    if isinstance(message.get("refusal"), str):
        return str(message["refusal"])
    if isinstance(message.get("tool_calls"), list):
        # No field for tool calls on a Completion: the judge reads them as the answer.
        return json.dumps(message["tool_calls"], ensure_ascii=False)
    return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
