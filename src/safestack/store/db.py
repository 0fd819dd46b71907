"""The Store: one database (a SQLite file by default, PostgreSQL by URL) behind typed methods.

Every stage writes its records here and reads other stages' records back from here. `Store.open`
connects, brings the schema up to date, and turns connection failures into one-line StoreErrors.
Methods are synchronous and thread-safe; the server calls them from a thread pool.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic.util.exc import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, event, insert, make_url, select
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from safestack.errors import StoreError
from safestack.records import Attempt, AuditEvent, Kind, Verdict
from safestack.store.attempts import (
    StoredRun,
    attempt_from_row,
    attempt_row,
    delete_attempts,
    run_row,
    select_attempts,
)
from safestack.store.attempts import select_keys as select_attempt_keys
from safestack.store.audit import (
    audit_row,
    audit_rows,
    delete_before,
    event_from_row,
    select_events,
)
from safestack.store.judgements import (
    StoredJudgement,
    judgement_row,
    judgement_rows,
    select_count,
    select_judgements,
)
from safestack.store.keys import (
    ApiKey,
    Scope,
    key_id_of,
    key_row,
    new_key,
    revoke_update,
    secret_matches,
    select_keys,
)
from safestack.store.migrate import current_revision, upgrade_schema
from safestack.store.tables import ApiKeyRow, AttemptRow, AuditEventRow, JudgementRow, RedteamRunRow

# Rows per INSERT statement in a batch; all chunks still share one transaction.
_BATCH_ROWS = 500
# Execution option: this transaction reads and then writes, so on SQLite lock for writing at BEGIN.
_WRITE_LOCK_FIRST = "safestack_write_lock_first"
# Key ids are 32 random bits; a clash is rare, and creating draws again.
_KEY_ID_DRAWS = 10


class Store:
    """A connection pool to one database whose schema is at this release's head revision."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to `url` (SQLAlchemy form) and, unless `migrate` is False, upgrade the schema.

        `postgresql://` URLs use the psycopg 3 driver; a SQLite file's directory is created.
        """
        parsed = _parse_url(url)
        if parsed.get_backend_name() == "sqlite":
            _create_sqlite_directory(parsed)
        try:
            engine = create_engine(parsed)
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
            _configure_sqlite(engine)
        store = cls(engine)
        try:
            if migrate:
                store.upgrade()
            else:
                with store._connect():
                    pass  # connect once now, so a wrong URL fails here and not mid-run
        except BaseException:
            engine.dispose()
            raise
        return store

    @property
    def display_url(self) -> str:
        """The database URL with its password masked, safe to print."""
        return _mask(self.engine.url)

    def revision(self) -> str | None:
        """The schema revision the database is at; None before the first migration."""
        with self._connect() as connection:
            return current_revision(connection)

    def upgrade(self) -> None:
        """Run the migrations this database lacks, in one transaction where the backend allows."""
        with self._connect() as connection:
            connection.execution_options(**{_WRITE_LOCK_FIRST: True})
            try:
                with connection.begin():
                    upgrade_schema(connection)
            except (CommandError, SQLAlchemyError, StoreError) as exc:
                raise StoreError(
                    f"{self.display_url}: migrating the schema failed: {_reason(exc)}"
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

    # -- judgements ------------------------------------------------------------------------------

    def record_judgement(
        self, verdict: Verdict, text: str, *, kind: Kind, run_id: str, keep_text: bool = False
    ) -> str:
        """Store one Verdict on `text`; the text itself only if `keep_text`. Returns the row id."""
        row = judgement_row(verdict, text, kind=kind, run_id=run_id, keep_text=keep_text)
        with self._transaction("recording a judgement") as session:
            session.execute(insert(JudgementRow), [row])
        return str(row["id"])

    def record_judgements(
        self,
        items: Iterable[tuple[Verdict, str]],
        *,
        kind: Kind,
        run_id: str,
        keep_text: bool = False,
    ) -> list[str]:
        """Store (verdict, text) pairs in one transaction: all of them or, on any error, none."""
        rows = judgement_rows(items, kind=kind, run_id=run_id, keep_text=keep_text)
        ids: list[str] = []
        with self._transaction("recording judgements") as session:
            while chunk := list(islice(rows, _BATCH_ROWS)):
                session.execute(insert(JudgementRow), chunk)
                ids.extend(row["id"] for row in chunk)
        return ids

    def judgements(
        self, run_id: str | None = None, flagged: bool | None = None, limit: int | None = 100
    ) -> list[StoredJudgement]:
        """Stored judgements, oldest first, optionally of one run and/or only (un)flagged ones."""
        with self._transaction("reading judgements") as session:
            rows = session.scalars(select_judgements(run_id, flagged, limit)).all()
            return [StoredJudgement.from_row(row) for row in rows]

    def count_judgements(self, run_id: str | None = None, flagged: bool | None = None) -> int:
        with self._transaction("counting judgements") as session:
            return session.scalar(select_count(run_id, flagged)) or 0

    # -- API keys ----------------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        scopes: Iterable[Scope],
        *,
        policy: str | None = None,
        models: Iterable[str] = (),
        rate_per_minute: int | None = None,
        burst: int | None = None,
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it and its secret, which is shown once and never stored.

        Raises InputError for an empty name or scope list, an unknown scope or a limit below 1.
        """
        scopes, models = list(scopes), list(models)
        with self._transaction("creating an API key", write_first=True) as session:
            for _ in range(_KEY_ID_DRAWS):
                key, secret = new_key(
                    name,
                    scopes,
                    policy=policy,
                    models=models,
                    rate_per_minute=rate_per_minute,
                    burst=burst,
                )
                if session.get(ApiKeyRow, key.id) is None:
                    session.execute(insert(ApiKeyRow), [key_row(key, secret)])
                    return key, secret
        raise StoreError(f"{self.display_url}: no free API key id after {_KEY_ID_DRAWS} draws")

    def verify_key(self, secret: str) -> ApiKey | None:
        """The live key `secret` belongs to; None if it is malformed, unknown, wrong or revoked.

        The key is found by the public id the secret starts with; the secret itself is compared
        by hash in constant time.
        """
        key_id = key_id_of(secret)
        if key_id is None:
            return None
        with self._transaction("checking an API key") as session:
            row = session.get(ApiKeyRow, key_id)
            if not secret_matches(secret, row) or row is None or row.revoked_at is not None:
                return None
            return ApiKey.from_row(row)

    def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this public id, revoked or not; None if there is none."""
        with self._transaction("reading an API key") as session:
            row = session.get(ApiKeyRow, key_id)
            return None if row is None else ApiKey.from_row(row)

    def list_keys(self, include_revoked: bool = False) -> list[ApiKey]:
        """Keys, oldest first; revoked ones only if `include_revoked`."""
        with self._transaction("listing API keys") as session:
            return [ApiKey.from_row(row) for row in session.scalars(select_keys(include_revoked))]

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key from now on. False if there is no such key or it was already revoked."""
        with self._transaction("revoking an API key") as session:
            return (
                session.connection().execute(revoke_update(key_id, datetime.now(UTC))).rowcount == 1
            )

    # -- audit log ---------------------------------------------------------------------------------

    def record_audit(self, event: AuditEvent) -> None:
        """Store one event; it is committed (durable) when this returns."""
        with self._transaction("recording an audit event") as session:
            session.execute(insert(AuditEventRow), [audit_row(event)])

    def record_audits(self, events: Iterable[AuditEvent]) -> None:
        """Store events in one transaction: all of them or, on any error, none."""
        rows = audit_rows(events)
        with self._transaction("recording audit events") as session:
            while chunk := list(islice(rows, _BATCH_ROWS)):
                session.execute(insert(AuditEventRow), chunk)

    def audit_events(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int | None = 100
    ) -> list[AuditEvent]:
        """Events newest first, optionally of one key and/or at or after `since` (tz-aware)."""
        query = select_events(key_id, since, limit)
        with self._transaction("reading audit events") as session:
            return [event_from_row(row) for row in session.scalars(query)]

    def purge_audit(self, before: datetime) -> int:
        """Delete events created before `before` (tz-aware), for retention; returns how many."""
        query = delete_before(before)
        with self._transaction("purging audit events") as session:
            return session.connection().execute(query).rowcount

    # -- red-team runs and attempts ------------------------------------------------------------------

    def open_run(
        self, run_id: str, name: str, campaign_hash: str, campaign: dict[str, Any], *, force: bool
    ) -> tuple[StoredRun, int]:
        """Create the run, or reopen it when its campaign is unchanged; returns (run, attempts kept).

        A changed campaign is refused (StoreError naming both hashes) unless `force`, which
        discards the run's stored attempts and records the new campaign.
        """
        with self._transaction("opening a red-team run", write_first=True) as session:
            row = session.get(RedteamRunRow, run_id)
            if row is None:
                row = run_row(run_id, name, campaign_hash, campaign)
                session.add(row)
                session.flush()
                return StoredRun.from_row(row), 0
            count = len(session.execute(select_attempt_keys(run_id)).all())
            if row.campaign_hash != campaign_hash:
                if not force:
                    raise StoreError(
                        f"run '{run_id}' was made from a different campaign "
                        f"(stored {row.campaign_hash[:12]}, now {campaign_hash[:12]}); pass --force "
                        f"to discard its {count} attempts and start again, or --run-id NEW to keep both"
                    )
                session.execute(delete_attempts(run_id))
                row.campaign_hash, row.campaign, row.name = campaign_hash, campaign, name
                count = 0
            row.updated_at = datetime.now(UTC)
            session.flush()
            return StoredRun.from_row(row), count

    def get_run(self, run_id: str) -> StoredRun | None:
        with self._transaction("reading a red-team run") as session:
            row = session.get(RedteamRunRow, run_id)
            return None if row is None else StoredRun.from_row(row)

    def list_runs(self) -> list[StoredRun]:
        with self._transaction("listing red-team runs") as session:
            rows = session.scalars(select(RedteamRunRow).order_by(RedteamRunRow.updated_at.desc()))
            return [StoredRun.from_row(row) for row in rows]

    def record_attempt(self, attempt: Attempt) -> None:
        """Store one Attempt; it is committed (durable) when this returns."""
        with self._transaction("recording an attempt") as session:
            session.execute(insert(AttemptRow), [attempt_row(attempt)])

    def record_attempts(self, attempts: Iterable[Attempt]) -> None:
        """Store Attempts in one transaction (one commit, one sync): all of them or, on error, none.

        A running campaign's writer calls this for every attempt or group of attempts, so it
        goes through a Core connection, without an ORM session (half the cost of a small commit).
        """
        rows = (attempt_row(attempt) for attempt in attempts)
        with self._connect() as connection:
            try:
                with connection.begin():
                    while chunk := list(islice(rows, _BATCH_ROWS)):
                        connection.execute(insert(AttemptRow), chunk)
            except SQLAlchemyError as exc:
                raise StoreError(
                    f"{self.display_url}: recording attempts failed: {_reason(exc)}"
                ) from None

    def replace_attempts(self, attempts: Iterable[Attempt]) -> int:
        """Overwrite stored Attempts (same ids) in one transaction, e.g. after rescoring."""
        changed = 0
        with self._transaction("rewriting attempts") as session:
            for attempt in attempts:
                row = session.get(AttemptRow, attempt.id)
                if row is None:
                    raise StoreError(f"attempt '{attempt.id}' is not stored; nothing to replace")
                values = attempt_row(attempt)
                row.record, row.status = values["record"], values["status"]
                changed += 1
        return changed

    def attempts(self, run_id: str, *, target: str | None = None) -> list[Attempt]:
        """A run's Attempts in the order they completed."""
        with self._transaction("reading attempts") as session:
            return [
                attempt_from_row(row) for row in session.scalars(select_attempts(run_id, target))
            ]

    def attempt_keys(self, run_id: str) -> set[tuple[str, str, int]]:
        """(target, probe_id, sample) of every stored attempt of the run: what resume skips."""
        with self._transaction("reading attempt keys") as session:
            return {
                (target, probe, sample)
                for target, probe, sample in session.execute(select_attempt_keys(run_id))
            }

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            connection = self.engine.connect()
        except DBAPIError as exc:
            raise StoreError(_unreachable(self.engine.url, exc)) from None
        with connection:
            yield connection

    @contextmanager
    def _transaction(self, doing: str, *, write_first: bool = False) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on any error.

        `write_first`: the block reads and then writes, so SQLite takes the write lock at BEGIN.
        """
        with self._connect() as connection:
            if write_first:
                connection.execution_options(**{_WRITE_LOCK_FIRST: True})
            try:
                with Session(bind=connection) as session, session.begin():
                    yield session
            except SQLAlchemyError as exc:
                raise StoreError(f"{self.display_url}: {doing} failed: {_reason(exc)}") from None


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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (the recipe in SQLAlchemy's pysqlite
        # docs): then DDL is transactional too and a failed migration leaves nothing half-done.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
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


def _reason(exc: BaseException) -> str:
    """The first line of the driver's own message, without SQLAlchemy's statement and links."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _unreachable(url: URL, exc: DBAPIError) -> str:
    reason = _reason(exc)
    if url.password:
        reason = reason.replace(str(url.password), "***")
    if url.get_backend_name() == "postgresql":
        advice = "is PostgreSQL running and the database created? set SAFESTACK_DB_URL"
    else:
        advice = "check the path and its permissions, or set SAFESTACK_DB_URL"
    return f"cannot connect to {_mask(url)}: {reason}; {advice}"
