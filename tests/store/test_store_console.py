"""store.console: engagements, turns in a tree, findings with optimistic concurrency and their
edit history, reviews; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from safestack.errors import InputError
from safestack.store import Store
from safestack.store.console import EditConflict, ExpertFinding


def engagement_and_answer(store: Store) -> tuple[str, str, str]:
    engagement = store.console.create_engagement(
        name="e",
        description="",
        targets=["alpha"],
        policy="default@1",
        categories=["violence"],
        languages=["en"],
        starts_on=datetime(2026, 12, 1, tzinfo=UTC),
        ends_on=None,
        experts=["ssk_00000001"],
        created_by="ssk_admin000",
    )
    conversation = store.console.create_conversation(engagement.id, "ssk_00000001", "t", "sys")
    question = store.console.add_turn(conversation.id, None, "user", "q\x00uestion")
    answer = store.console.add_turn(
        conversation.id, question.id, "assistant", "answer", target="alpha", latency_ms=3.0
    )
    return engagement.id, conversation.id, answer.id


def flagged(store: Store) -> ExpertFinding:
    engagement, _, answer = engagement_and_answer(store)
    return store.console.create_finding(
        engagement_id=engagement,
        turn_id=answer,
        expert="ssk_00000001",
        target="alpha",
        category="violence",
        severity=4,
        technique="role-play",
        language="en",
        note="",
        ideal_answer="",
        judge={},
    )


def test_turns_form_a_tree_within_one_conversation(store: Store) -> None:
    engagement, conversation, answer = engagement_and_answer(store)
    branch = store.console.add_turn(conversation, None, "user", "another start")
    turns = store.console.turns(conversation)
    assert [t.parent_id is None for t in turns] == [True, False, True]
    assert turns[1].id == answer and turns[2].id == branch.id
    second = store.console.create_conversation(engagement, "ssk_00000001", "t2", "")
    with pytest.raises(InputError, match="is not in conversation"):
        store.console.add_turn(second.id, answer, "user", "a parent from elsewhere")


def test_an_edit_from_a_stale_version_conflicts_and_changes_nothing(store: Store) -> None:
    item = flagged(store)
    edited = store.console.edit_finding(
        item.id, 1, {"severity": 6}, editor="ssk_00000001", reason="worse"
    )
    assert edited.version == 2 and edited.severity == 6
    with pytest.raises(EditConflict) as conflict:
        store.console.edit_finding(item.id, 1, {"severity": 1}, editor="ssk_lead0000", reason="x")
    assert conflict.value.current.severity == 6 and conflict.value.attempted == {"severity": 1}
    assert "version 1" in str(conflict.value) and "now version 2" in str(conflict.value)
    edits = store.console.edits(item.id)
    assert [(e.version, e.before["severity"], e.after["severity"]) for e in edits] == [(2, 4, 6)]
    with pytest.raises(InputError, match="reason"):
        store.console.edit_finding(item.id, 2, {"severity": 1}, editor="x", reason=" ")
    with pytest.raises(InputError, match="no editable field"):
        store.console.edit_finding(item.id, 2, {"expert": "me"}, editor="x", reason="r")


def test_concurrent_edits_of_one_version_save_exactly_one(store: Store) -> None:
    item = flagged(store)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def edit(severity: int) -> None:
        barrier.wait()
        try:
            store.console.edit_finding(
                item.id, 1, {"severity": severity}, editor=f"ssk_0000000{severity}", reason="r"
            )
            outcomes.append("saved")
        except EditConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(s,)) for s in (1, 2, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "saved"]
    stored = store.console.finding(item.id)
    assert stored is not None and stored.version == 2
    assert len(store.console.edits(item.id)) == 1


def test_a_review_sets_the_status_and_keeps_the_reviewers_values(store: Store) -> None:
    item = flagged(store)
    review, updated = store.console.review(
        item, "ssk_lead0000", "adjust", "milder", category="violence", severity=2
    )
    assert (review.category, review.severity, updated.status) == ("violence", 2, "adjusted")
    assert updated.severity == 4  # the expert's own value stays beside the reviewer's
    assert store.console.reviews(item.engagement_id) == [review]
    assert store.console.edits(item.id)[0].reason == "review: adjust: milder"
    with pytest.raises(InputError, match="reason"):
        store.console.review(updated, "ssk_lead0000", "agree", "")
