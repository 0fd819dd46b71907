"""Break-fix rounds: one row per round of a series (`safestack align round`).

A round starts from a model (`parent`: the base for round 1, round N-1's model after that), moves
through its stages (`evaluated-before` → `data` → `trained` → `done`, or `nothing-to-learn`) and
keeps the training set it built, the model it trained and the red-team run ids that measured both
models (`runs`: {"before": {set: run id}, "after": {...}}). `safestack align report` reads these
rows and the runs they name; the rounds table is how a killed round knows where to continue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from safestack.errors import StoreError
from safestack.records import SCHEMA_VERSION
from safestack.store.database import Database
from safestack.store.tables import RoundRow

RoundStage = Literal["started", "evaluated-before", "data", "trained", "done", "nothing-to-learn"]
FINISHED: tuple[RoundStage, ...] = ("done", "nothing-to-learn")


class StoredRound(BaseModel):
    """A round as the store keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    series: str
    number: int = Field(ge=1)
    stage: RoundStage
    parent: str = Field(description="The model the round started from (store.models id).")
    model: str | None = Field(description="The model it trained; None until trained.")
    training_set: str | None
    training_set_version: str | None
    runs: dict[str, Any] = Field(description="'before' and 'after': evaluation set -> run id.")
    config: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    schema_version: int

    @property
    def finished(self) -> bool:
        return self.stage in FINISHED

    @classmethod
    def from_row(cls, row: RoundRow) -> StoredRound:
        return cls.model_validate({name: getattr(row, name) for name in cls.model_fields})


class Rounds:
    """The rounds table: `store.rounds`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def start(self, series: str, number: int, parent: str, config: dict[str, Any]) -> StoredRound:
        """Open round `number` of `series` (or return it when it exists with the same parent)."""
        now = datetime.now(UTC)
        with self._database.transaction("starting a round", write_first=True) as session:
            row = session.get(RoundRow, (series, number))
            if row is not None:
                if row.parent != parent:
                    raise StoreError(
                        f"round {number} of series '{series}' started from {row.parent}, not "
                        f"{parent}; choose another --series"
                    )
                return StoredRound.from_row(row)
            row = RoundRow(
                series=series,
                number=number,
                stage="started",
                parent=parent,
                model=None,
                training_set=None,
                training_set_version=None,
                runs={"before": {}, "after": {}},
                config=config,
                metrics={},
                created_at=now,
                updated_at=now,
                schema_version=SCHEMA_VERSION,
            )
            session.add(row)
            session.flush()
            return StoredRound.from_row(row)

    def update(self, series: str, number: int, **fields: Any) -> StoredRound:
        """Set `stage`, `model`, `training_set(_version)`; `runs` and `metrics` are merged."""
        allowed = {"stage", "model", "training_set", "training_set_version", "runs", "metrics"}
        unknown = set(fields) - allowed
        if unknown:
            raise StoreError(f"rounds.update: unknown fields {sorted(unknown)}")
        with self._database.transaction("updating a round", write_first=True) as session:
            row = session.get(RoundRow, (series, number))
            if row is None:
                raise StoreError(f"no round {number} in series '{series}'")
            for name, value in fields.items():
                if name == "runs":
                    row.runs = {
                        key: {**row.runs.get(key, {}), **value.get(key, {})}
                        for key in sorted({*row.runs, *value})
                    }
                elif name == "metrics":
                    row.metrics = {**row.metrics, **value}
                else:
                    setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
            session.flush()
            return StoredRound.from_row(row)

    def series(self, series: str) -> list[StoredRound]:
        """The series' rounds, first round first (empty when it has none)."""
        with self._database.transaction("reading rounds") as session:
            rows = session.scalars(
                select(RoundRow).where(RoundRow.series == series).order_by(RoundRow.number)
            )
            return [StoredRound.from_row(row) for row in rows]

    def all_series(self) -> list[str]:
        with self._database.transaction("listing round series") as session:
            return sorted(set(session.scalars(select(RoundRow.series))))
