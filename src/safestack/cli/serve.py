"""`safestack serve`: the gateway, an OpenAI-compatible API with the guard in front of a model.

Registers itself on the root app when imported (cli/main.py imports it). Builds the settings, the
store, the rate limiter, the policy and the upstream here, at the edge, and hands them to
`safestack.server.create_app`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from safestack.cli.app import app, console, err_console, load_policy_file, state
from safestack.errors import SafestackError
from safestack.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from safestack.server import Upstream


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (SAFESTACK_HOST, default 127.0.0.1)."
    ),
    port: int | None = typer.Option(
        None, "--port", help="Port to listen on (SAFESTACK_PORT, default 8787)."
    ),
    upstream: str | None = typer.Option(
        None,
        "--upstream",
        help="OpenAI-compatible base URL of the model server (SAFESTACK_UPSTREAM_URL), "
        "e.g. http://127.0.0.1:8000/v1 for vLLM or http://127.0.0.1:11434/v1 for Ollama.",
    ),
    policy: Path | None = typer.Option(
        None,
        "--policy",
        "-p",
        help="Policy YAML for keys without their own (SAFESTACK_POLICY; built-in default).",
    ),
    no_auth: bool = typer.Option(
        False,
        "--no-auth",
        help="Accept requests without an API key. Local development only: anyone who can reach "
        "the port can use the upstream.",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        help="Gateway processes sharing the port (SAFESTACK_WORKERS, default 1), one per core: "
        "each loads its own models (~5-10 s, ~400 MB). More than one needs SAFESTACK_REDIS_URL, "
        "so that the workers share the rate limits.",
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Run the gateway: /v1/chat/completions, /v1/moderations, /v1/models, /healthz, /readyz,
    /metrics.

    Examples:

      safestack serve --upstream http://127.0.0.1:8000/v1

      safestack keys create my-app --scope chat --scope moderate

      SAFESTACK_DB_URL=postgresql://gw@db/safestack SAFESTACK_REDIS_URL=redis://cache:6379/0
      safestack serve --host 0.0.0.0 --upstream http://vllm:8000/v1 --workers 2
    """
    import uvicorn

    from safestack.server import PolicyCache, create_app
    from safestack.server.protocol import OpenAIH11Protocol
    from safestack.server.ratelimit import rate_limiter_from_url
    from safestack.server.storecalls import database_timeouts
    from safestack.store import Store

    st = state(ctx)
    overrides = {
        "host": host,
        "port": port,
        "upstream_url": upstream,
        "policy": policy,
        "workers": workers,
    }
    settings = st.settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if settings.workers > 1:
        _serve_workers(settings, require_auth=not no_auth, log_level=log_level)
        return
    limiter = rate_limiter_from_url(settings.redis_url)
    # With the gateway's timeouts: a database that does not answer fails here, within seconds.
    store = Store.open(settings.database_url(), timeouts=database_timeouts(settings))
    try:
        err_console.print(f"loading the policy and its detectors ({settings.policy or 'built-in'})")
        if settings.policy is not None:
            load_policy_file(settings.policy)  # a bad detector option names its file and line
        policies = PolicyCache(settings.policy, models=st.models)
        loaded = policies.default
        gateway_upstream = _upstream(settings)
        fastapi_app = create_app(
            settings,
            store=store,
            limiter=limiter,
            policies=policies,
            upstream=gateway_upstream,
            require_auth=not no_auth,
        )
        limits = "in Redis" if settings.redis_url else "in memory"
        console.print(
            f"safestack gateway on http://{settings.host}:{settings.port}  "
            f"policy {loaded.policy.ref}  store {store.display_url}  rate limits {limits}",
            soft_wrap=True,
        )
        _print_access(gateway_upstream.base_url if gateway_upstream else None, no_auth)
        config = uvicorn.Config(
            fastapi_app,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            access_log=False,
            http=OpenAIH11Protocol,
        )
        asyncio.run(_serve(uvicorn.Server(config), limiter))
    finally:
        store.close()


async def _serve(server: Any, limiter: Any) -> None:
    """Serve until stopped, then close the rate limiter in the loop its connections belong to."""
    try:
        await server.serve()
    finally:
        closing = getattr(limiter, "aclose", None)
        if closing is not None:
            await closing()


def _upstream(settings: Settings) -> Upstream | None:
    from safestack.server import Upstream

    if not settings.upstream_url:
        return None
    secret = settings.upstream_api_key
    return Upstream(
        settings.upstream_url,
        api_key=secret.get_secret_value() if secret is not None else None,
        timeout=settings.upstream_timeout,
        connect_timeout=settings.upstream_connect_timeout,
    )


