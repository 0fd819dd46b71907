"""Red-team runs and their Attempts: written one by one as they complete, read back for reports.

A run row holds the campaign and its hash, so a re-run can tell whether the campaign changed; the
attempts table's unique (run, target, probe, sample) key is what resume skips on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Delete, Select, delete, select

from safestack.records import SCHEMA_VERSION, Attempt
from safestack.store.tables import AttemptRow, RedteamRunRow


class StoredRun(BaseModel):
    """A red-team run as stored: which campaign (and its hash), when."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    campaign_hash: str
    campaign: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RedteamRunRow) -> StoredRun:
        return cls.model_validate(
            {name: getattr(row, name) for name in cls.model_fields}, from_attributes=False
        )


def run_row(run_id: str, name: str, campaign_hash: str, campaign: dict[str, Any]) -> RedteamRunRow:
    now = datetime.now(UTC)
    return RedteamRunRow(
        id=run_id,
        name=name,
        campaign_hash=campaign_hash,
        campaign=campaign,
        created_at=now,
        updated_at=now,
        schema_version=SCHEMA_VERSION,
    )


def attempt_row(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "run_id": attempt.run_id,
        "target": attempt.target,
        "probe_id": attempt.probe_id,
        "sample": attempt.sample,
        "attack": attempt.attack,
        "category": attempt.category,
        "status": attempt.status.value,
        "created_at": attempt.started_at,
        "record": attempt.model_dump(mode="json"),
        "schema_version": attempt.schema_version,
    }


def attempt_from_row(row: AttemptRow) -> Attempt:
    return Attempt.model_validate(row.record)


def select_attempts(run_id: str, target: str | None = None) -> Select[AttemptRow]:
    query = select(AttemptRow).where(AttemptRow.run_id == run_id)
    if target is not None:
        query = query.where(AttemptRow.target == target)
    return query.order_by(AttemptRow.created_at, AttemptRow.id)


def select_keys(run_id: str) -> Select[str, str, int]:
    return select(AttemptRow.target, AttemptRow.probe_id, AttemptRow.sample).where(
        AttemptRow.run_id == run_id
    )


def delete_attempts(run_id: str) -> Delete:
    return delete(AttemptRow).where(AttemptRow.run_id == run_id)
