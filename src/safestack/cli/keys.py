"""`safestack keys`: create, list and revoke the gateway's API keys in the database.

A key's secret is printed once, at creation, and never stored; the database keeps its hash.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.errors import InputError, SafestackError
from safestack.store import ApiKey, KeyLimits, Store

keys_app = typer.Typer(
    cls=SafestackGroup,
    help="API keys for the gateway (`safestack serve`) and the console (`safestack console`): scopes, policy, models, rate and work limits.",
    no_args_is_help=True,
)


class ScopeName(StrEnum):
    """The choices of --scope: the same as `safestack.store.SCOPES`."""

    MODERATE = "moderate"
    CHAT = "chat"
    ADMIN = "admin"
    REDTEAM = "redteam"
    REVIEW = "review"


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Who or what the key is for, e.g. 'ci-bot'."),
    scopes: list[ScopeName] = typer.Option(
        ...,
        "--scope",
        "-s",
        help="What the key may call (repeatable): moderate, chat, admin; in the console "
        "(`safestack console`) redteam is an expert, review a lead who reviews every engagement.",
        show_default=False,
    ),
    policy: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy YAML for this key's requests (default: the server's)."
    ),
    models: list[str] = typer.Option(
        [],
        "--model",
        "-m",
        help="A model the key may call (repeatable); every model if none is given.",
        show_default=False,
    ),
    rate_per_minute: int | None = typer.Option(
        None, "--rate-per-minute", min=1, help="Requests per minute (default: the server's)."
    ),
    burst: int | None = typer.Option(
        None, "--burst", min=1, help="Requests allowed at once before the rate applies."
    ),
    max_messages: int | None = typer.Option(
        None, "--max-messages", min=1, help="Messages per chat request (default: the server's)."
    ),
    max_inputs: int | None = typer.Option(
        None,
        "--max-inputs",
        min=1,
        help="Strings per /v1/moderations request (default: the server's).",
    ),
    max_chars: int | None = typer.Option(
        None, "--max-chars", min=1, help="Characters judged per request (default: the server's)."
    ),
    chars_per_minute: int | None = typer.Option(
        None,
        "--chars-per-minute",
        min=1,
        help="Characters judged per minute (default: the server's; none unless it sets one).",
    ),
) -> None:
    """Create a key and print its secret, once: it cannot be shown again.

    The secret alone goes to stdout, everything else to stderr, so it can be captured:

    SECRET=$(safestack keys create ci-bot --scope chat --scope moderate --model llama-3-8b)

    A batch job that sends long conversations: --max-messages 1000 --max-chars 500000

    An expert for the console: safestack keys create "Dr. Ada" --scope redteam
    """
    policy_path = None
    if policy is not None:
        state(ctx).policy(policy)  # a policy that does not load is refused now, not per request
        policy_path = str(policy.resolve())
    with Store.open(state(ctx).settings.database_url()) as store:
        key, secret = store.keys.create(
            name,
            [scope.value for scope in scopes],
            policy=policy_path,
            models=models,
            rate_per_minute=rate_per_minute,
            burst=burst,
            limits=KeyLimits(
                max_messages=max_messages,
                max_inputs=max_inputs,
                max_chars=max_chars,
                chars_per_minute=chars_per_minute,
            ),
        )
    err_console.print(
        f"created API key [bold]{key.id}[/] '{escape(key.name)}' "
        f"(scopes: {', '.join(key.scopes)}; models: {escape(_models(key))}; "
        f"limit: {_limit(key, ', ')})",
        highlight=False,
    )
    err_console.print(
        "[yellow]warning:[/] this is the only time the secret is shown; it cannot be shown "
        "again. Store it now (clients send it as 'Authorization: Bearer <secret>').",
        highlight=False,
    )
    typer.echo(secret)


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    include_revoked: bool = typer.Option(False, "--all", "-a", help="Include revoked keys."),
) -> None:
    """List the keys (never their secrets), oldest first; policy by file name, dates in UTC.

    Example: safestack keys list --all
    """
    with Store.open(state(ctx).settings.database_url()) as store:
        keys = store.keys.all(include_revoked=include_revoked)
    if not keys:
        console.print("no API keys; create one with: safestack keys create NAME --scope chat")
        return
    # Only the id never wraps: on a narrow terminal the other cells fold rather than disappear.
    table = Table(title="API keys", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    for header in ("name", "scopes", "models", "limit", "policy"):
        table.add_column(header, overflow="fold")
    table.add_column("created", min_width=10, overflow="fold")
    for key in keys:
        created = _date(key.created_at)
        if key.revoked_at is not None:
            created += f"\n[red]revoked[/] {_date(key.revoked_at)}"
        table.add_row(
            key.id,
            escape(key.name),
            " ".join(key.scopes),
            escape(_models(key)),
            _limit(key, "\n"),
            escape(Path(key.policy).name if key.policy else "default"),
            created,
        )
    console.print(table)


LIMIT_NAMES = (
    "rate-per-minute",
    "burst",
    "max-messages",
    "max-inputs",
    "max-chars",
    "chars-per-minute",
)


@keys_app.command("limits")
def limits(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key's public id, e.g. ssk_1a2b3c4d."),
    rate_per_minute: int | None = typer.Option(None, "--rate-per-minute", min=1),
    burst: int | None = typer.Option(None, "--burst", min=1),
    max_messages: int | None = typer.Option(None, "--max-messages", min=1),
    max_inputs: int | None = typer.Option(None, "--max-inputs", min=1),
    max_chars: int | None = typer.Option(None, "--max-chars", min=1),
    chars_per_minute: int | None = typer.Option(None, "--chars-per-minute", min=1),
    reset: list[str] = typer.Option(
        [],
        "--reset",
        help="Return a limit to the server's setting (repeatable): rate-per-minute, burst, "
        "max-messages, max-inputs, max-chars, chars-per-minute.",
        show_default=False,
    ),
) -> None:
    """Change a key's rate and work limits; limits not named are kept.

    A running gateway applies them within its key cache time (SAFESTACK_KEY_CACHE_SECONDS).

    Example: safestack keys limits ssk_1a2b3c4d --max-chars 500000 --reset rate-per-minute
    """
    given = {
        "rate_per_minute": rate_per_minute,
        "burst": burst,
        "max_messages": max_messages,
        "max_inputs": max_inputs,
        "max_chars": max_chars,
        "chars_per_minute": chars_per_minute,
    }
    changes: dict[str, int | None] = {name: v for name, v in given.items() if v is not None}
    for name in reset:
        if name not in LIMIT_NAMES:
            raise InputError(f"--reset {name}: not a limit; choose from {', '.join(LIMIT_NAMES)}")
        field = name.replace("-", "_")
        if field in changes:
            raise InputError(f"--reset {name} and --{name} contradict each other; give one")
        changes[field] = None
    if not changes:
        raise InputError("nothing to change: give a limit (e.g. --max-chars 500000) or --reset")
    with Store.open(state(ctx).settings.database_url()) as store:
        key = store.keys.set_limits(key_id, changes)
    if key is None:
        raise SafestackError(f"no live API key '{key_id}'; `safestack keys list` shows the keys")
    console.print(f"API key {key.id} limit: {_limit(key, ', ')}", highlight=False)


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key's public id, e.g. ssk_1a2b3c4d."),
) -> None:
    """Revoke a key: requests with its secret are refused from now on.

    A running gateway may still accept it for its key cache time (SAFESTACK_KEY_CACHE_SECONDS).

    Example: safestack keys revoke ssk_1a2b3c4d
    """
    with Store.open(state(ctx).settings.database_url()) as store:
        if store.keys.revoke(key_id):
            console.print(f"revoked API key {key_id}", highlight=False)
            return
        key = store.keys.get(key_id)
    if key is None or key.revoked_at is None:
        raise SafestackError(f"no API key '{key_id}'; `safestack keys list --all` shows the keys")
    console.print(
        f"API key {key_id} was already revoked at {_time(key.revoked_at)} UTC",
        highlight=False,
    )


def _models(key: ApiKey) -> str:
    return ", ".join(key.models) if key.models else "all"


def _limit(key: ApiKey, separator: str) -> str:
    """The key's rate, then its own limits on work per request (chars/min: per minute)."""
    work = key.limits.describe()
    if key.rate_per_minute is None and key.burst is None:
        return separator.join(work) if work else "default"
    rate = f"{key.rate_per_minute}/min" if key.rate_per_minute else "default/min"
    return separator.join([f"{rate} burst {key.burst}" if key.burst else rate, *work])


def _date(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")
