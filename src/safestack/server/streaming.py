"""Streamed chat answers: the upstream's server-sent events relayed through the guard's checker.

Content deltas go through one `OutputStream` per choice, which releases text behind a bounded
hold-back window once it is checked; role deltas pass at once; tool-call arguments are gathered and
checked whole when their choice ends. A violation stops reading the upstream and ends the choice
with the policy's message and `finish_reason: content_filter`. Before the last events leave, the
audit event is written; then a final chunk (`choices: []`, with a `safestack` field holding each
choice's StreamEnd) and `[DONE]`. A stream that fails midway is audited with the failure's status
(502, 504, ...; 499 when the client left), although the client already saw 200.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.responses import Response, StreamingResponse

from safestack.guard import (
    Guard,
    GuardContext,
    InputDecision,
    OutputDecision,
    OutputStream,
    Reason,
    StreamEnd,
)
from safestack.records import Action, Conversation
from safestack.server.calls import Call, conclude, opened
from safestack.server.errors import ApiError, client_closed, internal_error
from safestack.server.gateway import Gateway
from safestack.server.messages import ChatRequest
from safestack.server.upstream import UpstreamStream
from safestack.server.verdicts import summary

log = logging.getLogger("safestack.server")

_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def relay(
    gateway: Gateway,
    call: Call,
    guard: Guard,
    chat: ChatRequest,
    decision: InputDecision,
    body: dict[str, Any],
) -> Response:
    """Open the upstream stream (errors here are ordinary 502/504 answers), then relay it."""
    upstream, _ = gateway.require_upstream()
    await opened(gateway, call)
    started = time.perf_counter()
    stream = await upstream.open_stream(body)
    gateway.metrics.upstream_latency.observe(time.perf_counter() - started)
    relay = _Relay(gateway, call, guard, chat.conversation, decision.context, chat.model)
    relay.reasons.extend(decision.reasons)
    call.deferred = True
    return StreamingResponse(
        relay.events(stream),
        media_type="text/event-stream",
        headers={**_HEADERS, **call.headers, **call.verdict_headers()},
    )


async def replay(
    gateway: Gateway, call: Call, completion_id: str, model: str, text: str, reasons: list[Reason]
) -> Response:
    """The guard's own answer (a redirect) as a stream of chunks."""
    await opened(gateway, call)
    relay = _Relay(gateway, call, None, None, None, model, completion_id)
    relay.reasons.extend(reasons)
    call.deferred = True

    async def events() -> AsyncIterator[bytes]:
        yield relay.event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        yield relay.event([{"index": 0, "delta": {"content": text}}])
        yield relay.event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        async for event in relay.close():
            yield event

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**_HEADERS, **call.headers, **call.verdict_headers()},
    )


@dataclass(slots=True)
class _Choice:
    stream: OutputStream
    sent: list[str] = field(default_factory=list)
    tools: dict[int, dict[str, Any]] = field(default_factory=dict)
    end: StreamEnd | None = None


