"""The audit log: one AuditEvent per request the guard handled, kept for a retention period.

The server writes events with `store.audit.record(event)`; `monitor` and the console read them
back with `store.audit.events()`; `store.audit.purge()` deletes those past the retention period.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, Delete, Select, delete, insert, select

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
            return session.connection().execute(query).rowcount


def audit_row(event: AuditEvent) -> dict[str, Any]:
    """The column values of one audit_events row: the event's fields, JSON ones as JSON."""
    row = event.model_dump(mode="json")
    row["created_at"] = event.created_at  # the column type keeps it a timezone-aware datetime
    return row


def audit_rows(events: Iterable[AuditEvent]) -> Iterator[dict[str, Any]]:
    for event in events:
        yield audit_row(event)


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
