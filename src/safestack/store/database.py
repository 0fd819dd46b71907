"""The database every stage shares: a SQLite file by default, PostgreSQL by URL, at head revision.

`Database.open` connects, migrates and turns connection failures into one-line StoreErrors; the
record families (`store.judgements`, `store.keys`, ...) run their work in its transactions.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic.util.exc import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from safestack.errors import StoreError
from safestack.store.migrate import current_revision, upgrade_schema

# Rows per INSERT statement in a batch; all chunks still share one transaction.
BATCH_ROWS = 500
# Execution option: this transaction reads and then writes, so on SQLite lock for writing at BEGIN.
_WRITE_LOCK_FIRST = "safestack_write_lock_first"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long the database may keep a caller waiting, in seconds; None: no limit.

    `connect`: establishing a PostgreSQL connection (psycopg's `connect_timeout`, at least 2 s;
    a server that accepts and never answers fails here). `statement`: one statement on PostgreSQL
    (`statement_timeout`, enforced by the server, lifted for migrations). `pool`: waiting for a
    free connection from the pool. `busy`: waiting for another SQLite writer to finish.
    The defaults suit batch work (runs, judging); the gateway passes its shorter settings.
    """

    connect: float | None = 10.0
    statement: float | None = None
    pool: float | None = 30.0
    busy: float = 30.0


