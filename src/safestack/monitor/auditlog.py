"""Reading the audit log for monitoring: batches of events from SQLite, PostgreSQL or a Parquet
export, as Polars frames of the few columns the analysis needs.

The reader asks the database which columns `audit_events` has, so logs written by older schema
versions (no `completed`, no `end_user`) read as well: a missing column reads as null. Rows that
cannot be used (no time, a malformed JSON field) are counted by reason in `ReadStats`, never
guessed at. Severity is derived here, once per event, from the policy's score cut-points.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from safestack.errors import InputError, StoreError
from safestack.policy import Policy
from safestack.store import Database
from safestack.store.tables import UTCDateTime

BATCH_ROWS = 20_000
TABLE = "audit_events"

# What the analysis reads; everything but `created_at` may be missing from an old schema.
WANTED = ("id", "created_at", "key_id", "end_user", "action", "categories", "scores")
WITH_TEXT = ("content",)

EVENT_SCHEMA: dict[str, Any] = {
    "id": pl.Utf8,
    "at": pl.Datetime("us", "UTC"),
    "key_id": pl.Utf8,
    "end_user": pl.Utf8,
    "action": pl.Utf8,
    "categories": pl.List(pl.Utf8),
    "severity": pl.Int8,
    "attack": pl.Boolean,
    "text": pl.Utf8,
}


@dataclass
class ReadStats:
    """What was read and what was skipped (by reason); `missing_columns`: absent from the source."""

    rows: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    missing_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "events": self.events,
            "skipped": dict(sorted(self.skipped.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "missing_columns": self.missing_columns,
        }


@dataclass(frozen=True, slots=True)
class Period:
    """Events at or after `since` and before `until` (either open); tz-aware."""

    since: datetime | None = None
    until: datetime | None = None


class EventReader:
    """Turns raw audit rows (mappings) into event frames, counting what it skips."""

    def __init__(self, policy: Policy, *, with_text: bool = False) -> None:
        self.policy = policy
        self.with_text = with_text
        self.stats = ReadStats()
        self._attacks = frozenset(policy.attack_categories())
        cuts = policy.severity.score_cutpoints
        self._cuts = cuts

    def frame(self, rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
        columns: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA}
        for row in rows:
            self.stats.rows += 1
            event = self._event(row)
            if event is None:
                continue
            self.stats.events += 1
            for name, value in zip(EVENT_SCHEMA, event, strict=True):
                columns[name].append(value)
        return pl.DataFrame(columns, schema=EVENT_SCHEMA)

    def _event(self, row: dict[str, Any]) -> tuple[Any, ...] | None:
        at = _aware(row.get("created_at"))
        if at is None:
            self.stats.skipped["no or unreadable created_at"] += 1
            return None
        categories = _json(row.get("categories"), list)
        if categories is None:
            if row.get("categories") is not None:
                self.stats.repaired["malformed categories (read as none)"] += 1
            categories = []
        categories = [str(c) for c in categories if isinstance(c, str)]
        scores = _json(row.get("scores"), dict)
        if scores is None:
            if row.get("scores") is not None:
                self.stats.repaired["malformed scores (read as none)"] += 1
            scores = {}
        severity = 0
        for category in categories:
            score = scores.get(category)
            if isinstance(score, int | float):
                severity = max(severity, self.policy.severity_from_score(float(score)))
        text = request_text(_json(row.get("content"), dict)) if self.with_text else None
        key_id = row.get("key_id")
        end_user = row.get("end_user")
        action = row.get("action")
        return (
            str(row.get("id") or ""),
            at,
            str(key_id) if key_id else None,
            str(end_user) if end_user else None,
            str(action) if action else None,
            categories,
            severity,
            any(c in self._attacks for c in categories),
            text,
        )


def request_text(content: dict[str, Any] | None) -> str | None:
    """The user's words in a kept request: the chat's user turns, or the moderation input."""
    if not content:
        return None
    request = content.get("request")
    if not isinstance(request, dict):
        return None
    parts: list[str] = []
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                parts.extend(_texts(message.get("content")))
    if not parts:
        parts.extend(_texts(request.get("input")))
    text = "\n".join(p for p in parts if p.strip())
    return text or None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                out.append(item["text"])
        return out
    return []


def _json(value: Any, kind: type) -> Any:
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, kind) else None


def _aware(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def audit_columns(database: Database) -> list[str]:
    """The columns the audit table has in this database (any schema version)."""
    inspector = sa.inspect(database.engine)
    if not inspector.has_table(TABLE):
        raise StoreError(
            f"{database.display_url}: there is no {TABLE} table; run `safestack db upgrade` or "
            "point SAFESTACK_DB_URL at the gateway's database"
        )
    return [column["name"] for column in inspector.get_columns(TABLE)]


def read_store(
    database: Database,
    reader: EventReader,
    period: Period = Period(),
    *,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pl.DataFrame]:
    """Event frames of at most `batch_rows`, oldest first, streamed from the database."""
    present = set(audit_columns(database))
    wanted = [*WANTED, *(WITH_TEXT if reader.with_text else ())]
    reader.stats.missing_columns = [c for c in wanted if c not in present]
    if "created_at" not in present:
        raise StoreError(f"{database.display_url}: {TABLE} has no created_at column")
    # Read as the driver gives them and parsed here, so one malformed value skips one row (counted)
    # instead of failing the read; the time filter uses the column's own type.
    columns = [sa.column(name, sa.Text()) for name in wanted if name in present]
    table = sa.table(TABLE, *columns)
    created = sa.column("created_at", UTCDateTime())
    query = sa.select(*columns).select_from(table).order_by(created)
    if period.since is not None:
        query = query.where(created >= period.since)
    if period.until is not None:
        query = query.where(created < period.until)
    with database.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(
            query
        )
        try:
            for chunk in result.mappings().partitions(batch_rows):
                yield reader.frame([dict(row) for row in chunk])
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{database.display_url}: reading {TABLE} failed: {exc}") from None


def read_parquet(
    path: Path, reader: EventReader, period: Period = Period(), *, batch_rows: int = BATCH_ROWS
) -> Iterator[pl.DataFrame]:
    """The same from a Parquet export of `audit_events` (e.g. `monitor export`)."""
    if not path.is_file():
        raise InputError(f"{path}: Parquet file not found")
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from None
    wanted = [*WANTED, *(WITH_TEXT if reader.with_text else ())]
    reader.stats.missing_columns = [c for c in wanted if c not in schema]
    if "created_at" not in schema:
        raise InputError(f"{path}: no created_at column; export the audit_events table whole")
    frame = pl.scan_parquet(path).select([c for c in wanted if c in schema])
    for offset in range(0, int(frame.select(pl.len()).collect().item()), batch_rows):
        rows = frame.slice(offset, batch_rows).collect().to_dicts()
        events = reader.frame(rows)
        if period.since is not None:
            events = events.filter(pl.col("at") >= period.since)
        if period.until is not None:
            events = events.filter(pl.col("at") < period.until)
        yield events


def export_parquet(database: Database, path: Path, *, batch_rows: int = BATCH_ROWS) -> int:
    """Write the audit table's monitoring columns to Parquet (JSON fields as JSON text); rows."""
    present = set(audit_columns(database))
    names = [c for c in (*WANTED, *WITH_TEXT) if c in present]
    table = sa.table(TABLE, *[sa.column(n) for n in names])
    frames: list[pl.DataFrame] = []
    with database.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(
            sa.select(*table.c).order_by(table.c.created_at)
        )
        for chunk in result.mappings().partitions(batch_rows):
            rows = [{n: _text(row[n]) for n in names} for row in chunk]
            frames.append(pl.DataFrame(rows, schema=dict.fromkeys(names, pl.Utf8)))
    out = pl.concat(frames) if frames else pl.DataFrame(schema=dict.fromkeys(names, pl.Utf8))
    path.parent.mkdir(parents=True, exist_ok=True)
    out.write_parquet(path)
    return out.height


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return _aware(value).isoformat()  # type: ignore[union-attr]
    return json.dumps(value)


def account_of(key_id: str | None, end_user: str | None) -> tuple[str | None, str | None]:
    """The contract's account names: `key:<key_id>` and `user:<key_id>:<end_user>`."""
    if key_id is None:
        return None, None
    return f"key:{key_id}", (f"user:{key_id}:{end_user}" if end_user else None)
