"""Judgements in the store: what is written, what comes back, and what is never kept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, event, text

from safestack.errors import StoreError
from safestack.records import Verdict
from safestack.store import Store, StoredJudgement


def test_a_verdict_with_findings_round_trips(store: Store, blocked: Verdict) -> None:
    before = datetime.now(UTC)
    judgement_id = store.judgements.record(blocked, "you vermin", kind="prompt", run_id="run-1")

    [stored] = store.judgements.find()
    assert isinstance(stored, StoredJudgement)
    assert stored.id == judgement_id
    assert stored.verdict == blocked
    assert stored.verdict.findings[0].span is not None
    assert stored.run_id == "run-1"
    assert stored.kind == "prompt"
    assert stored.schema_version == blocked.schema_version
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stored.created_at <= datetime.now(UTC)


def test_the_row_holds_the_columns_reports_filter_on(store: Store, blocked: Verdict) -> None:
    judgement_id = store.judgements.record(blocked, "you vermin", kind="response", run_id="r")
    with store.engine.connect() as connection:
        row = (
            connection.execute(
                text(
                    "SELECT flagged, action, severity, categories, policy, kind "
                    "FROM judgements WHERE id = :id"
                ),
                {"id": judgement_id},
            )
            .mappings()
            .one()
        )
    assert bool(row["flagged"]) is True
    assert row["action"] == "block"
    assert row["severity"] == 6
    categories = row["categories"]  # SQLite hands JSON back as text, PostgreSQL as a list
    assert categories in (["hate"], '["hate"]')
    assert row["policy"] == "default@1"
    assert row["kind"] == "response"


def test_text_is_not_kept_unless_asked_but_its_digest_is(store: Store, blocked: Verdict) -> None:
    secret = "my phone number is 555 0100"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    dropped = store.judgements.record(blocked, secret, kind="prompt", run_id="r")
    kept = store.judgements.record(blocked, secret, kind="prompt", run_id="r", keep_text=True)

    by_id = {j.id: j for j in store.judgements.find(run_id="r")}
    assert by_id[dropped].input_text is None
    assert by_id[dropped].input_digest == digest
    assert by_id[kept].input_text == secret
    assert by_id[kept].input_digest == digest
    with store.engine.connect() as connection:
        texts = connection.execute(text("SELECT input_text FROM judgements")).scalars().all()
    assert sorted(texts, key=str) == sorted([None, secret], key=str)


def test_filter_by_run_and_flagged(store: Store, blocked: Verdict, allowed: Verdict) -> None:
    a1 = store.judgements.record(blocked, "a1", kind="prompt", run_id="a")
    a2 = store.judgements.record(allowed, "a2", kind="prompt", run_id="a")
    a3 = store.judgements.record(blocked, "a3", kind="prompt", run_id="a")
    b1 = store.judgements.record(blocked, "b1", kind="prompt", run_id="b")

    assert {j.id for j in store.judgements.find(run_id="a")} == {a1, a2, a3}
    assert {j.id for j in store.judgements.find(run_id="a", flagged=True)} == {a1, a3}
    assert [j.id for j in store.judgements.find(flagged=False)] == [a2]
    assert {j.id for j in store.judgements.find(flagged=True)} == {a1, a3, b1}
    assert store.judgements.find(run_id="nope") == []
    assert len(store.judgements.find(limit=2)) == 2
    assert store.judgements.count() == 4
    assert store.judgements.count(run_id="a") == 3
    assert store.judgements.count(run_id="a", flagged=True) == 2
    assert store.judgements.count(run_id="nope") == 0


def test_a_batch_of_1000_is_one_transaction(store: Store, blocked: Verdict) -> None:
    commits: list[Connection] = []
    event.listen(store.engine, "commit", commits.append)
    items = [(blocked, f"line {n}") for n in range(1000)]

    ids = store.judgements.record_many(items, kind="prompt", run_id="file-run")

    assert len(commits) == 1
    assert len(set(ids)) == 1000
    assert store.judgements.count(run_id="file-run") == 1000
    assert store.judgements.count(run_id="file-run", flagged=True) == 1000
    assert len(store.judgements.find(run_id="file-run", limit=None)) == 1000


def test_a_batch_that_fails_midway_stores_nothing(store: Store, blocked: Verdict) -> None:
    def items() -> Iterator[tuple[Verdict, str]]:
        for n in range(700):  # past the first INSERT of 500 rows
            yield blocked, f"line {n}"
        raise OSError("the input file went away")

    with pytest.raises(OSError, match="went away"):
        store.judgements.record_many(items(), kind="prompt", run_id="broken")
    assert store.judgements.count(run_id="broken") == 0


def test_a_write_the_database_rejects_is_a_store_error(store: Store, blocked: Verdict) -> None:
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE judgements")
    with pytest.raises(StoreError, match="recording a judgement failed"):
        store.judgements.record(blocked, "x", kind="prompt", run_id="r")


def test_kind_must_be_prompt_or_response(store: Store, blocked: Verdict) -> None:
    with pytest.raises(ValueError, match="kind must be"):
        store.judgements.record(blocked, "x", kind="email", run_id="r")  # type: ignore[arg-type]
    assert store.judgements.count() == 0
