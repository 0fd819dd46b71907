"""`safestack serve`: the gateway, an OpenAI-compatible API with the guard in front of a model.

Registers itself on the root app when imported (cli/main.py imports it). Builds the settings, the
store, the rate limiter, the policy and the upstream here, at the edge, and hands them to
`safestack.server.create_app`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import typer

from safestack.cli.app import app, console, err_console, load_policy_file, state


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
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Run the gateway: /v1/chat/completions, /v1/moderations, /v1/models, /healthz, /readyz,
    /metrics.

    Examples:

      safestack serve --upstream http://127.0.0.1:8000/v1

      safestack keys create my-app --scope chat --scope moderate

      SAFESTACK_DB_URL=postgresql://gw@db/safestack SAFESTACK_REDIS_URL=redis://cache:6379/0
      safestack serve --host 0.0.0.0 --upstream http://vllm:8000/v1
    """
    import uvicorn

    from safestack.server import PolicyCache, Upstream, create_app
    from safestack.server.errors import NO_UPSTREAM
    from safestack.server.protocol import OpenAIH11Protocol
    from safestack.server.ratelimit import rate_limiter_from_url
    from safestack.server.storecalls import database_timeouts
    from safestack.store import Store

    st = state(ctx)
    overrides = {"host": host, "port": port, "upstream_url": upstream, "policy": policy}
    settings = st.settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    limiter = rate_limiter_from_url(settings.redis_url)
    # With the gateway's timeouts: a database that does not answer fails here, within seconds.
    store = Store.open(settings.database_url(), timeouts=database_timeouts(settings))
    try:
        err_console.print(f"loading the policy and its detectors ({settings.policy or 'built-in'})")
        if settings.policy is not None:
            load_policy_file(settings.policy)  # a bad detector option names its file and line
        policies = PolicyCache(settings.policy, models=st.models)
        loaded = policies.default
        gateway_upstream = None
        if settings.upstream_url:
            secret = settings.upstream_api_key
            gateway_upstream = Upstream(
                settings.upstream_url,
                api_key=secret.get_secret_value() if secret is not None else None,
                timeout=settings.upstream_timeout,
                connect_timeout=settings.upstream_connect_timeout,
            )
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
        if gateway_upstream is not None:
            console.print(f"upstream {gateway_upstream.base_url}", soft_wrap=True)
        else:
            console.print(NO_UPSTREAM, soft_wrap=True)
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
