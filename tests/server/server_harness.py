"""Gateway fixtures: real uvicorn servers on loopback, for the gateway and for a fake upstream.

The fake upstream is a small OpenAI-compatible FastAPI app (chat completions, streamed or not, and
/v1/models) that tests steer: what to answer, in what chunks, how slowly, or to echo the system
prompt it was sent (a leak, canary included). It records every request it gets. The gateway runs
with the default policy (built-in models and presidio, loaded once per session) on a fresh
SQLite store per test.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from safestack.policy import default_policy
from safestack.server import PolicyCache, Upstream, create_app
from safestack.server.audit import AuditTrail
from safestack.server.protocol import OpenAIH11Protocol
from safestack.server.ratelimit import MemoryRateLimiter, RateLimiter
from safestack.server.storecalls import database_timeouts
from safestack.settings import Settings
from safestack.store import Store

SYSTEM_PROMPT = (
    "You are SupportBot for Acme Inc. Answer questions about Acme routers and their warranty only. "
    "Never discuss competitor pricing or internal roadmaps. The loyalty discount code is ALPHA-77 "
    "and may be given only to customers whose account is verified. Escalate legal threats to "
    "legal@acme.example and keep every answer under two hundred words."
)
ANSWER = (
    "To reset an Acme router, unplug it for ten seconds, plug it back in, and wait until the "
    "light turns green. If that does not help, hold the reset button on the back for thirty "
    "seconds with a paper clip; the router restarts with factory settings."
)
MODELS = ["acme-chat", "acme-large"]
UPSTREAM_KEY = "upstream-secret-not-the-clients"


# -- servers in threads ------------------------------------------------------------------------
@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1, an ephemeral port, in a thread; yields its URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            http=OpenAIH11Protocol,  # as `safestack serve` runs it
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the fake upstream -------------------------------------------------------------------------
@dataclass
class FakeUpstream:
    """An OpenAI-compatible model server whose answers the test decides."""

    url: str = ""
    reply: str = ANSWER
    reply_for: Callable[[dict[str, Any]], str] | None = None
    chunk_size: int = 4
    delay: float = 0.0  # before answering
    chunk_delay: float = 0.0  # between stream chunks
    tool_call: dict[str, Any] | None = None  # {"name": ..., "arguments": ...}
    die_after: int | None = None  # content chunks streamed before the upstream dies mid-body
    requests: list[dict[str, Any]] = field(default_factory=list)
    chunks_sent: int = 0  # content chunks streamed so far, over every request
    authorizations: list[str | None] = field(default_factory=list)

    def echo_system_prompt(self) -> None:
        """Answer with the system prompt as received: a leak, canary and all."""
        self.reply_for = lambda body: (
            "Sure! My instructions are: "
            + next(m["content"] for m in body["messages"] if m["role"] == "system")
        )

    def answer(self, body: dict[str, Any]) -> str:
        return self.reply_for(body) if self.reply_for is not None else self.reply

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "test"} for m in MODELS],
            }

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            self.authorizations.append(request.headers.get("authorization"))
            if self.delay:
                await asyncio.sleep(self.delay)
            if body["model"] not in MODELS:
                error = {"message": "no such model", "type": "invalid_request_error"}
                return JSONResponse({"error": {**error, "code": "model_not_found"}}, 404)
            text = self.answer(body)
            if body.get("stream"):
                return StreamingResponse(self._chunks(body, text), media_type="text/event-stream")
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if self.tool_call is not None:
                message["tool_calls"] = [
                    {"id": "call_1", "type": "function", "function": self.tool_call}
                ]
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                }
            )

        return app

    async def _chunks(self, body: dict[str, Any], text: str) -> AsyncIterator[bytes]:
        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(chunk)}\n\n".encode()

        yield event({"role": "assistant", "content": ""})
        for start in range(0, len(text), self.chunk_size):
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            if self.die_after is not None and start >= self.die_after * self.chunk_size:
                raise RuntimeError("the fake upstream dies mid-stream")  # uvicorn cuts the body
            self.chunks_sent += 1
            yield event({"content": text[start : start + self.chunk_size]})
        if self.tool_call is not None:  # OpenAI's shape: the call, then its arguments in pieces
            call = {"index": 0, "id": "call_1", "type": "function"}
            yield event({"tool_calls": [{**call, "function": {"name": self.tool_call["name"]}}]})
            arguments = self.tool_call["arguments"]
            for start in range(0, len(arguments), 16):
                piece = {"arguments": arguments[start : start + 16]}
                yield event({"tool_calls": [{"index": 0, "function": piece}]})
            yield event({}, "tool_calls")
        else:
            yield event({}, "stop")
        yield b"data: [DONE]\n\n"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    with serving(fake.app()) as url:
        fake.url = url + "/v1"
        yield fake


# -- the gateway -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def policies() -> PolicyCache:
    """The default policy, built-in models included, loaded and warmed once."""
    return PolicyCache(default_policy())


@dataclass
class Gateway:
    url: str
    store: Store
    settings: Settings
    trail: AuditTrail
    stop: Callable[[], None]  # shut the server down (its lifespan ends), as a restart would

    def key(self, *scopes: str, **options: Any) -> str:
        """A new key's secret (scopes default to chat and moderate)."""
        _, secret = self.store.keys.create("test", list(scopes) or ["chat", "moderate"], **options)
        return secret

    def client(self, secret: str | None = None, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.url + "/v1",
            api_key=secret if secret is not None else self.key(),
            max_retries=0,
            timeout=30,
            **options,
        )

    def audit(self, **query: Any) -> list[Any]:
        """The store's events, once this gateway's audit journal is drained into it."""
        self.trail.drain_now()
        return self.store.audit.events(**query)


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def start_gateway(policies: PolicyCache, tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateways: `start_gateway(upstream_url, db_url=..., limiter=..., **settings)`."""
    stack: list[Any] = []

    def start(
        upstream_url: str | None,
        *,
        db_url: str | None = None,
        limiter: RateLimiter | None = None,
        require_auth: bool = True,
        **overrides: Any,
    ) -> Gateway:
        settings = Settings(home=tmp_path, **overrides)
        store = Store.open(
            db_url or f"sqlite:///{tmp_path}/gateway-{len(stack)}.db",
            timeouts=database_timeouts(settings),
        )
        upstream = (
            Upstream(
                upstream_url,
                api_key=UPSTREAM_KEY,
                timeout=settings.upstream_timeout,
                connect_timeout=settings.upstream_connect_timeout,
            )
            if upstream_url
            else None
        )
        app = create_app(
            settings,
            store=store,
            limiter=limiter or MemoryRateLimiter(),
            policies=policies,
            upstream=upstream,
            require_auth=require_auth,
        )
        server = serving(app)
        url = server.__enter__()
        running = [server]

        def stop() -> None:
            if running:
                running.pop().__exit__(None, None, None)

        stack.append((stop, store))
        return Gateway(url, store, settings, app.state.gateway.audit, stop)

    yield start
    for stop, store in reversed(stack):
        stop()
        store.close()


@pytest.fixture
def gateway(start_gateway: GatewayFactory, upstream: FakeUpstream) -> Gateway:
    """A gateway in front of the fake upstream, auth on, default settings."""
    return start_gateway(upstream.url)


def system(content: str = SYSTEM_PROMPT) -> dict[str, Any]:
    return {"role": "system", "content": content}


def user(content: str) -> dict[str, Any]:
    return {"role": "user", "content": content}
