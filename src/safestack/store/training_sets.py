"""Training sets: what `safestack align data` built from red-team findings, by content hash.

`store.training_sets.record(...)` keeps one row per distinct content (building the same rows again
returns the stored set, with its new location); later break-fix rounds name a set by id or hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from safestack.errors import StoreError
from safestack.records import SCHEMA_VERSION
from safestack.store.database import Database
from safestack.store.tables import TrainingSetRow

# The id is the hash's first characters: short enough to type, long enough never to collide in
# one store (64 bits).
ID_CHARS = 16


class StoredTrainingSet(BaseModel):
    """A training set as stored: its version (sha256 of its rows), inputs, counts and manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    version: str = Field(description="sha256 of the set's rows; the manifest's `version`.")
    created_at: datetime
    runs: list[str] = Field(description="The red-team run ids it was built from.")
    policy: str = Field(description="The policy, 'name@version'.")
    counts: dict[str, Any] = Field(description="Rows per kind and split.")
    path: str = Field(description="Where it was last written.")
    manifest: dict[str, Any]
    schema_version: int

    @classmethod
    def from_row(cls, row: TrainingSetRow) -> StoredTrainingSet:
        return cls.model_validate(
            {name: getattr(row, name) for name in cls.model_fields}, from_attributes=False
        )


class TrainingSets:
    """The training_sets table: `store.training_sets`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def record(
        self,
        version: str,
        *,
        runs: list[str],
        policy: str,
        counts: dict[str, Any],
        path: str,
        manifest: dict[str, Any],
    ) -> StoredTrainingSet:
        """Store a set, or return the one with the same `version` (its `path` updated)."""
        if len(version) != 64 or any(c not in "0123456789abcdef" for c in version):
            raise StoreError(f"training set version must be a sha256 hex digest, got {version!r}")
        with self._database.transaction("recording a training set", write_first=True) as session:
            row = session.scalars(
                select(TrainingSetRow).where(TrainingSetRow.version == version)
            ).first()
            if row is None:
                row = TrainingSetRow(
                    id=version[:ID_CHARS],
                    version=version,
                    created_at=datetime.now(UTC),
                    runs=list(runs),
                    policy=policy,
                    counts=counts,
                    path=path,
                    manifest=manifest,
                    schema_version=SCHEMA_VERSION,
                )
                session.add(row)
            else:
                row.path = path
            session.flush()
            return StoredTrainingSet.from_row(row)

    def get(self, ref: str) -> StoredTrainingSet | None:
        """The set whose id or version is `ref`, or whose version starts with it (8+ characters).

        An ambiguous prefix is a StoreError naming the matches.
        """
        with self._database.transaction("reading a training set") as session:
            row = session.get(TrainingSetRow, ref)
            if row is not None:
                return StoredTrainingSet.from_row(row)
            if len(ref) < 8:
                return None
            rows = session.scalars(
                select(TrainingSetRow).where(
                    TrainingSetRow.version.startswith(ref, autoescape=True)
                )
            ).all()
            if len(rows) > 1:
                raise StoreError(
                    f"training set '{ref}' is ambiguous: {', '.join(r.id for r in rows)}; "
                    "give more of the hash"
                )
            return StoredTrainingSet.from_row(rows[0]) if rows else None

    def all(self) -> list[StoredTrainingSet]:
        """Every stored set, newest first."""
        with self._database.transaction("listing training sets") as session:
            rows = session.scalars(
                select(TrainingSetRow).order_by(TrainingSetRow.created_at.desc(), TrainingSetRow.id)
            )
            return [StoredTrainingSet.from_row(row) for row in rows]
