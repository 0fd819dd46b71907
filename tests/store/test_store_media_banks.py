"""Hash banks in the store: import, repeats skipped, tombstones kept, active entries by bank."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from safestack.errors import StoreError
from safestack.store import BankEntry, Store
from safestack.store.tables import MediaHashRow

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_import_creates_the_bank_and_skips_repeats(store: Store) -> None:
    first = store.media_banks.add(
        "ncmec",
        [BankEntry(kind="pdq", value=A, quality=90), BankEntry(kind="md5", value="d" * 32)],
        source="ncmec-2026-12.csv",
    )
    assert (first.added, first.repeated) == (2, 0)
    again = store.media_banks.add(
        "ncmec",
        [
            BankEntry(kind="pdq", value=A),
            BankEntry(kind="pdq", value=B),
            BankEntry(kind="pdq", value=B),
        ],
    )
    assert (again.added, again.repeated) == (1, 2)
    [bank] = store.media_banks.banks()
    assert (bank.name, bank.source, bank.active, bank.disabled) == (
        "ncmec",
        "ncmec-2026-12.csv",
        3,
        0,
    )


def test_the_same_hash_may_sit_in_two_banks(store: Store) -> None:
    store.media_banks.add("one", [BankEntry(kind="pdq", value=A)])
    store.media_banks.add("two", [BankEntry(kind="pdq", value=A)])
    assert sorted(e.bank for e in store.media_banks.active()) == ["one", "two"]
    assert [e.bank for e in store.media_banks.active(["two"])] == ["two"]


def test_disabled_entries_are_tombstones_not_deleted(store: Store) -> None:
    store.media_banks.add("tx", [BankEntry(kind="pdq", value=A), BankEntry(kind="pdq", value=C)])
    assert store.media_banks.disable("tx", "pdq", A.upper())
    assert not store.media_banks.disable("tx", "pdq", A)  # already disabled
    assert [e.value for e in store.media_banks.active()] == [C]
    [bank] = store.media_banks.banks()
    assert (bank.active, bank.disabled) == (1, 1)
    with store.transaction("counting") as session:
        assert session.scalar(select(func.count()).select_from(MediaHashRow)) == 2
    # Importing a disabled hash again does not bring it back: withdrawal is the bank's decision.
    assert store.media_banks.add("tx", [BankEntry(kind="pdq", value=A)]).repeated == 1
    assert [e.value for e in store.media_banks.active()] == [C]


def test_unknown_bank_names_are_clear_errors(store: Store) -> None:
    store.media_banks.add("known", [BankEntry(kind="pdq", value=A)])
    with pytest.raises(
        StoreError, match="no hash bank named 'nope'; see `safestack media bank list`"
    ):
        list(store.media_banks.active(["known", "nope"]))
    with pytest.raises(StoreError, match="no hash bank named 'nope'"):
        store.media_banks.disable("nope", "pdq", A)
    with pytest.raises(StoreError, match="a bank needs a name"):
        store.media_banks.add(" ", [])


def test_banks_list_empty_bank_and_counts(store: Store) -> None:
    store.media_banks.add("empty", [])
    [bank] = store.media_banks.banks()
    assert (bank.name, bank.active, bank.disabled) == ("empty", 0, 0)