class _Relay:
    def __init__(
        self,
        gateway: Gateway,
        call: Call,
        guard: Guard | None,
        conversation: Conversation | None,
        context: GuardContext | None,
        model: str,
        completion_id: str | None = None,
    ):
        self.gateway = gateway
        self.call = call
        self.guard = guard
        self.conversation = conversation
        self.context = context
        self.reasons: list[Reason] = []
        self.choices: dict[int, _Choice] = {}
        self.stopped = False
        self.template: dict[str, Any] = {
            "id": completion_id or f"chatcmpl-{call.id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

    # -- events ------------------------------------------------------------------------------
    def event(self, choices: list[dict[str, Any]], **fields: Any) -> bytes:
        for choice in choices:
            choice.setdefault("finish_reason", None)
        return _sse({**self.template, "choices": choices, **fields})

    async def events(self, upstream: UpstreamStream) -> AsyncIterator[bytes]:
        failure: ApiError | None = None
        ended = False
        try:
            try:
                async for chunk in upstream.chunks():
                    for event in await self._take(chunk):
                        yield event
                    if self.stopped:
                        break
                for event in await self._finish_all("content_filter" if self.stopped else "stop"):
                    yield event
            except ApiError as error:
                failure = error
            except Exception as exc:  # fail closed: stop, say so, never release unchecked text
                log.exception("request %s: the stream failed", self.call.id)
                failure = internal_error(exc, self.call.id)
            ended = True
        finally:
            with anyio.CancelScope(shield=True):
                await upstream.aclose()
                if not ended:  # the client went away: nothing more can be sent, audit what was
                    self.call.error = "the client went away before the end of the stream"
                    self.call.status = client_closed().status
                    self._note_output()
                    await conclude(self.gateway, self.call)
        async for event in self.close(failure):
            yield event

    async def close(self, failure: ApiError | None = None) -> AsyncIterator[bytes]:
        """Audit, then the last events: the final chunk (or the error) and [DONE]."""
        if failure is not None:
            # The 200 status line has already left; the audit event records what really happened.
            self.call.status = failure.status
            self.call.error = f"{failure.status} {failure.code}: {failure.message} (mid-stream)"
        self._note_output()
        with anyio.CancelScope(shield=True):
            audit_failure = await conclude(self.gateway, self.call)
        failure = failure or audit_failure
        if failure is not None:
            yield _sse(failure.body())
        else:
            ends = [
                c.end.model_dump(mode="json", exclude={"schema_version"})
                for _, c in sorted(self.choices.items())
                if c.end is not None
            ]
            yield self.event([], safestack={**summary(self.call, self.reasons), "choices": ends})
        yield b"data: [DONE]\n\n"

    # -- guarding ----------------------------------------------------------------------------
    async def _take(self, chunk: dict[str, Any]) -> list[bytes]:
        self.template.update({k: v for k, v in chunk.items() if k not in ("choices", "usage")})
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return [_sse(chunk)]  # usage and other choice-less chunks pass as they are
        events = []
        for item in choices:
            if not isinstance(item, dict):
                continue
            index = item.get("index", 0)
            choice = self._choice(index)
            if choice.end is not None:
                continue
            delta = item.get("delta") or {}
            passing = {k: v for k, v in delta.items() if k not in ("content", "tool_calls")}
            content = delta.get("content")
            if isinstance(content, str) and content:
                released = await choice.stream.afeed(content)
                if released:
                    passing["content"] = released
                    choice.sent.append(released)
            for tool in delta.get("tool_calls") or []:
                _gather(choice.tools, tool)
            if passing:
                events.append(self.event([{"index": index, "delta": passing}]))
            if choice.stream.stopped:
                self.stopped = True
            if choice.stream.stopped or item.get("finish_reason"):
                events.extend(await self._finish(index, choice, item.get("finish_reason")))
        return events

    async def _finish_all(self, reason: str) -> list[bytes]:
        events = []
        for index, choice in sorted(self.choices.items()):
            if choice.end is None:
                events.extend(await self._finish(index, choice, reason))
        return events

    async def _finish(
        self, index: int, choice: _Choice, upstream_reason: str | None
    ) -> list[bytes]:
        end = await choice.stream.afinish()
        choice.end = end
        self.gateway.metrics.guard_latency.labels("stream").observe(end.check_ms / 1000)
        self.call.act(end.action, end.flagged_categories, end.category_scores)
        self.reasons.extend(end.reasons)
        events = []
        if end.text:
            choice.sent.append(end.text)
            events.append(self.event([{"index": index, "delta": {"content": end.text}}]))
        finish = "content_filter" if end.finish_reason == "content_filter" else upstream_reason
        message = end.message
        if choice.tools and finish != "content_filter":
            tools, checked = await self._check_tools(choice.tools)
            choice.end = end = _with_tool_checks(end, checked)
            if end.finish_reason == "content_filter":
                message, finish = end.message, "content_filter"
            else:
                events.append(self.event([{"index": index, "delta": {"tool_calls": tools}}]))
        if message:
            choice.sent.append(message)
            events.append(self.event([{"index": index, "delta": {"content": message}}]))
        events.append(
            self.event([{"index": index, "delta": {}, "finish_reason": finish or "stop"}])
        )
        return events

    async def _check_tools(
        self, tools: dict[int, dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[OutputDecision]]:
        """Check each tool call's arguments whole, up to the first block: (the calls to send,
        the decisions)."""
        assert self.guard is not None and self.conversation is not None
        calls = []
        checked = []
        for index, tool in sorted(tools.items()):
            arguments = tool["function"]["arguments"]
            if arguments.strip():
                result = await self.guard.acheck_output(self.conversation, arguments, self.context)
                checked.append(result)
                scores = result.verdict.category_scores if result.verdict is not None else {}
                self.call.act(result.action, result.flagged_categories, scores)
                self.reasons.extend(result.reasons)
                if result.action in (Action.BLOCK, Action.REDIRECT):
                    return [], checked
                tool["function"]["arguments"] = result.text
            calls.append({"index": index, **tool})
        return calls, checked

    def _choice(self, index: int) -> _Choice:
        choice = self.choices.get(index)
        if choice is None:
            assert self.guard is not None
            choice = self.choices[index] = _Choice(
                self.guard.stream(self.context, self.conversation)
            )
        return choice

    def _note_output(self) -> None:
        if self.choices:
            self.call.output = "\n".join("".join(c.sent) for _, c in sorted(self.choices.items()))
            self.call.response_content = self.call.output


def _with_tool_checks(end: StreamEnd, checked: list[OutputDecision]) -> StreamEnd:
    """The choice's final record with its tool calls' checks folded in, so that it says what the
    client saw: a leak in the arguments is `leaked`, and a blocked call ends it `content_filter`."""
    if not checked:
        return end
    action = max((end.action, *(c.action for c in checked)), key=lambda a: a.rank)
    update: dict[str, Any] = {
        "action": action,
        "leaked": end.leaked or any(c.leaked for c in checked),
        "reasons": [*end.reasons, *(r for c in checked for r in c.reasons)],
    }
    blocked = checked[-1]
    if blocked.action in (Action.BLOCK, Action.REDIRECT):
        update.update(finish_reason="content_filter", message=blocked.text)
    return end.model_copy(update=update)


def _gather(tools: dict[int, dict[str, Any]], delta: Any) -> None:
    """Add one tool-call delta to the calls being assembled (OpenAI sends arguments in pieces)."""
    if not isinstance(delta, dict):
        return
    tool = tools.setdefault(
        int(delta.get("index", 0)),
        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
    )
    if delta.get("id"):
        tool["id"] = delta["id"]
    if delta.get("type"):
        tool["type"] = delta["type"]
    function = delta.get("function") or {}
    if isinstance(function.get("name"), str):
        tool["function"]["name"] += function["name"]
    if isinstance(function.get("arguments"), str):
        tool["function"]["arguments"] += function["arguments"]


def _sse(data: dict[str, Any]) -> bytes:
    return (
        b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )
