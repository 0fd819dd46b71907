"""`safestack monitor`: enforcement decisions by hand and what is in force.

`warn`, `throttle`, `suspend`, `lift` and `strike` record a decision (docs/monitor-enforcement.md)
that every gateway replica obeys within seconds; `decisions` lists the log, `status` shows one
account's measures, `account` prints the account of a key's end user. The analysis commands
(signals, rules, run, ...) are registered beside these by monitor_analysis.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer
from rich.markup import escape

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.errors import EnforcementError
from safestack.records import EnforcementDecision

monitor_app = typer.Typer(
    cls=SafestackGroup,
    help="Abuse monitoring: per-account signals, rules, clusters and reports over the audit log, "
    "and the enforcement decisions (warn, throttle, suspend, lift) the gateway obeys, per key and "
    "per end user.",
    no_args_is_help=True,
)

ACCOUNT_HELP = (
    "key:<key id> (e.g. key:ssk_1a2b3c4d), or user:<key id>:<end user hash> for one end user "
    "of a key (`safestack monitor account` prints it)."
)


def _decide(
    ctx: typer.Context,
    action: str,
    account: str,
    reason: str,
    by: str,
    shadow: bool,
    lasting: str | None,
) -> None:
    from safestack.monitor.enforce import enforcer_for
    from safestack.monitor.identity import check_account, parent_key_account
    from safestack.monitor.ladder import format_duration, parse_duration
    from safestack.store import Store

    check_account(account)
    decay: object = ...
    if lasting is not None:
        try:
            decay = parse_duration(lasting)
        except ValueError as exc:
            raise EnforcementError(f"--for: {exc}") from None
    settings = state(ctx).settings
    with Store.open(settings.database_url()) as store:
        key_id = parent_key_account(account).removeprefix("key:")
        if store.keys.get(key_id) is None:
            raise EnforcementError(
                f"no API key '{key_id}' in {store.display_url}; `safestack keys list --all` "
                "shows the keys"
            )
        enforcer = enforcer_for(store, settings)
        try:
            options = {} if decay is ... else {"decay": decay}
            decision = enforcer.decide(
                account, action, actor=by, reason=reason, rule=None, shadow=shadow, **options
            )
        finally:
            counts = enforcer.close(timeout=settings.monitor_alert_timeout * 2)
    mode = "[yellow]shadow[/] (recorded, not enforced)" if shadow else "enforced"
    lasts = ""
    if decision.action != "lift":
        lasts = (
            f", until {_time(decision.expires_at)} UTC" if decision.expires_at else ", until lifted"
        )
        if decision.expires_at:
            lasts += f" ({format_duration(decision.expires_at - decision.created_at)})"
    console.print(
        f"{decision.id}: {decision.action} {escape(account)} {mode}{lasts}", highlight=False
    )
    if counts is not None and (counts.failed or counts.undelivered):
        err_console.print(
            f"[yellow]warning:[/] {counts.failed + counts.undelivered} alert(s) not delivered "
            "to the webhooks (see the log); the decision is recorded",
            highlight=False,
        )


def _action_command(action: str, summary: str) -> None:
    def command(
        ctx: typer.Context,
        account: str = typer.Argument(..., help=ACCOUNT_HELP),
        reason: str = typer.Option(..., "--reason", "-r", help="Why: kept with the decision."),
        by: str = typer.Option(..., "--by", help="Who decides (a person; rules use rule:<name>)."),
        shadow: bool = typer.Option(
            False, "--shadow", help="Record what would be done; enforce nothing."
        ),
        lasting: str | None = typer.Option(
            None,
            "--for",
            help="How long it lasts (90s, 15m, 12h, 7d, 2w, never); the ladder's decay if unset.",
        ),
    ) -> None:
        _decide(ctx, action, account, reason, by, shadow, lasting)

    command.__doc__ = (
        f"{summary}\n\nExample: safestack monitor {action} key:ssk_1a2b3c4d "
        "--reason 'repeated weapons requests' --by alice"
    )
    monitor_app.command(action)(command)


_action_command("warn", "Warn an account: its answers carry an x-safestack-warning header.")
_action_command("throttle", "Throttle an account to the ladder's lower rate limit.")
_action_command("suspend", "Suspend an account: its requests are refused (403) with an appeal id.")


@monitor_app.command("lift")
def lift(
    ctx: typer.Context,
    account: str = typer.Argument(..., help=ACCOUNT_HELP),
    reason: str = typer.Option(..., "--reason", "-r", help="Why: kept with the decision."),
    by: str = typer.Option(..., "--by", help="Who decides."),
    shadow: bool = typer.Option(False, "--shadow", help="Record only; lift nothing."),
) -> None:
    """End every measure in force on the account (a lift is itself a recorded decision).

    Example: safestack monitor lift key:ssk_1a2b3c4d --reason 'appeal granted' --by alice
    """
    _decide(ctx, "lift", account, reason, by, shadow, None)


@monitor_app.command("strike")
def strike(
    ctx: typer.Context,
    account: str = typer.Argument(..., help=ACCOUNT_HELP),
    reason: str = typer.Option(..., "--reason", "-r", help="Why: kept with the decision."),
    by: str = typer.Option(..., "--by", help="Who decides."),
    shadow: bool = typer.Option(False, "--shadow", help="Record only; enforce nothing."),
) -> None:
    """One rung up the ladder: warn, then throttle, then suspend.

    Example: safestack monitor strike key:ssk_1a2b3c4d --reason 'second incident' --by alice
    """
    from safestack.monitor.enforce import Enforcer
    from safestack.monitor.identity import check_account
    from safestack.monitor.ladder import load_ladder, next_rung
    from safestack.store import Store

    check_account(account)
    settings = state(ctx).settings
    with Store.open(settings.database_url()) as store:
        level = Enforcer(store, load_ladder(settings.monitor_ladder)).status(account).level
    _decide(ctx, next_rung(level).value, account, reason, by, shadow, None)


@monitor_app.command("status")
def status(
    ctx: typer.Context,
    account: str = typer.Argument(..., help=ACCOUNT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """What is in force on an account now, and its recent decisions.

    Example: safestack monitor status key:ssk_1a2b3c4d
    """
    from safestack.monitor.identity import check_account
    from safestack.store import Store

    check_account(account)
    with Store.open(state(ctx).settings.database_url()) as store:
        active = store.enforcement.active(datetime.now(UTC))
        recent = store.enforcement.decisions(account=account, limit=20)
    measures = active.measures.get(account, [])
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "account": account,
                    "in_force": [m.model_dump(mode="json") for m in measures],
                    "recent": [d.model_dump(mode="json") for d in recent],
                },
                indent=2,
            )
        )
        return
    if measures:
        strictest = max(
            measures,
            key=lambda m: (m.action.rank, m.expires_at or datetime.max.replace(tzinfo=UTC)),
        )
        until = _time(strictest.expires_at) + " UTC" if strictest.expires_at else "lifted"
        console.print(
            f"{escape(account)}: [bold]{strictest.action}[/] until {until} "
            f"({strictest.id}: {escape(strictest.reason)})",
            highlight=False,
        )
    else:
        console.print(f"{escape(account)}: nothing in force", highlight=False)
    if recent:
        _print_log(recent, "recent decisions")


@monitor_app.command("decisions")
def decisions(
    ctx: typer.Context,
    account: str | None = typer.Option(
        None, "--account", "-a", help="Only this account's (a key's: its end users' too)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only decisions this recent: a duration (7d, 12h) or a date."
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines instead of a table."),
) -> None:
    """The enforcement log, newest first: who or which rule decided what, why, when, and whether
    it was enforced or shadow.

    Example: safestack monitor decisions --since 7d --account key:ssk_1a2b3c4d
    """
    from safestack.store import Store

    after = _since(since) if since is not None else None
    with Store.open(state(ctx).settings.database_url()) as store:
        found = store.enforcement.decisions(account=account, since=after, limit=limit)
    if as_json:
        for decision in found:
            typer.echo(decision.model_dump_json())
        return
    if not found:
        console.print("no enforcement decisions")
        return
    _print_log(found, "enforcement decisions")


@monitor_app.command("account")
def account_of(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key's public id, e.g. ssk_1a2b3c4d."),
    end_user: str | None = typer.Option(
        None,
        "--end-user",
        "-u",
        help="The raw safety_identifier (or user) the app sends; hashed as the gateway does.",
    ),
) -> None:
    """Print the account to name in decisions: the key's, or one of its end users'.

    Example: safestack monitor account ssk_1a2b3c4d --end-user user-4821
    """
    from safestack.monitor.enforce import end_user_account
    from safestack.monitor.identity import check_account, key_account
    from safestack.store import Store

    if end_user is None:
        typer.echo(check_account(key_account(key_id)))
        return
    settings = state(ctx).settings
    with Store.open(settings.database_url()) as store:
        typer.echo(check_account(end_user_account(store, settings, key_id, end_user)))


def _since(text: str) -> datetime:
    from safestack.monitor.ladder import parse_duration

    try:
        ago = parse_duration(text)
    except ValueError:
        ago = None
    if isinstance(ago, timedelta):
        return datetime.now(UTC) - ago
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise EnforcementError(
            f"--since {text!r}: give a duration (7d, 12h) or a date (2026-12-01)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _print_log(found: list[EnforcementDecision], title: str) -> None:
    """One line a decision, newest first, greppable: id, when, action, account, until, who, why.
    An end user's hash is cut to 8 digits (`--json` shows it all)."""
    console.print(f"[bold]{title}[/]", highlight=False)
    for decision in found:
        account = decision.account
        if account.startswith("user:"):
            account = account[: account.rindex(":") + 9] + "…"
        action = str(decision.action) + (" [yellow](shadow)[/]" if decision.shadow else "")
        until = ""
        if decision.action != "lift":
            until = (
                f"  until {_time(decision.expires_at)[:16]}"
                if decision.expires_at
                else "  until lifted"
            )
        console.print(
            f"{decision.id}  {_time(decision.created_at)[:16]}  {action}  {escape(account)}"
            f"{until}  by {escape(decision.actor)}: {escape(decision.reason)}",
            highlight=False,
            soft_wrap=True,
        )


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""
