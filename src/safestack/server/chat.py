"""POST /v1/chat/completions: the guard between an OpenAI client and the upstream model.

Images first: each is hashed and matched against the hash banks (`images.py`; a match is a 400
`media_match` and a case). Then the input decision: a blocked request is answered 400 in OpenAI's
error shape with the policy code, an election question gets the redirect as the assistant's answer, anything else goes
upstream with the guard's messages (spotlighted, redacted, canary planted). The answer is checked
before it is returned: whole (`check_output`, per choice and per tool call) or as it streams
(`streaming.py`).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from safestack.guard import Guard, GuardContext, OutputDecision, Reason
from safestack.records import Action, Conversation
from safestack.server.calls import Call, begin, handle, opened, read_json
from safestack.server.enforcement import enforce_end_user
from safestack.server.errors import json_response
from safestack.server.gateway import Gateway
from safestack.server.images import ScreenedImage
from safestack.server.limits import WorkLimits
from safestack.server.messages import (
    ChatRequest,
    forward_payload,
    parse_chat_request,
    with_image_urls,
)
from safestack.server.metrics import Metrics
from safestack.server.openapi import BODY_ERRORS, event_stream, json_content, operation
from safestack.server.provenance import sign_answers
from safestack.server.streaming import relay, replay
from safestack.server.verdicts import image_refusal, input_scores, refusal, summary

CHAT = "/v1/chat/completions"

router = APIRouter()


@router.post(
    CHAT,
    openapi_extra=operation(
        body="ChatCompletionRequest",
        ok={
            **json_content("ChatCompletion"),
            "text/event-stream": event_stream("ChatCompletionChunk", "StreamError"),
        },
        errors=(*BODY_ERRORS, 404, 502, 504, "4XX"),
    ),
)
async def chat_completions(request: Request) -> Response:
    """Chat through the guard (scope `chat`): JSON, or server-sent events with `stream: true`."""
    return await handle(request, CHAT, "chat", _chat)


async def _chat(gateway: Gateway, call: Call, request: Request) -> Response:
    settings = gateway.settings
    payload = await read_json(request, call, settings.max_request_bytes, settings.body_timeout)
    model = payload.get("model")
    call.model = model if isinstance(model, str) else None
    await enforce_end_user(gateway, call, payload)  # who it is for, and their measures
    limits = WorkLimits.of(call.key, settings)
    limits.check_messages(payload.get("messages"))  # before each message is even looked at
    locale = request.headers.get("x-safestack-locale") or gateway.settings.locale
    chat = parse_chat_request(payload, locale=locale)
    call.model, call.stream = chat.model, chat.stream
    images = await gateway.media.screen_parts(
        chat.images, call=call, request=request, store=gateway.store, calls=gateway.calls
    )
    chat = _with_images(chat, images)
    chars = sum(len(message.content) for message in chat.conversation.messages)
    await limits.charge_characters(gateway, call, chars, "messages")
    upstream, catalog = gateway.require_upstream()
    await catalog.check(call.key, chat.model)
    loaded = await gateway.policies.get(call.key.policy if call.key is not None else None)
    call.policy = loaded.policy.ref
    call.keep_content = loaded.policy.audit.content
    begin(gateway, call)  # written while the guard checks; durable before anything goes on

    started = time.perf_counter()
    decision = await loaded.guard.acheck_input(chat.conversation, locale=locale)
    gateway.metrics.guard_latency.labels("input").observe(time.perf_counter() - started)
    call.act(decision.action, decision.flagged_categories, input_scores(decision))
    reasons = list(decision.reasons)
    if decision.forward:
        for verdict in await gateway.media.judge(loaded, images):
            call.act(verdict.action, verdict.flagged_categories, verdict.category_scores)
            if verdict.action in (Action.BLOCK, Action.REDIRECT):
                raise image_refusal(call, verdict, reasons)
    await opened(gateway, call)  # no upstream call and no streamed byte without an audit record
    if not decision.forward:
        if decision.action is Action.REDIRECT and decision.response:
            return await _answer(gateway, call, chat, decision.response, reasons)
        raise refusal(call, decision)

    body = forward_payload(chat, decision)
    if chat.stream:
        return await relay(gateway, call, loaded.guard, chat, decision, body)
    started = time.perf_counter()
    completion = await upstream.complete(body)
    gateway.metrics.upstream_latency.observe(time.perf_counter() - started)
    texts = await _check_choices(
        loaded.guard,
        chat.conversation,
        decision.context,
        completion,
        call,
        reasons,
        gateway.metrics,
    )
    await sign_answers(request, completion, chat.model)  # C2PA text manifests, when enabled
    call.output = "\n".join(texts)
    call.response_content = completion.get("choices")
    return json_response({**completion, "safestack": summary(call, reasons)})


def _with_images(chat: ChatRequest, images: list[ScreenedImage]) -> ChatRequest:
    """The request with fetched images replaced by the bytes that were hashed (a data: URL), so the
    upstream never fetches a URL again and gets something else."""
    fetched = {image.part: image.data_url() for image in images if image.fetched}
    if not fetched:
        return chat
    return dataclasses.replace(chat, payload=with_image_urls(chat.payload, fetched))


async def _check_choices(
    guard: Guard,
    conversation: Conversation,
    context: GuardContext,
    completion: dict[str, Any],
    call: Call,
    reasons: list[Reason],
    metrics: Metrics,
) -> list[str]:
    """Check every choice's text and tool-call arguments in place; returns the texts sent."""
    sent: list[str] = []
    choices = completion.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            result = await _check(guard, conversation, content, context, call, reasons, metrics)
            message["content"] = result.text
            if result.action in (Action.BLOCK, Action.REDIRECT):
                message.pop("tool_calls", None)
                choice["finish_reason"] = "content_filter"
                sent.append(result.text)
                continue
            sent.append(result.text)
        for tool_call in message.get("tool_calls") or []:
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if not isinstance(arguments, str) or not arguments.strip():
                continue
            result = await _check(guard, conversation, arguments, context, call, reasons, metrics)
            if result.action in (Action.BLOCK, Action.REDIRECT):
                message.pop("tool_calls", None)
                message["content"] = result.text
                choice["finish_reason"] = "content_filter"
                sent.append(result.text)
                break
            assert function is not None
            function["arguments"] = result.text
    return sent


async def _check(
    guard: Guard,
    conversation: Conversation,
    text: str,
    context: GuardContext,
    call: Call,
    reasons: list[Reason],
    metrics: Metrics,
) -> OutputDecision:
    started = time.perf_counter()
    result = await guard.acheck_output(conversation, text, context)
    metrics.guard_latency.labels("output").observe(time.perf_counter() - started)
    scores = result.verdict.category_scores if result.verdict is not None else {}
    call.act(result.action, result.flagged_categories, scores)
    reasons.extend(result.reasons)
    return result


async def _answer(
    gateway: Gateway, call: Call, chat: ChatRequest, text: str, reasons: list[Reason]
) -> Response:
    """The guard's own answer (an election redirect) as a completion, streamed if asked."""
    call.output = text
    call.response_content = text
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if chat.stream:
        return await replay(gateway, call, completion_id, chat.model, text, reasons)
    return json_response(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": chat.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "safestack": summary(call, reasons),
        }
    )
