"""Match cases: each image that matched a hash bank, kept for review and for the legal report.

`store.media_cases.open(...)` records a case (hashes, what matched, the request's context as the
deployment records it; never the image); `review()` records a reviewer's decision. A case moves
open -> confirmed | dismissed, and confirmed -> reported once a report has been filed by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select

from safestack.errors import StoreError
from safestack.store.database import Database
from safestack.store.tables import MediaCaseRow

CaseStatus = Literal["open", "confirmed", "dismissed", "reported"]
CASE_SCHEMA_VERSION = 1
# Which decision may follow which: a dismissed case can be re-opened as confirmed on appeal, a
# reported one is final.
NEXT_STATUS: dict[str, tuple[str, ...]] = {
    "open": ("confirmed", "dismissed"),
    "confirmed": ("reported", "dismissed"),
    "dismissed": ("confirmed",),
    "reported": (),
}


class CaseMatch(BaseModel):
    """One bank entry the image matched, as the case keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bank: str
    entry_id: str
    kind: Literal["pdq", "md5", "sha256"]
    value: str
    distance: int
    variant: str


class MediaCase(BaseModel):
    """One case as read back from the store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    created_at: datetime = Field(description="When the image was matched (the incident time).")
    status: CaseStatus
    md5: str
    sha256: str
    pdq: str | None
    quality: int | None
    matches: list[CaseMatch]
    context: dict[str, Any] = Field(
        description="The request as the deployment records it: key id, account, IP, endpoint."
    )
    reviewer: str | None
    decision_note: str | None
    reviewed_at: datetime | None
    schema_version: int

    @classmethod
    def from_row(cls, row: MediaCaseRow) -> MediaCase:
        return cls(
            id=row.id,
            created_at=row.created_at,
            status=row.status,
            md5=row.md5,
            sha256=row.sha256,
            pdq=row.pdq,
            quality=row.quality,
            matches=[CaseMatch.model_validate(m) for m in row.matches],
            context=row.context,
            reviewer=row.reviewer,
            decision_note=row.decision_note,
            reviewed_at=row.reviewed_at,
            schema_version=row.schema_version,
        )


class MediaCases:
    """The media_cases table: `store.media_cases`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def open(
        self,
        *,
        md5: str,
        sha256: str,
        pdq: str | None,
        quality: int | None,
        matches: list[CaseMatch],
        context: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> MediaCase:
        """Record a new open case for an image that matched; returns it as stored."""
        if not matches:
            raise ValueError("a case needs at least one match")
        row = {
            "id": uuid.uuid4().hex,
            "created_at": at or datetime.now(UTC),
            "status": "open",
            "md5": md5,
            "sha256": sha256,
            "pdq": pdq,
            "quality": quality,
            "matches": [m.model_dump(mode="json") for m in matches],
            "context": context or {},
            "reviewer": None,
            "decision_note": None,
            "reviewed_at": None,
            "schema_version": CASE_SCHEMA_VERSION,
        }
        with self._database.transaction("opening a media case") as session:
            session.execute(insert(MediaCaseRow), [row])
        return self.get(str(row["id"]))

    def get(self, case_id: str) -> MediaCase:
        with self._database.transaction("reading a media case") as session:
            row = session.get(MediaCaseRow, case_id)
            if row is None:
                raise StoreError(f"no media case '{case_id}'; list them with their ids first")
            return MediaCase.from_row(row)

    def find(self, status: CaseStatus | None = None, limit: int | None = 100) -> list[MediaCase]:
        """Cases oldest first, optionally only those in one status (the review queue: 'open')."""
        query = select(MediaCaseRow).order_by(MediaCaseRow.created_at, MediaCaseRow.id)
        if status is not None:
            query = query.where(MediaCaseRow.status == status)
        if limit is not None:
            query = query.limit(limit)
        with self._database.transaction("reading media cases") as session:
            return [MediaCase.from_row(row) for row in session.scalars(query)]

    def review(
        self, case_id: str, *, status: CaseStatus, reviewer: str, note: str | None = None
    ) -> MediaCase:
        """Record a reviewer's decision; a move the case's status does not allow is refused."""
        if not reviewer.strip():
            raise StoreError("a review needs the reviewer's name")
        with self._database.transaction("reviewing a media case", write_first=True) as session:
            row = session.get(MediaCaseRow, case_id)
            if row is None:
                raise StoreError(f"no media case '{case_id}'; list them with their ids first")
            allowed = NEXT_STATUS[row.status]
            if status not in allowed:
                raise StoreError(
                    f"media case '{case_id}' is {row.status}; it can become "
                    f"{' or '.join(allowed) if allowed else 'nothing else (final)'}, not {status}"
                )
            row.status = status
            row.reviewer = reviewer
            row.decision_note = note
            row.reviewed_at = datetime.now(UTC)
        return self.get(case_id)
