"""Break-fix training sets in the store: one row per content hash, found by id or hash prefix."""

from __future__ import annotations

import pytest

from safestack.errors import StoreError
from safestack.store import Store

VERSION = "ab" * 32
COUNTS = {"sft": {"train": 3, "validation": 1}}


def record(store: Store, version: str = VERSION, path: str = "/data/one") -> object:
    return store.training_sets.record(
        version,
        runs=["r1", "r2"],
        policy="default@1",
        counts=COUNTS,
        path=path,
        manifest={"version": version, "counts": COUNTS},
    )


def test_a_set_is_stored_once_per_version_and_found_by_id_or_prefix(store: Store) -> None:
    first = store.training_sets.record(
        VERSION, runs=["r1"], policy="default@1", counts=COUNTS, path="/a", manifest={"k": 1}
    )
    assert (first.id, first.version, first.runs, first.counts) == (
        VERSION[:16],
        VERSION,
        ["r1"],
        COUNTS,
    )
    again = store.training_sets.record(
        VERSION, runs=["r1"], policy="default@1", counts=COUNTS, path="/b", manifest={"k": 1}
    )
    assert (again.id, again.created_at, again.path) == (first.id, first.created_at, "/b")
    assert len(store.training_sets.all()) == 1
    assert store.training_sets.get(first.id) == again
    assert store.training_sets.get(VERSION) == again
    assert store.training_sets.get(VERSION[:8]) == again
    assert store.training_sets.get("abab") is None  # too short to search by
    assert store.training_sets.get("cd" * 8) is None


def test_an_ambiguous_prefix_names_the_matches(store: Store) -> None:
    record(store, "abcd1234" + "0" * 56)
    record(store, "abcd1234" + "1" * 56)
    with pytest.raises(
        StoreError, match=r"'abcd1234' is ambiguous: abcd123400000000, abcd123411111111"
    ):
        store.training_sets.get("abcd1234")
    assert store.training_sets.get("abcd12340").version == "abcd1234" + "0" * 56  # type: ignore[union-attr]


def test_a_version_that_is_not_a_sha256_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="must be a sha256 hex digest"):
        record(store, "not-a-hash")
