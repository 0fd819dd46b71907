"""Judgements: each Verdict the judge gave, stored with a digest of what it judged.

`Store.record_judgement(s)` writes them; `Store.judgements()` reads them back as `StoredJudgement`
records, the Verdict re-parsed, for reports and for re-scoring a run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, func, select

from safestack.records import Kind, Verdict
from safestack.store.tables import JudgementRow


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
