"""store.models: the break-fix lineage (base → round 1 → round 2), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from safestack.errors import StoreError
from safestack.store import Store, StoredModel

BASE = "gemma3-270m-q4_k_m@a5fd3b62230a"
SET_1, SET_2 = "a" * 64, "b" * 64


def fine_tune(
    store: Store, model_id: str, parent: str, version: str, **extra: object
) -> StoredModel:
    return store.models.record(
        model_id,
        name=model_id,
        kind="fine-tune",
        parent=parent,
        training_set=version[:16],
        training_set_version=version,
        config_hash="c" * 64,
        config={"lora": {"r": 16}},
        metrics={"sft": {"train_loss": 1.5}},
        path=f"/models/{model_id}/merged",
        target={"kind": "transformers", "options": {"path": f"/models/{model_id}/merged"}},
        **extra,  # type: ignore[arg-type]
    )


def test_a_lineage_is_read_back_base_first_with_sets_configs_and_metrics(store: Store) -> None:
    store.models.record(
        BASE, name="gemma", kind="base", path="/cache/gemma.gguf", target={"kind": "gguf"}
    )
    fine_tune(store, "ft-round1", BASE, SET_1)
    fine_tune(store, "ft-round2", "ft-round1", SET_2)
    chain = store.models.lineage("ft-round2")
    assert [(m.id, m.kind, m.parent) for m in chain] == [
        (BASE, "base", None),
        ("ft-round1", "fine-tune", BASE),
        ("ft-round2", "fine-tune", "ft-round1"),
    ]
    assert chain[2].training_set_version == SET_2 and chain[2].config_hash == "c" * 64
    assert chain[1].metrics == {"sft": {"train_loss": 1.5}}
    assert [m.id for m in store.models.all()] == [BASE, "ft-round1", "ft-round2"]


def test_metrics_measured_later_are_merged_in(store: Store) -> None:
    fine_tune(store, "ft-round1", BASE, SET_1)
    updated = store.models.add_metrics("ft-round1", {"redteam": {"asr": 0.12}})
    assert updated.metrics == {"sft": {"train_loss": 1.5}, "redteam": {"asr": 0.12}}
    assert store.models.get("ft-round1") == updated
    with pytest.raises(StoreError, match="no model 'ft-nope' in the lineage"):
        store.models.add_metrics("ft-nope", {})


def test_recording_again_updates_where_it_is_but_never_its_history(store: Store) -> None:
    first = fine_tune(store, "ft-round1", BASE, SET_1)
    moved = store.models.record(
        "ft-round1",
        name="round1",
        kind="fine-tune",
        parent=BASE,
        training_set=SET_1[:16],
        training_set_version=SET_1,
        config_hash="c" * 64,
        path="/elsewhere/merged",
        target=first.target,
    )
    assert moved.path == "/elsewhere/merged" and moved.created_at == first.created_at
    assert moved.metrics == first.metrics  # nothing new measured: the old metrics stay
    with pytest.raises(StoreError, match="already recorded with another history"):
        fine_tune(store, "ft-round1", BASE, SET_2)
    with pytest.raises(StoreError, match="a fine-tune needs its parent and training set"):
        store.models.record("ft-x", name="x", kind="fine-tune", path="/x", target={})


def test_a_model_is_found_by_a_prefix_of_its_id_unless_ambiguous(store: Store) -> None:
    fine_tune(store, "ft-0123456789abcdef", BASE, SET_1)
    fine_tune(store, "ft-0123456700000000", BASE, SET_2)
    with pytest.raises(StoreError, match="is ambiguous"):
        store.models.get("ft-01234567")
    found = store.models.get("ft-012345678")
    assert found is not None and found.id == "ft-0123456789abcdef"
    assert store.models.get("ft-0") is None  # too short to be a prefix
    assert store.models.lineage("ft-0123456789abcdef")[0].id == "ft-0123456789abcdef"
    with pytest.raises(StoreError, match="no model 'ft-missing'"):
        store.models.lineage("ft-missing")
