"""Hash banks: named lists of hashes of known material that `safestack.media` matches images against.

`store.media_banks.add(bank, entries)` imports hashes (repeats are skipped); `active()` streams the
entries the matching index is built from; `disable()` tombstones an entry: rows are never deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select, update

from safestack.errors import StoreError
from safestack.store.database import BATCH_ROWS, Database
from safestack.store.tables import MediaBankRow, MediaHashRow

HashKind = Literal["pdq", "md5", "sha256"]
BANK_SCHEMA_VERSION = 1


class BankEntry(BaseModel):
    """One hash as imported: its kind, lowercase hex value and, for PDQ, its quality if known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: HashKind
    value: str = Field(description="Lowercase hex: 64 digits for pdq and sha256, 32 for md5.")
    quality: int | None = Field(
        default=None, description="PDQ quality 0-100, when the list has it."
    )


class StoredBank(BaseModel):
    """One bank as read back, with how many of its entries are active and how many disabled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    source: str
    created_at: datetime
    active: int
    disabled: int


class ActiveHash(BaseModel):
    """One entry the matching index holds: enough to name the bank and the entry in a match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    bank: str
    kind: HashKind
    value: str
    quality: int | None


class ImportCount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    added: int = Field(description="New entries written.")
    repeated: int = Field(description="Entries the bank already held (or given twice): skipped.")


class MediaBanks:
    """The media_banks and media_hashes tables: `store.media_banks`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, bank: str, entries: Iterable[BankEntry], *, source: str = "") -> ImportCount:
        """Add `entries` to the bank named `bank`, creating it (with `source`) if it is new.

        One transaction: all of the new entries or, on any error, none.
        """
        if not bank.strip():
            raise StoreError("a bank needs a name; pass --name")
        now = datetime.now(UTC)
        added = repeated = 0
        with self._database.transaction("importing a hash bank", write_first=True) as session:
            bank_id = session.scalar(select(MediaBankRow.id).where(MediaBankRow.name == bank))
            if bank_id is None:
                bank_id = uuid.uuid4().hex
                session.execute(
                    insert(MediaBankRow),
                    [
                        {
                            "id": bank_id,
                            "name": bank,
                            "source": source,
                            "created_at": now,
                            "schema_version": BANK_SCHEMA_VERSION,
                        }
                    ],
                )
            held: set[tuple[str, str]] = {
                (kind, value)
                for kind, value in session.execute(
                    select(MediaHashRow.kind, MediaHashRow.value).where(
                        MediaHashRow.bank_id == bank_id
                    )
                )
            }
            fresh = iter(entries)
            while chunk := list(islice(fresh, BATCH_ROWS)):
                rows = []
                for entry in chunk:
                    if (entry.kind, entry.value) in held:
                        repeated += 1
                        continue
                    held.add((entry.kind, entry.value))
                    rows.append(
                        {
                            "id": uuid.uuid4().hex,
                            "bank_id": bank_id,
                            "kind": entry.kind,
                            "value": entry.value,
                            "quality": entry.quality,
                            "added_at": now,
                            "disabled_at": None,
                        }
                    )
                if rows:
                    session.execute(insert(MediaHashRow), rows)
                    added += len(rows)
        return ImportCount(added=added, repeated=repeated)

    def disable(self, bank: str, kind: HashKind, value: str) -> bool:
        """Tombstone one entry (it stays in the table, out of matching). False if none was active."""
        with self._database.transaction("disabling a bank entry") as session:
            bank_id = session.scalar(select(MediaBankRow.id).where(MediaBankRow.name == bank))
            if bank_id is None:
                raise StoreError(f"no hash bank named '{bank}'; see `safestack media bank list`")
            result = session.execute(
                update(MediaHashRow)
                .where(
                    MediaHashRow.bank_id == bank_id,
                    MediaHashRow.kind == kind,
                    MediaHashRow.value == value.lower(),
                    MediaHashRow.disabled_at.is_(None),
                )
                .values(disabled_at=datetime.now(UTC))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def banks(self) -> list[StoredBank]:
        """Every bank, by name, with its counts of active and disabled entries."""
        disabled = func.count(MediaHashRow.disabled_at)
        query = (
            select(MediaBankRow, func.count(MediaHashRow.id) - disabled, disabled)
            .outerjoin(MediaHashRow, MediaHashRow.bank_id == MediaBankRow.id)
            .group_by(MediaBankRow.id)
            .order_by(MediaBankRow.name)
        )
        with self._database.transaction("listing hash banks") as session:
            return [
                StoredBank(
                    id=row.id,
                    name=row.name,
                    source=row.source,
                    created_at=row.created_at,
                    active=active,
                    disabled=n_disabled,
                )
                for row, active, n_disabled in session.execute(query)
            ]

    def active(self, banks: Iterable[str] | None = None) -> Iterator[ActiveHash]:
        """The entries that are not disabled, of every bank or only of those named."""
        query = (
            select(
                MediaHashRow.id,
                MediaBankRow.name,
                MediaHashRow.kind,
                MediaHashRow.value,
                MediaHashRow.quality,
            )
            .join(MediaBankRow, MediaHashRow.bank_id == MediaBankRow.id)
            .where(MediaHashRow.disabled_at.is_(None))
        )
        if banks is not None:
            names = list(banks)
            known = {bank.name for bank in self.banks()}
            if missing := sorted(set(names) - known):
                raise StoreError(
                    f"no hash bank named {', '.join(repr(m) for m in missing)}; "
                    "see `safestack media bank list`"
                )
            query = query.where(MediaBankRow.name.in_(names))
        with self._database.connect() as connection:
            result = connection.execution_options(yield_per=10_000).execute(query)
            for row_id, bank, kind, value, quality in result:
                yield ActiveHash(id=row_id, bank=bank, kind=kind, value=value, quality=quality)
