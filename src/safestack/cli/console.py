"""`safestack console`: the web app where experts red-team models and review findings.

Registers itself on the root app when imported (cli/main.py imports it). Builds the settings, the
store, the policy, the targets and the judge here, at the edge, and hands them to
`safestack.console.create_app`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from safestack.cli.app import app, console, err_console, state


@app.command("console")
def console_command(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. Loopback by default: over plain http, keep it there or put "
        "an https proxy in front (then set SAFESTACK_CONSOLE_SECURE_COOKIES=true).",
    ),
    port: int | None = typer.Option(
        None, "--port", help="Port to listen on (SAFESTACK_CONSOLE_PORT, default 8790)."
    ),
    targets: list[Path] = typer.Option(
        [],
        "--targets",
        "-t",
        help="YAML file of red-team target specs to chat with (repeatable; "
        "SAFESTACK_CONSOLE_TARGETS), e.g. examples/console/targets.yaml or a break-fix round's "
        "target.yaml.",
        show_default=False,
    ),
    policy: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy YAML (SAFESTACK_POLICY; built-in default)."
    ),
    detectors: list[str] = typer.Option(
        [],
        "--detector",
        "-d",
        help="Judge flagged answers with only these detectors (repeatable); default: the "
        "policy's own list.",
        show_default=False,
    ),
    no_judge: bool = typer.Option(
        False, "--no-judge", help="Show no judge verdicts beside findings (faster start)."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve the console: sign in with an API key, run engagements, chat with targets, flag and
    review findings, export them as a regression campaign and break-fix rows.

    Examples:

      safestack keys create admin --scope admin

      safestack keys create "Dr. Ada" --scope redteam

      safestack console --targets examples/console/targets.yaml
    """
    import uvicorn

    from safestack.console import ConsoleTargets, create_app, read_targets
    from safestack.judge import Judge
    from safestack.store import Store

    st = state(ctx)
    settings = st.settings
    if port is not None:
        settings = settings.model_copy(update={"console_port": port})
    specs = [spec for path in [*settings.console_targets, *targets] for spec in read_targets(path)]
    loaded_policy = st.policy(policy)
    judge = None
    if not no_judge:
        err_console.print("loading the judge's detectors")
        judge = Judge.from_policy(loaded_policy, detectors or None, models=st.models)
    store = Store.open(settings.database_url())
    try:
        fastapi_app = create_app(
            settings,
            store=store,
            policy=loaded_policy,
            targets=ConsoleTargets(specs, models=st.models),
            judge=judge,
        )
        names = ", ".join(spec.name for spec in specs) or "none (pass --targets FILE)"
        console.print(
            f"safestack console on http://{host}:{settings.console_port}  policy "
            f"{loaded_policy.ref}  store {store.display_url}  targets {names}",
            soft_wrap=True,
        )
        console.print(
            "sign in with a key: safestack keys create NAME --scope redteam (experts), "
            "--scope review (leads), --scope admin (creates engagements)",
            soft_wrap=True,
        )
        uvicorn.run(
            fastapi_app,
            host=host,
            port=settings.console_port,
            log_level=log_level,
            # uvicorn's access log prints paths only; keys travel in a POST body, never a URL.
            access_log=True,
        )
    finally:
        store.close()
