"""Alembic environment for safestack's store; `safestack.store.migrate` runs it, not an ini file.

The Store hands in its own open connection (`config.attributes["connection"]`), so migrations run
on the very database the Store uses, SQLite `:memory:` included. To add a table or column: copy the
newest file in `versions/`, set `revision` to the next number and `down_revision` to the previous
one, write `upgrade()`/`downgrade()` by hand (ALTERs inside `op.batch_alter_table`, which SQLite
needs), and update the model in `tables.py` to match. Run tests/store on both backends.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from safestack.store.tables import Base

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; autogenerate should suggest batch operations.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("migrations need sqlalchemy.url or a connection in config.attributes")
    engine = create_engine(url)
    try:
        with engine.connect() as own_connection:
            run_migrations(own_connection)
    finally:
        engine.dispose()


run()
