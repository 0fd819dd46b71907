"""The audit log: one AuditEvent per request the guard handled, kept for a retention period.

The gateway writes a request's record when it accepts it (`start`, `completed=False`) and replaces
it with the outcome (`complete`), directly or through its local journal (`absorb`, idempotent by
event id); `monitor` and the console read them back with `store.audit.events()`;
`store.audit.purge()` deletes those past the retention period.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, Delete, Insert, Select, delete, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from safestack.records import AuditEvent
from safestack.store.database import BATCH_ROWS, Database
from safestack.store.tables import AuditEventRow


class AuditLog:
    """The audit_events table: `store.audit`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def record(self, event: AuditEvent) -> None:
        """Store one event; it is committed (durable) when this returns."""
        with self._database.transaction("recording an audit event") as session:
            session.execute(insert(AuditEventRow), [audit_row(event)])

    def record_many(self, events: Iterable[AuditEvent]) -> None:
        """Store events in one transaction: all of them or, on any error, none."""
        rows = audit_rows(events)
        with self._database.transaction("recording audit events") as session:
            while chunk := list(islice(rows, BATCH_ROWS)):
                session.execute(insert(AuditEventRow), chunk)

    def start(self, event: AuditEvent) -> None:
        """Store a request's opening record, unless its id is already there (then it is kept:
        a completion is never replaced by its start). Committed when this returns."""
        self.absorb([event])

    def complete(self, event: AuditEvent) -> None:
        """Store a request's final record, replacing its opening one. Committed when this returns."""
        self.absorb([event])

    def absorb(self, events: Iterable[AuditEvent]) -> int:
        """Store events idempotently by id, in one transaction: a completed event replaces a row
        of the same id, an opening one (`completed=False`) is added only where there is none.
        The same events absorbed twice, in any order, leave the same rows. Returns how many."""
        latest: dict[str, AuditEvent] = {}
        for event in events:
            kept = latest.get(event.id)
            if kept is None or (event.completed and not kept.completed):
                latest[event.id] = event
        with self._database.transaction("recording audit events") as session:
            dialect = session.get_bind().dialect.name
            done = [audit_row(e) for e in latest.values() if e.completed]
            opened = [audit_row(e) for e in latest.values() if not e.completed]
            _execute_chunked(session, _upsert(dialect, replace=True), done)
            _execute_chunked(session, _upsert(dialect, replace=False), opened)
        return len(latest)

    def events(
        self, *, key_id: str | None = None, since: datetime | None = None, limit: int | None = 100
    ) -> list[AuditEvent]:
        """Events newest first, optionally of one key and/or at or after `since` (tz-aware)."""
        query = select_events(key_id, since, limit)
        with self._database.transaction("reading audit events") as session:
            return [event_from_row(row) for row in session.scalars(query)]

    def purge(self, before: datetime) -> int:
        """Delete events created before `before` (tz-aware), for retention; returns how many."""
        query = delete_before(before)
        with self._database.transaction("purging audit events") as session:
            if session.get_bind().dialect.name == "postgresql":
                # A first purge of a large table may outlast the per-statement limit of requests.
                session.execute(text("SET LOCAL statement_timeout = 0"))
            return session.connection().execute(query).rowcount


def audit_row(event: AuditEvent) -> dict[str, Any]:
    """The column values of one audit_events row: the event's fields, JSON ones as JSON."""
    row = event.model_dump(mode="json")
    row["created_at"] = event.created_at  # the column type keeps it a timezone-aware datetime
    return row


def audit_rows(events: Iterable[AuditEvent]) -> Iterator[dict[str, Any]]:
    for event in events:
        yield audit_row(event)


def _upsert(dialect: str, *, replace: bool) -> Insert:
    """INSERT that, on an existing id, replaces the row (`replace`) or leaves it as it is."""
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(AuditEventRow)
    elif dialect == "sqlite":
        statement = sqlite.insert(AuditEventRow)
    else:
        raise NotImplementedError(f"no upsert for the '{dialect}' database")
    if not replace:
        return statement.on_conflict_do_nothing(index_elements=["id"])
    columns = [c.name for c in AuditEventRow.__table__.columns if c.name != "id"]
    return statement.on_conflict_do_update(
        index_elements=["id"], set_={name: statement.excluded[name] for name in columns}
    )


def _execute_chunked(session: Session, statement: Insert, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH_ROWS):
        session.execute(statement, rows[start : start + BATCH_ROWS])


def event_from_row(row: AuditEventRow) -> AuditEvent:
    return AuditEvent.model_validate({name: getattr(row, name) for name in AuditEvent.model_fields})


def select_events(
    key_id: str | None, since: datetime | None, limit: int | None
) -> Select[AuditEventRow]:
    """Newest first; events of the same instant in reverse id order."""
    filters: list[ColumnElement[bool]] = []
    if key_id is not None:
        filters.append(AuditEventRow.key_id == key_id)
    if since is not None:
        filters.append(AuditEventRow.created_at >= aware(since, "since"))
    query = (
        select(AuditEventRow)
        .where(*filters)
        .order_by(AuditEventRow.created_at.desc(), AuditEventRow.id.desc())
    )
    return query if limit is None else query.limit(limit)


def delete_before(before: datetime) -> Delete:
    return delete(AuditEventRow).where(AuditEventRow.created_at < aware(before, "before"))


def aware(value: datetime, name: str) -> datetime:
    """`value` if it carries a timezone; a naive time is ambiguous against UTC rows."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got the naive datetime {value}")
    return value
