"""A chat model behind any OpenAI-compatible `/v1/chat/completions` endpoint.

vLLM, llama.cpp's server, Ollama, OpenAI itself, or the safestack gateway, over the one
OpenAI-compatible client (`safestack.http`). Failures become `ModelError`s a campaign can retry (timeouts, 429, 5xx, garbage) or not (other
4xx); a guard's block is an answer, `finish_reason: "content_filter"`, not an error.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from safestack.http import Endpoint, Reply, Timeouts, TransportFailure, api_root, transient_status
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
        super().__init__(model, message, transient=transient, retry_after=retry_after)
        self.status = status


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
        headers = {**self.options.headers}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        self.endpoint = Endpoint(
            self.url,
            Timeouts(connect=self.options.connect_timeout_s, total=self.options.timeout_s),
            headers,
        )

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
        started = time.perf_counter()
        try:
            response = await self.endpoint.apost(self.request_body(messages, settings))
        except TransportFailure as failure:
            raise self._unreachable(failure) from failure.cause
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            return self._refusal_or_raise(response, latency_ms)
        return self._completion(response, latency_ms)

    async def stream(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> AsyncIterator[str]:
        """The answer's text as it is generated (`stream: true`, server-sent events); a server that
        answers with one JSON body instead gives it in one piece. Failures raise as `complete`'s
        do; a guard's refusal is the answer."""
        started = time.perf_counter()
        try:
            async for item in self.endpoint.astream(
                {**self.request_body(messages, settings), "stream": True}
            ):
                if isinstance(item, Reply):
                    latency_ms = (time.perf_counter() - started) * 1000
                    if item.status != 200:
                        yield self._refusal_or_raise(item, latency_ms).text
                    else:
                        yield self._completion(item, latency_ms).text
                    return
                if item == b"[DONE]":
                    return
                text = self._delta(item)
                if text:
                    yield text
        except TransportFailure as failure:
            raise self._unreachable(failure) from failure.cause

    def _delta(self, data: bytes) -> str | None:
        """The text of one streamed chunk; an error event raises."""
        try:
            chunk = json.loads(data)
        except ValueError:
            raise EndpointError(
                self.model_id,
                f"the stream from {self.url} sent a chunk that is not JSON: {data[:200]!r}",
                transient=True,
            ) from None
        if not isinstance(chunk, dict):
            return None
        if isinstance(chunk.get("error"), dict):
            message = chunk["error"].get("message") or chunk["error"]
            raise EndpointError(
                self.model_id, f"the stream from {self.url} failed: {message}", transient=True
            )
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        delta = choice.get("delta") if isinstance(choice, dict) else None
        text = delta.get("content") if isinstance(delta, dict) else None
        return text if isinstance(text, str) else None

    def _unreachable(self, failure: TransportFailure) -> EndpointError:
        if isinstance(failure.cause, TimeoutError):  # aiohttp's timeouts are TimeoutErrors
            message = (
                f"no answer from {self.url} within {self.options.timeout_s:g}s "
                f"({type(failure.cause).__name__})"
            )
        else:
            message = f"cannot reach {self.url}: {failure.cause!r}"
        return EndpointError(self.model_id, message, transient=True)

    def _completion(self, response: Reply, latency_ms: float) -> Completion:
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

    def _refusal_or_raise(self, response: Reply, latency_ms: float) -> Completion:
        status = response.status
        error = response.error()
        detail = error.message or response.text[:300] or response.reason
        code, kind = error.code, error.type
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
        transient = transient_status(status)
        label = f" {code}" if code else ""
        raise EndpointError(
            self.model_id,
            f"HTTP {status}{label} from {self.url}: {detail}",
            transient=transient,
            status=status,
            retry_after=response.retry_after,
        )

    def _garbage(self, response: Reply, what: str) -> EndpointError:
        # Proxies and overloaded servers answer 200 with HTML or a truncated body; retry those.
        return EndpointError(
            self.model_id,
            f"HTTP 200 from {self.url} is not an OpenAI chat completion ({what}): "
            f"{response.text[:200]!r}",
            transient=True,
            status=response.status,
        )

    async def aclose(self) -> None:
        await self.endpoint.aclose()


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
