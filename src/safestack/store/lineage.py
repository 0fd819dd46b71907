"""Model lineage for break-fix: base model → round 1 → round 2 ..., one row per model.

`store.models.record(...)` keeps a base model (what was red-teamed first) or a fine-tune with its
parent, the training set it learnt from (id and content hash), the hash of its training config and
its metrics; `add_metrics` merges numbers measured later (a round's re-evaluation). `lineage(id)`
walks back to the base.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from safestack.errors import StoreError
from safestack.records import SCHEMA_VERSION
from safestack.store.database import Database
from safestack.store.tables import ModelRow

ModelKind = Literal["base", "fine-tune"]


class StoredModel(BaseModel):
    """A model as the lineage keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(description="The model id (a red-team target's `model_id`).")
    name: str
    kind: ModelKind
    parent: str | None = Field(description="The model it was trained from; None for a base.")
    training_set: str | None = Field(description="The training set's id (store.training_sets).")
    training_set_version: str | None = Field(description="sha256 of the rows it learnt from.")
    config_hash: str | None = Field(description="sha256 of the training config.")
    config: dict[str, Any]
    metrics: dict[str, Any]
    path: str = Field(description="Where the model is: the merged model directory or the file.")
    target: dict[str, Any] = Field(description="A red-team target spec that loads it.")
    created_at: datetime
    updated_at: datetime
    schema_version: int

    @classmethod
    def from_row(cls, row: ModelRow) -> StoredModel:
        return cls.model_validate({name: getattr(row, name) for name in cls.model_fields})


class ModelLineage:
    """The models table: `store.models`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def record(
        self,
        model_id: str,
        *,
        name: str,
        kind: ModelKind,
        path: str,
        target: dict[str, Any],
        parent: str | None = None,
        training_set: str | None = None,
        training_set_version: str | None = None,
        config_hash: str | None = None,
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> StoredModel:
        """Store a model, or update the one with this id (path, target and metrics).

        A fine-tune's id is derived from its parent, set and config, so the same id with another
        parent or set is a StoreError, never a silent overwrite of its history.
        """
        if kind == "fine-tune" and (parent is None or training_set_version is None):
            raise StoreError(f"model {model_id}: a fine-tune needs its parent and training set")
        now = datetime.now(UTC)
        with self._database.transaction("recording a model", write_first=True) as session:
            row = session.get(ModelRow, model_id)
            if row is None:
                row = ModelRow(
                    id=model_id,
                    name=name,
                    kind=kind,
                    parent=parent,
                    training_set=training_set,
                    training_set_version=training_set_version,
                    config_hash=config_hash,
                    config=config or {},
                    metrics=metrics or {},
                    path=path,
                    target=target,
                    created_at=now,
                    updated_at=now,
                    schema_version=SCHEMA_VERSION,
                )
                session.add(row)
            else:
                stored = (row.kind, row.parent, row.training_set_version, row.config_hash)
                if stored != (kind, parent, training_set_version, config_hash):
                    raise StoreError(
                        f"model {model_id} is already recorded with another history "
                        f"(kind, parent, training set, config: {stored}); record it under a new id"
                    )
                row.name, row.path, row.target, row.updated_at = name, path, target, now
                if metrics:
                    row.metrics = {**row.metrics, **metrics}
            session.flush()
            return StoredModel.from_row(row)

    def add_metrics(self, model_id: str, metrics: dict[str, Any]) -> StoredModel:
        """Merge `metrics` into the model's (a key given again is replaced)."""
        with self._database.transaction("recording model metrics", write_first=True) as session:
            row = session.get(ModelRow, model_id)
            if row is None:
                raise StoreError(f"no model '{model_id}' in the lineage; safestack align models")
            row.metrics = {**row.metrics, **metrics}
            row.updated_at = datetime.now(UTC)
            session.flush()
            return StoredModel.from_row(row)

    def get(self, ref: str) -> StoredModel | None:
        """The model whose id is `ref`, or whose id starts with it (8+ characters, one match)."""
        with self._database.transaction("reading a model") as session:
            row = session.get(ModelRow, ref)
            if row is not None:
                return StoredModel.from_row(row)
            if len(ref) < 8:
                return None
            rows = session.scalars(
                select(ModelRow).where(ModelRow.id.startswith(ref, autoescape=True))
            ).all()
            if len(rows) > 1:
                raise StoreError(
                    f"model '{ref}' is ambiguous: {', '.join(r.id for r in rows)}; give more of it"
                )
            return StoredModel.from_row(rows[0]) if rows else None

    def all(self) -> list[StoredModel]:
        """Every model, oldest first (a parent before its fine-tunes)."""
        with self._database.transaction("listing models") as session:
            rows = session.scalars(select(ModelRow).order_by(ModelRow.created_at, ModelRow.id))
            return [StoredModel.from_row(row) for row in rows]

    def lineage(self, model_id: str) -> list[StoredModel]:
        """The model and its ancestors, base first; stops at a parent the store does not hold."""
        chain: list[StoredModel] = []
        current: str | None = model_id
        while current is not None and all(m.id != current for m in chain):
            found = self.get(current)
            if found is None:
                if not chain:
                    raise StoreError(
                        f"no model '{model_id}' in the lineage; safestack align models"
                    )
                break
            chain.append(found)
            current = found.parent
        return chain[::-1]
