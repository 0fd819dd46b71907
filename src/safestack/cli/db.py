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
    """Create the database or apply pending migrations.

    Example: SAFESTACK_DB_URL=postgresql://localhost/safestack safestack db upgrade
    """
    from safestack.store import Store

    with Store.open(state(ctx).settings.database_url()) as store:
        console.print(f"database at revision {store.revision()}")


@db_app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database URL (password hidden) and its migration revision."""
    from safestack.store import Store

    url = state(ctx).settings.database_url()
    with Store.open(url, migrate=False) as store:
        console.print(
            f"{store.display_url}: revision {store.revision() or 'none (run `safestack db upgrade`)'}"
        )