def _print_access(upstream: str | None, no_auth: bool) -> None:
    from safestack.server.errors import NO_UPSTREAM

    console.print(f"upstream {upstream}" if upstream else NO_UPSTREAM, soft_wrap=True)
    if no_auth:
        logging.getLogger("safestack.server").warning(
            "--no-auth: requests need no API key; do not expose this port"
        )
        err_console.print(
            "[yellow]warning:[/] --no-auth: every request is accepted without an API key; "
            "do not expose this port"
        )
    else:
        console.print(
            "requests need 'Authorization: Bearer <key>'; create one with "
            "`safestack keys create NAME --scope chat --scope moderate`",
            soft_wrap=True,
        )


# -- several worker processes ---------------------------------------------------------------------
def _serve_workers(settings: Settings, *, require_auth: bool, log_level: str) -> None:
    """uvicorn's multi-process mode: this process binds the port, migrates the store and checks
    Redis, then starts `settings.workers` processes that each build the gateway (`worker_app`)
    and share the store and Redis; it restarts a worker that dies and stops them all on SIGTERM."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from safestack.policy import load_policy
    from safestack.server.protocol import OpenAIH11Protocol
    from safestack.server.ratelimit import rate_limiter_from_url
    from safestack.server.storecalls import database_timeouts
    from safestack.store import Store

    if not settings.redis_url:
        raise SafestackError(
            f"--workers {settings.workers} needs rate limits the workers share: set "
            "SAFESTACK_REDIS_URL (e.g. redis://127.0.0.1:6379/0); in memory, every worker would "
            f"keep its own buckets and a key would get up to {settings.workers} times its limit. "
            "Or run one worker (--workers 1)."
        )
    limiter = rate_limiter_from_url(settings.redis_url)
    asyncio.run(_ping(limiter))  # a Redis that is down fails here, not in every worker
    policy = load_policy_file(settings.policy) if settings.policy is not None else load_policy()
    timeouts = database_timeouts(settings)
    # Migrated once, here, not by each worker; a database that does not answer fails within seconds.
    with Store.open(settings.database_url(), timeouts=timeouts) as store:
        where = store.display_url
    config = uvicorn.Config(
        functools.partial(worker_app, settings, require_auth),
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=log_level,
        access_log=False,
        http=OpenAIH11Protocol,
        # A worker loading its models can be slow to answer the supervisor's ping.
        timeout_worker_healthcheck=120,
    )
    console.print(
        f"safestack gateway on http://{settings.host}:{settings.port}  policy {policy.ref}  "
        f"store {where}  rate limits in Redis  {settings.workers} workers "
        "(each loads the models before it serves)",
        soft_wrap=True,
    )
    _print_access(settings.upstream_url, not require_auth)

    class Workers(Multiprocess):
        """uvicorn's supervisor, saying once when every worker has its models loaded and serves."""

        announced = False

        def keep_subprocess_alive(self) -> None:
            super().keep_subprocess_alive()
            if self.announced or self.should_exit.is_set():
                return
            if all(process.is_ready(timeout=5) for process in self.processes):
                self.announced = True
                console.print(f"all {len(self.processes)} workers serve")

    Workers(config, sockets=[listening_socket(settings.host, settings.port)]).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """The port the workers share, bound here. Unlike uvicorn's `bind_socket` (protocol 0), it is
    made with IPPROTO_TCP: asyncio sets TCP_NODELAY only on connections accepted from such a
    socket, and without it Nagle's algorithm held each answer's last segment for the client's
    delayed ACK, 40 ms per request."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SafestackError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


async def _ping(limiter: Any) -> None:
    try:
        await limiter.ping()
    finally:
        await limiter.aclose()


def worker_app(settings: Settings, require_auth: bool) -> FastAPI:
    """The gateway of one worker process: its own store connections, Redis client, models and
    upstream client, closed when the worker stops. Run by uvicorn in the worker (spawned, so
    nothing is shared with the parent but the listening socket)."""
    from safestack.judge.builtin.models import BuiltinModels
    from safestack.server import PolicyCache, create_app
    from safestack.server.ratelimit import rate_limiter_from_url
    from safestack.server.storecalls import database_timeouts
    from safestack.store import Store

    limiter = rate_limiter_from_url(settings.redis_url)
    timeouts = database_timeouts(settings)
    store = Store.open(settings.database_url(), migrate=False, timeouts=timeouts)
    try:
        policies = PolicyCache(
            settings.policy, models=BuiltinModels(precision=settings.encoder_precision)
        )
        policies.default  # noqa: B018  load and warm the models before serving
    except BaseException:
        store.close()
        raise

    async def close() -> None:
        closing = getattr(limiter, "aclose", None)
        if closing is not None:
            await closing()
        store.close()

    return create_app(
        settings,
        store=store,
        limiter=limiter,
        policies=policies,
        upstream=_upstream(settings),
        require_auth=require_auth,
        on_shutdown=close,
    )