class Database:
    """A connection pool to one database whose schema is at this release's head revision.

    Thread-safe: every method takes its own connection (the server calls them from a thread pool).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, timeouts: Timeouts | None = None) -> Self:
        """Connect to `url` (SQLAlchemy form) and, unless `migrate` is False, upgrade the schema.

        `postgresql://` URLs use the psycopg 3 driver; a SQLite file's directory is created.
        `timeouts` bound every wait on the database (`Timeouts()` when not given).
        """
        timeouts = timeouts or Timeouts()
        parsed = _parse_url(url)
        if parsed.get_backend_name() == "sqlite":
            _create_sqlite_directory(parsed)
        try:
            engine = create_engine(parsed, **_engine_options(parsed, timeouts))
        except NoSuchModuleError:
            raise StoreError(
                f"{_mask(parsed)}: no SQLAlchemy dialect '{parsed.drivername}'; "
                "use a sqlite:/// or postgresql:// URL in SAFESTACK_DB_URL"
            ) from None
        except ModuleNotFoundError as exc:
            raise StoreError(
                f"{_mask(parsed)}: the database driver '{exc.name}' is not installed; "
                "for PostgreSQL run: pip install 'safestack[postgres]'"
            ) from None
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, timeouts.busy)
        database = cls(engine)
        try:
            if migrate:
                database.upgrade()
            else:
                with database.connect():
                    pass  # connect once now, so a wrong URL fails here and not mid-run
        except BaseException:
            engine.dispose()
            raise
        return database

    @property
    def display_url(self) -> str:
        """The database URL with its password masked, safe to print."""
        return _mask(self.engine.url)

    def revision(self) -> str | None:
        """The schema revision the database is at; None before the first migration."""
        with self.connect() as connection:
            return current_revision(connection)

    def upgrade(self) -> None:
        """Run the migrations this database lacks, in one transaction where the backend allows."""
        with self.connect() as connection:
            connection.execution_options(**{_WRITE_LOCK_FIRST: True})
            try:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        # A migration (or the wait for another replica's) may outlast the
                        # per-statement limit meant for requests.
                        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
                    upgrade_schema(connection)
            except (CommandError, SQLAlchemyError, StoreError) as exc:
                raise StoreError(
                    f"{self.display_url}: migrating the schema failed: {reason(exc)}"
                ) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection; an unreachable database raises a StoreError that says what to check."""
        try:
            connection = self.engine.connect()
        except DBAPIError as exc:
            raise StoreError(_unreachable(self.engine.url, exc)) from None
        except PoolTimeoutError:
            raise StoreError(
                f"{self.display_url}: no free database connection in time (every pooled "
                "connection is busy or stuck; SAFESTACK_DB_POOL_TIMEOUT); retry shortly"
            ) from None
        with connection:
            yield connection

    @contextmanager
    def transaction(self, doing: str, *, write_first: bool = False) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on any error.

        `doing` names the work in the StoreError a failure becomes ("reading attempts");
        `write_first`: the block reads and then writes, so SQLite takes the write lock at BEGIN.
        """
        with self.connect() as connection:
            if write_first:
                connection.execution_options(**{_WRITE_LOCK_FIRST: True})
            try:
                with Session(bind=connection) as session, session.begin():
                    yield session
            except SQLAlchemyError as exc:
                raise StoreError(f"{self.display_url}: {doing} failed: {reason(exc)}") from None


# PostgreSQL's "duplicate_database": another process created it between our check and CREATE.
_DUPLICATE_DATABASE = "42P04"


def create_database(url: str) -> bool:
    """Create the PostgreSQL database `url` names when it does not exist; True if it was created.

    `safestack db upgrade` calls it before opening the store, so a new deployment needs no
    `createdb`. Like `createdb`, it asks the server's `postgres` maintenance database. Other URLs
    (a SQLite file is created when opened) and servers that cannot be asked return False: opening
    the store then says what is wrong. A role without CREATEDB gets a StoreError saying what to do.
    """
    parsed = _parse_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "postgresql" or not name or name == "postgres":
        return False
    try:
        admin = create_engine(
            parsed.set(database="postgres"),
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 10},
        )
    except (ModuleNotFoundError, NoSuchModuleError):
        return False  # Database.open names the missing driver
    try:
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is not None:
                return False
            quoted = connection.dialect.identifier_preparer.quote(name)
            try:
                connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) == _DUPLICATE_DATABASE:
                    return False
                raise StoreError(
                    f"{_mask(parsed)}: the database '{name}' does not exist and creating it "
                    f"failed: {reason(exc)}; ask someone who may create databases to run "
                    f"`createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432} "
                    f"-O {parsed.username or 'postgres'} {name}`, or name an existing database "
                    "in SAFESTACK_DB_URL"
                ) from None
    except DBAPIError:
        return False  # the maintenance database is out of reach: Database.open reports why
    finally:
        admin.dispose()
    return True


def _parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"'{_mask_text(url)}' is not a database URL; "
            "expected e.g. sqlite:///path/to/safestack.db or postgresql://user@host/db"
        ) from None
    # Plain postgresql:// would pick psycopg2; safestack depends on psycopg 3 ('postgres' extra).
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _create_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    directory = Path(database).parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"{_mask(url)}: cannot create the directory {directory}: {exc.strerror}; "
            "choose a writable path in SAFESTACK_DB_URL or SAFESTACK_HOME"
        ) from None


def _engine_options(url: URL, timeouts: Timeouts) -> dict[str, Any]:
    """create_engine's keyword arguments for `timeouts` on this backend."""
    options: dict[str, Any] = {}
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    if timeouts.pool is not None and not in_memory:  # one shared connection there, no pool
        options["pool_timeout"] = timeouts.pool
    if url.get_backend_name() == "postgresql":
        # A pooled connection may have died with the server (a restart, a failover): test it on
        # checkout, so the first use after an outage reconnects instead of failing.
        options["pool_pre_ping"] = True
        connect_args: dict[str, Any] = {}
        if timeouts.connect is not None:
            # libpq counts whole seconds, and 2 at least.
            connect_args["connect_timeout"] = max(2, math.ceil(timeouts.connect))
        if timeouts.statement is not None:
            limit = f"-c statement_timeout={max(1, round(timeouts.statement * 1000))}"
            given = url.query.get("options")
            given = given if isinstance(given, str) else " ".join(given or ())
            connect_args["options"] = f"{given} {limit}".strip()
        options["connect_args"] = connect_args
    return options


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    busy_ms = max(0, round(busy_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (the recipe in SQLAlchemy's pysqlite
        # docs): then DDL is transactional too and a failed migration leaves nothing half-done.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        # WAL: readers (reports, the console) do not block the writer (a run, the guard). The mode
        # is stored in the file; switching it needs a moment alone with the file, and SQLite
        # answers "locked" at once (no busy wait) when several processes open a new file together.
        for attempt in range(50):
            try:
                if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.02 * (attempt + 1))
        cursor.execute("PRAGMA foreign_keys=ON")
        # An audit event must survive a power cut once recorded; in WAL mode only FULL syncs the
        # log at every commit (NORMAL may lose the last ones). FULL is SQLite's usual default,
        # but builds and distributions can change it.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front, for transactions that read before they write:
        # a deferred one would fail with "database is locked" when another writer got there first.
        immediate = connection.get_execution_options().get(_WRITE_LOCK_FIRST, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _mask(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _mask_text(url: str) -> str:
    """Mask the password of a URL SQLAlchemy could not parse."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def reason(exc: BaseException) -> str:
    """The first line of the driver's own message, without SQLAlchemy's statement and links."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _unreachable(url: URL, exc: DBAPIError) -> str:
    why = reason(exc)
    if url.password:
        why = why.replace(str(url.password), "***")
    if url.get_backend_name() == "postgresql":
        advice = (
            "is PostgreSQL running, and does the database exist? `safestack db upgrade` "
            "creates it; set SAFESTACK_DB_URL"
        )
    else:
        advice = "check the path and its permissions, or set SAFESTACK_DB_URL"
    return f"cannot connect to {_mask(url)}: {why}; {advice}"
