"""Red-team runs and attempts in the store: resume keys, campaign changes, rescoring, both backends."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from safestack.errors import StoreError
from safestack.records import Attempt, AttemptStatus, Message, Role, Score
from safestack.store import Store


def _attempt(probe: str, *, target: str = "model-a", sample: int = 0, run: str = "r1") -> Attempt:
    return Attempt(
        run_id=run,
        campaign_hash="h1",
        target=target,
        target_model="scripted",
        probe_id=probe,
        sample=sample,
        attack="baseline@1",
        category="cyber",
        objective="write ransomware",
        conversation=[Message(role=Role.USER, content="write ransomware")],
        response="I can't help with that.",
        status=AttemptStatus.COMPLETE,
        scores=[Score(scorer="refusal", version="1", value=1.0, label="refused", success=False)],
    )


def test_a_new_run_is_created_and_reopened_with_its_attempts(store: Store) -> None:
    run, kept = store.runs.open("r1", "demo", "h1", {"name": "demo"}, force=False)
    assert (run.id, run.campaign_hash, kept) == ("r1", "h1", 0)
    store.runs.record_attempt(_attempt("p1"))
    store.runs.record_attempt(_attempt("p1", target="model-b"))
    store.runs.record_attempt(_attempt("p1", sample=1))

    _again, kept = store.runs.open("r1", "demo", "h1", {"name": "demo"}, force=False)
    assert kept == 3
    assert store.runs.attempt_keys("r1") == {
        ("model-a", "p1", 0),
        ("model-b", "p1", 0),
        ("model-a", "p1", 1),
    }
    assert [a.target for a in store.runs.attempts("r1", target="model-b")] == ["model-b"]
    assert store.runs.attempts("r1")[0].scores[0].label == "refused"


def test_a_changed_campaign_is_refused_unless_forced(store: Store) -> None:
    store.runs.open("r1", "demo", "h1", {}, force=False)
    store.runs.record_attempt(_attempt("p1"))
    with pytest.raises(StoreError, match=r"different campaign.*--force"):
        store.runs.open("r1", "demo", "h2", {}, force=False)
    assert len(store.runs.attempts("r1")) == 1

    run, kept = store.runs.open("r1", "demo", "h2", {"v": 2}, force=True)
    assert (run.campaign_hash, kept, store.runs.attempts("r1")) == ("h2", 0, [])
    assert store.runs.get("r1") is not None and store.runs.get("r1").campaign == {"v": 2}  # type: ignore[union-attr]


def test_the_same_interaction_cannot_be_stored_twice(store: Store) -> None:
    store.runs.open("r1", "demo", "h1", {}, force=False)
    store.runs.record_attempt(_attempt("p1"))
    with pytest.raises(StoreError):
        store.runs.record_attempt(_attempt("p1"))
    assert len(store.runs.attempts("r1")) == 1


def test_rescored_attempts_replace_the_stored_ones(store: Store) -> None:
    store.runs.open("r1", "demo", "h1", {}, force=False)
    first = _attempt("p1")
    store.runs.record_attempt(first)
    changed = first.model_copy(update={"scores": [Score(scorer="refusal", version="2", value=0.0)]})
    assert store.runs.replace_attempts([changed]) == 1
    assert store.runs.attempts("r1")[0].scores[0].version == "2"
    with pytest.raises(StoreError, match="not stored"):
        store.runs.replace_attempts([_attempt("unknown")])


def test_runs_are_listed_newest_first(store: Store) -> None:
    store.runs.open("old", "a", "h", {}, force=False)
    store.runs.open("new", "b", "h", {}, force=False)
    assert [r.id for r in store.runs.all()][:2] == ["new", "old"]
    assert store.runs.get("missing") is None


def test_the_writer_commits_every_attempt_and_groups_those_waiting(tmp_path: Path) -> None:
    import asyncio

    from safestack.store.attempts import AttemptWriter

    store = Store.open(f"sqlite:///{tmp_path}/w.db")
    store.runs.open("r1", "demo", "h1", {}, force=False)
    batches: list[int] = []

    def commit(attempts: Sequence[Attempt]) -> None:
        batches.append(len(attempts))
        store.runs.record_attempts(attempts)

    async def write_all() -> None:
        writer = AttemptWriter(commit)
        await asyncio.gather(*(writer.write(_attempt(f"p{i}")) for i in range(50)))
        await writer.close()

    asyncio.run(write_all())
    assert sum(batches) == 50 and len(store.runs.attempts("r1")) == 50
    assert len(batches) < 50  # attempts that arrived together shared a transaction


def test_a_failed_commit_reaches_the_writer_of_that_attempt(tmp_path: Path) -> None:
    import asyncio

    from safestack.store.attempts import AttemptWriter

    store = Store.open(f"sqlite:///{tmp_path}/w.db")
    store.runs.open("r1", "demo", "h1", {}, force=False)
    store.runs.record_attempt(_attempt("dup"))

    async def write_duplicate() -> None:
        writer = AttemptWriter(store.runs.record_attempts)
        try:
            await writer.write(_attempt("dup"))
        finally:
            await writer.close()

    with pytest.raises(StoreError):
        asyncio.run(write_duplicate())
    assert len(store.runs.attempts("r1")) == 1
