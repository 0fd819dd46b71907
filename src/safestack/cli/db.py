"""`safestack db`: create or upgrade the database, show its revision."""

from __future__ import annotations

import typer

from safestack.cli.app import SafestackGroup, console, state

db_app = typer.Typer(
    cls=SafestackGroup,
    help="The database (SQLite by default, PostgreSQL by SAFESTACK_DB_URL).",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create the database (a SQLite file, or a PostgreSQL database the server lets you create)
    or apply pending migrations.

    Example: SAFESTACK_DB_URL=postgresql://postgres@127.0.0.1/safestack safestack db upgrade
    """
    from safestack.store import Store, create_database

    url = state(ctx).settings.database_url()
    created = create_database(url)
    with Store.open(url) as store:
        if created:
            console.print(f"created the database {store.display_url}", soft_wrap=True)
        console.print(f"{store.display_url}: revision {store.revision()}", soft_wrap=True)


@db_app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database URL (password hidden) and its migration revision."""
    from safestack.store import Store

    url = state(ctx).settings.database_url()
    with Store.open(url, migrate=False) as store:
        console.print(
            f"{store.display_url}: revision {store.revision() or 'none (run `safestack db upgrade`)'}",
            soft_wrap=True,
        )
