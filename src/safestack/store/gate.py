"""The gate's records: model versions, pinned evidence, signers' public keys, the decision log.

`store.gate` writes and reads them as plain records; what they mean (scorecards, signatures,
roles) is the `gate` stage's business. The decision log has `append` and no update or delete:
an entry is corrected by a later entry, never rewritten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, insert, select

from safestack.errors import StoreError
from safestack.store.database import Database
from safestack.store.tables import (
    GateEvidenceRow,
    GateLogRow,
    GateModelVersionRow,
    GateSignerRow,
)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoredModelVersion(_Row):
    id: str
    model: str
    version: str
    pre_target: str
    post_target: str
    description: str
    created_at: datetime


class StoredEvidence(_Row):
    id: str
    model_version_id: str
    kind: str
    stage: str
    source: str
    content_hash: str
    collected_at: datetime
    recorded_at: datetime
    payload: dict[str, Any]
    record_hash: str
    schema_version: int


class StoredSigner(_Row):
    key_id: str
    person: str
    role: str
    public_key: str
    created_at: datetime


class StoredLogEntry(_Row):
    seq: int
    entry: dict[str, Any]
    entry_hash: str
    created_at: datetime


def _fields(model: type[_Row], row: object) -> dict[str, Any]:
    return {name: getattr(row, name) for name in model.model_fields}


class GateRecords:
    """The gate_* tables: `store.gate`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # model versions
    def add_model_version(self, version: StoredModelVersion) -> None:
        with self._database.transaction("registering a model version", write_first=True) as s:
            if s.get(GateModelVersionRow, version.id) is not None:
                raise StoreError(
                    f"model version '{version.id}' is already registered; a new version needs a "
                    "new --version"
                )
            s.add(GateModelVersionRow(**version.model_dump()))

    def model_version(self, model: str, version: str) -> StoredModelVersion | None:
        with self._database.transaction("reading a model version") as s:
            row = s.scalar(
                select(GateModelVersionRow).where(
                    GateModelVersionRow.model == model, GateModelVersionRow.version == version
                )
            )
            return None if row is None else StoredModelVersion(**_fields(StoredModelVersion, row))

    def model_versions(self, model: str | None = None) -> list[StoredModelVersion]:
        """Versions, newest first."""
        query = select(GateModelVersionRow).order_by(GateModelVersionRow.created_at.desc())
        if model is not None:
            query = query.where(GateModelVersionRow.model == model)
        with self._database.transaction("listing model versions") as s:
            return [StoredModelVersion(**_fields(StoredModelVersion, r)) for r in s.scalars(query)]

    # evidence
    def add_evidence(self, evidence: StoredEvidence) -> None:
        with self._database.transaction("pinning evidence") as s:
            s.execute(insert(GateEvidenceRow), [evidence.model_dump()])

    def evidence(self, model_version_id: str) -> list[StoredEvidence]:
        """A model version's evidence, in the order it was pinned."""
        query = (
            select(GateEvidenceRow)
            .where(GateEvidenceRow.model_version_id == model_version_id)
            .order_by(GateEvidenceRow.recorded_at, GateEvidenceRow.id)
        )
        with self._database.transaction("reading evidence") as s:
            return [StoredEvidence(**_fields(StoredEvidence, r)) for r in s.scalars(query)]

    # signers
    def add_signer(self, signer: StoredSigner) -> None:
        with self._database.transaction("registering a signer") as s:
            s.execute(insert(GateSignerRow), [signer.model_dump()])

    def signers(self) -> list[StoredSigner]:
        with self._database.transaction("reading signers") as s:
            rows = s.scalars(select(GateSignerRow).order_by(GateSignerRow.created_at))
            return [StoredSigner(**_fields(StoredSigner, r)) for r in rows]

    # the decision log
    def append(self, entry: dict[str, Any], entry_hash: str, created_at: datetime) -> int:
        """Append one entry as the next sequence number; its `seq` field must say which.

        Two writers racing for the same number: one wins, the other gets a StoreError telling
        it to rebuild its entry on the new head (the chain links each entry to the previous).
        """
        seq = entry.get("seq")
        with self._database.transaction("appending to the decision log", write_first=True) as s:
            last = s.scalar(select(func.max(GateLogRow.seq)))
            expected = 1 if last is None else last + 1
            if seq != expected:
                raise StoreError(
                    f"decision log entry has seq {seq} but the next is {expected}: another entry "
                    "was appended meanwhile; record it again"
                )
            s.execute(
                insert(GateLogRow),
                [{"seq": seq, "entry": entry, "entry_hash": entry_hash, "created_at": created_at}],
            )
        return int(seq)

    def log(self) -> list[StoredLogEntry]:
        with self._database.transaction("reading the decision log") as s:
            rows = s.scalars(select(GateLogRow).order_by(GateLogRow.seq))
            return [StoredLogEntry(**_fields(StoredLogEntry, r)) for r in rows]
