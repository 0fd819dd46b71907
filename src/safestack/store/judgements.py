"""Judgements: each Verdict the judge gave, stored with a digest of what it judged.

`store.judgements.record(...)` writes them; `store.judgements.find()` reads them back as
`StoredJudgement` records, the Verdict re-parsed, for reports and for re-scoring a run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, func, insert, select

from safestack.records import Kind, Verdict
from safestack.store.database import BATCH_ROWS, Database
from safestack.store.tables import JudgementRow


class Judgements:
    """The judgements table: `store.judgements`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def record(
        self, verdict: Verdict, text: str, *, kind: Kind, run_id: str, keep_text: bool = False
    ) -> str:
        """Store one Verdict on `text`; the text itself only if `keep_text`. Returns the row id."""
        row = judgement_row(verdict, text, kind=kind, run_id=run_id, keep_text=keep_text)
        with self._database.transaction("recording a judgement") as session:
            session.execute(insert(JudgementRow), [row])
        return str(row["id"])

    def record_many(
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
        with self._database.transaction("recording judgements") as session:
            while chunk := list(islice(rows, BATCH_ROWS)):
                session.execute(insert(JudgementRow), chunk)
                ids.extend(row["id"] for row in chunk)
        return ids

    def find(
        self, run_id: str | None = None, flagged: bool | None = None, limit: int | None = 100
    ) -> list[StoredJudgement]:
        """Stored judgements, oldest first, optionally of one run and/or only (un)flagged ones."""
        with self._database.transaction("reading judgements") as session:
            rows = session.scalars(select_judgements(run_id, flagged, limit)).all()
            return [StoredJudgement.from_row(row) for row in rows]

    def count(self, run_id: str | None = None, flagged: bool | None = None) -> int:
        with self._database.transaction("counting judgements") as session:
            return session.scalar(select_count(run_id, flagged)) or 0


class StoredJudgement(BaseModel):
    """One judgement as read back from the store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    created_at: datetime = Field(description="When it was recorded, timezone-aware UTC.")
    run_id: str = Field(description="Groups the judgements of one run (a file, a campaign).")
    kind: Kind
    input_digest: str = Field(description="sha256 hex of the judged text.")
    input_text: str | None = Field(description="The judged text, only if it was kept.")
    verdict: Verdict
    schema_version: int = Field(description="The schema_version the verdict was written with.")

    @classmethod
    def from_row(cls, row: JudgementRow) -> StoredJudgement:
        return cls(
            id=row.id,
            created_at=row.created_at,
            run_id=row.run_id,
            kind=row.kind,
            input_digest=row.input_digest,
            input_text=row.input_text,
            verdict=Verdict.model_validate(row.verdict),
            schema_version=row.schema_version,
        )


def digest(text: str) -> str:
    """sha256 hex of the UTF-8 text: finds repeats of an input without keeping the input."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def judgement_row(
    verdict: Verdict, text: str, *, kind: Kind, run_id: str, keep_text: bool
) -> dict[str, Any]:
    """The column values of one judgements row."""
    if kind not in ("prompt", "response"):
        raise ValueError(f"kind must be 'prompt' or 'response', got {kind!r}")
    return {
        "id": uuid.uuid4().hex,
        "created_at": datetime.now(UTC),
        "run_id": run_id,
        "input_digest": digest(text),
        "input_text": text if keep_text else None,
        "kind": kind,
        "flagged": verdict.flagged,
        "action": verdict.action.value,
        "severity": verdict.severity,
        "categories": list(verdict.flagged_categories),
        "verdict": verdict.model_dump(mode="json"),
        "policy": verdict.policy,
        "schema_version": verdict.schema_version,
    }


def judgement_rows(
    items: Iterable[tuple[Verdict, str]], *, kind: Kind, run_id: str, keep_text: bool
) -> Iterator[dict[str, Any]]:
    for verdict, text in items:
        yield judgement_row(verdict, text, kind=kind, run_id=run_id, keep_text=keep_text)


def _filters(run_id: str | None, flagged: bool | None) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if run_id is not None:
        filters.append(JudgementRow.run_id == run_id)
    if flagged is not None:
        filters.append(JudgementRow.flagged == flagged)
    return filters


def select_judgements(
    run_id: str | None, flagged: bool | None, limit: int | None
) -> Select[JudgementRow]:
    """Oldest first; rows recorded in the same instant come in id order."""
    query = (
        select(JudgementRow)
        .where(*_filters(run_id, flagged))
        .order_by(JudgementRow.created_at, JudgementRow.id)
    )
    return query if limit is None else query.limit(limit)


def select_count(run_id: str | None, flagged: bool | None) -> Select[int]:
    return select(func.count()).select_from(JudgementRow).where(*_filters(run_id, flagged))
