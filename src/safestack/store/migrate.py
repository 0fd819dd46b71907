"""Bring a database's schema up to date by running the Alembic chain in `migrations/`.

Configuration is built here in code (script location from the installed package, the URL and the
open connection passed in); there is no alembic.ini to read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from safestack.errors import StoreError

# Alembic's `context` is a module global, so two threads must not run env.py at the same time.
_ONE_AT_A_TIME = threading.Lock()
# Any fixed 64-bit number will do; this one spells "safestak" in ASCII.
_MIGRATION_LOCK = int.from_bytes(b"safestak", "big") >> 1


@contextmanager
def _config(connection: Connection | None = None) -> Iterator[Config]:
    with resources.as_file(resources.files("safestack.store") / "migrations") as location:
        config = Config()
        config.set_main_option("script_location", str(location))
        if connection is not None:
            url = connection.engine.url.render_as_string(hide_password=False)
            # ConfigParser interpolation treats '%' as special; a password may contain one.
            config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
            config.attributes["connection"] = connection
        yield config


def upgrade_schema(connection: Connection, revision: str = "head") -> None:
    """Run every migration between the database's revision and `revision` on `connection`.

    Call it inside a transaction. On PostgreSQL it first takes a lock, so several processes
    starting at once (gateway replicas) migrate one after the other rather than all together.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    current = current_revision(connection)
    if current is not None and current not in known_revisions():
        raise StoreError(
            f"the database is at schema revision '{current}', newer than this safestack knows "
            f"(head '{head_revision()}'); upgrade safestack"
        )
    with _ONE_AT_A_TIME, _config(connection) as config:
        command.upgrade(config, revision)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for a database no migration has touched."""
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


def head_revision() -> str:
    """The newest revision this release of safestack ships."""
    with _config() as config:
        head: str | None = ScriptDirectory.from_config(config).get_current_head()
    if head is None:  # only if versions/ is missing from the installation
        raise StoreError("safestack.store ships no migrations; reinstall safestack")
    return head


def known_revisions() -> set[str]:
    """Every revision this release of safestack ships."""
    with _config() as config:
        return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
