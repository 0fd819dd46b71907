"""Conversations: chat with one target or two side by side, streamed to the page as server-sent
events; branch from any turn (a turn's parent is the turn it follows, so a new message after an
earlier turn starts a branch). Only the conversation's expert writes in it; leads read it.

A target that errors or times out sends an `error` event and stores nothing as an answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from safestack.console.attempts import path_to
from safestack.console.engagements import check_open, store_of, visible_engagement
from safestack.console.rendering import render
from safestack.console.session import User, principal
from safestack.console.targets import ConsoleTargets, stream_answer
from safestack.models.base import GenerationSettings, ModelError
from safestack.records import Message, Role
from safestack.store.console import Conversation, Turn

MAX_MESSAGE_CHARS = 50_000
MAX_TARGETS = 2


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parent_id: str | None = None
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    targets: list[str] = Field(min_length=1, max_length=MAX_TARGETS)
    system_prompt: str = Field(default="", max_length=MAX_MESSAGE_CHARS)


def visible_conversation(request: Request, conversation_id: str) -> Conversation:
    conversation = store_of(request).console.conversation(conversation_id)
    if conversation is None:
        raise HTTPException(404, "no such conversation")
    user = principal(request)
    visible_engagement(request, conversation.engagement_id)
    if conversation.expert != user.id and not user.is_lead:
        raise HTTPException(404, "no such conversation")
    return conversation


def latest_leaf(turns: Sequence[Turn], start: str) -> str:
    """The newest turn at the end of the newest branch under `start`."""
    children: dict[str | None, list[Turn]] = {}
    for turn in turns:
        children.setdefault(turn.parent_id, []).append(turn)
    current = start
    while children.get(current):
        current = max(children[current], key=lambda t: (t.created_at, t.id)).id
    return current


def steps(turns: Sequence[Turn], leaf: str | None) -> list[dict[str, Any]]:
    """The page's rows: each turn on the path to `leaf`, with its siblings (other branches;
    answers of other targets to the same message, shown side by side)."""
    if leaf is None:
        return []
    children: dict[str | None, list[Turn]] = {}
    for turn in turns:
        children.setdefault(turn.parent_id, []).append(turn)
    rows = []
    for turn in path_to(turns, leaf):
        siblings = [t for t in children.get(turn.parent_id, []) if t.role == turn.role]
        rows.append(
            {
                "turn": turn,
                "siblings": [
                    {"turn": s, "leaf": latest_leaf(turns, s.id), "current": s.id == turn.id}
                    for s in siblings
                ],
            }
        )
    return rows


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def chat_router() -> APIRouter:
    router = APIRouter()

    @router.post("/e/{engagement_id}/conversations")
    def create(
        request: Request,
        engagement_id: str,
        user: User,
        title: str = Form("", max_length=200),
        system_prompt: str = Form("You are a helpful assistant.", max_length=MAX_MESSAGE_CHARS),
    ) -> Response:
        engagement = visible_engagement(request, engagement_id)
        conversation = store_of(request).console.create_conversation(
            engagement.id, user.id, title.strip() or "untitled", system_prompt
        )
        return RedirectResponse(f"/c/{conversation.id}", status_code=303)

    @router.get("/c/{conversation_id}", response_class=HTMLResponse)
    def view(
        request: Request,
        conversation_id: str,
        user: User,
        leaf: str | None = None,
    ) -> Response:
        conversation = visible_conversation(request, conversation_id)
        engagement = visible_engagement(request, conversation.engagement_id)
        store = store_of(request)
        turns = store.console.turns(conversation.id)
        if leaf is None and turns:
            leaf = max(turns, key=lambda t: (t.created_at, t.id)).id
        if leaf is not None and leaf not in {t.id for t in turns}:
            raise HTTPException(404, "no such turn in this conversation")
        flagged = {f.turn_id: f for f in store.console.findings(engagement.id)}
        return render(
            request,
            "conversation.html",
            conversation=conversation,
            engagement=engagement,
            steps=steps(turns, leaf),
            leaf=leaf,
            flagged=flagged,
            writable=conversation.expert == user.id,
        )

    @router.post("/c/{conversation_id}/send")
    async def send(
        request: Request,
        conversation_id: str,
        body: SendRequest,
        user: User,
    ) -> Response:
        conversation = await asyncio.to_thread(visible_conversation, request, conversation_id)
        if conversation.expert != user.id:
            raise HTTPException(403, "only the conversation's expert writes in it")
        engagement = await asyncio.to_thread(
            visible_engagement, request, conversation.engagement_id
        )
        check_open(engagement, user)
        outside = [t for t in body.targets if t not in engagement.targets]
        if outside:
            raise HTTPException(400, f"target {', '.join(outside)} is not in this engagement")
        targets: ConsoleTargets = request.app.state.targets
        store = store_of(request)
        turns = await asyncio.to_thread(store.console.turns, conversation.id)
        history = path_to(turns, body.parent_id) if body.parent_id else []
        if body.parent_id and not history:
            raise HTTPException(400, "the turn to continue from is not in this conversation")
        system = body.system_prompt if body.system_prompt.strip() else conversation.system_prompt
        question = await asyncio.to_thread(
            store.console.add_turn,
            conversation.id,
            body.parent_id,
            "user",
            body.content,
            system_prompt=system,
        )
        messages = [Message(role=Role(t.role), content=t.content) for t in history]
        messages.append(Message(role=Role.USER, content=body.content))
        return StreamingResponse(
            _answers(request, targets, body.targets, system, messages, question),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router


async def _answers(
    request: Request,
    targets: ConsoleTargets,
    names: Sequence[str],
    system: str,
    messages: list[Message],
    question: Turn,
) -> AsyncIterator[bytes]:
    """Stream each target's answer (interleaved when two answer), then store each one that
    completed; an error or timeout is sent as an `error` event and nothing is stored."""
    store = store_of(request)
    events: asyncio.Queue[bytes | None] = asyncio.Queue()
    yield sse("user", {"turn_id": question.id})

    async def one(name: str) -> None:
        spec = targets.spec(name)
        try:
            model = targets.model(name)
            sent = list(messages)
            if system and model.capabilities.system_prompt:
                sent.insert(0, Message(role=Role.SYSTEM, content=system))
            started = asyncio.get_running_loop().time()
            pieces: list[str] = []
            async for piece in stream_answer(model, sent, GenerationSettings(), spec.timeout_s):
                pieces.append(piece)
                await events.put(sse("delta", {"target": name, "text": piece}))
            latency = (asyncio.get_running_loop().time() - started) * 1000
            answer = await asyncio.to_thread(
                store.console.add_turn,
                question.conversation_id,
                question.id,
                "assistant",
                "".join(pieces),
                target=name,
                target_model=model.model_id,
                latency_ms=latency,
            )
            await events.put(sse("done", {"target": name, "turn_id": answer.id}))
        except TimeoutError:
            message = f"{name}: no complete answer within {spec.timeout_s:g} s; nothing was stored"
            await events.put(sse("error", {"target": name, "message": message}))
        except ModelError as exc:
            await events.put(
                sse("error", {"target": name, "message": f"{exc}; nothing was stored"})
            )
        except Exception as exc:  # any other failure is shown, never stored as an answer
            message = f"{name}: {type(exc).__name__}: {exc}; nothing was stored"
            await events.put(sse("error", {"target": name, "message": message}))

    async def run_all() -> None:
        try:
            await asyncio.gather(*(one(name) for name in names))
        finally:
            await events.put(None)

    task = asyncio.create_task(run_all())
    try:
        while (event := await events.get()) is not None:
            yield event
        yield sse("end", {"conversation_id": question.conversation_id})
    finally:
        if not task.done():
            task.cancel()
