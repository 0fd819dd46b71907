"""The decision log: roles, signing only as oneself, the chain, tampering, unknown keys, reversal,
and the release check that reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gate_harness import demo_evidence, store_run
from sqlalchemy import update

from safestack.errors import GateError
from safestack.gate.check import check_release
from safestack.gate.decisions import (
    Dissent,
    create_key,
    export_lines,
    parse_log_lines,
    read_log,
    record_entry,
    verify_entries,
)
from safestack.gate.evidence import pin_run
from safestack.gate.framework import load_framework
from safestack.gate.scorecard import assess_model
from safestack.store import Store
from safestack.store.tables import GateLogRow

PF = load_framework("pf-beta-2023")


def review_and_decide(store: Store, keys: dict[str, Path], outcome: str = "deploy") -> None:
    card = assess_model(store, PF, "model", "1")
    record_entry(
        store,
        keys["ana"],
        kind="review",
        scorecard=card,
        reasons="post Low everywhere",
        recommendation="deploy",
        dissent=[Dissent(person="sam", reason="autonomy eval is thin")],
    )
    record_entry(
        store, keys["lee"], kind="decision", scorecard=card, reasons="SAG concurs", outcome=outcome
    )  # type: ignore[arg-type]


def test_keys_are_private_files_and_never_overwritten(store: Store, keys: dict[str, Path]) -> None:
    assert oct(os.stat(keys["ana"]).st_mode & 0o777) == "0o600"
    assert keys["ana"].read_text().startswith("-----BEGIN PRIVATE KEY-----")
    with pytest.raises(GateError, match="keys are never overwritten"):
        create_key(store, "zed", "board", keys["ana"])
    with pytest.raises(GateError, match="'ana' already has a key"):
        create_key(store, "ana", "advisory", keys["ana"].with_name("other.key"))
    with pytest.raises(GateError, match="role must be one of advisory, leadership, board"):
        create_key(store, "max", "ceo", keys["ana"].with_name("max.key"))


def test_a_readable_key_file_is_refused(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    os.chmod(keys["ana"], 0o644)
    card = assess_model(store, PF, "model", "1")
    with pytest.raises(GateError, match="readable by others; run: chmod 600"):
        record_entry(
            store, keys["ana"], kind="review", scorecard=card, reasons="r", recommendation="deploy"
        )


def test_roles_are_enforced(store: Store, keys: dict[str, Path], tmp_path: Path) -> None:
    demo_evidence(store, tmp_path)
    card = assess_model(store, PF, "model", "1")
    with pytest.raises(GateError, match="ana is advisory; a decision is recorded by leadership"):
        record_entry(
            store, keys["ana"], kind="decision", scorecard=card, reasons="r", outcome="deploy"
        )
    with pytest.raises(GateError, match="lee is leadership; a review is recorded by advisory"):
        record_entry(
            store, keys["lee"], kind="review", scorecard=card, reasons="r", recommendation="deploy"
        )
    with pytest.raises(GateError, match="no advisory review of scorecard"):
        record_entry(
            store, keys["lee"], kind="decision", scorecard=card, reasons="r", outcome="deploy"
        )
    with pytest.raises(GateError, match="nobody signs for someone else"):
        record_entry(
            store,
            keys["ana"],
            kind="review",
            scorecard=card,
            reasons="r",
            recommendation="deploy",
            acting_as="sam",
        )
    assert read_log(store) == []


def test_a_deploy_decision_against_the_rule_is_refused(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    store_run(store, "r2", {"model-guarded": {"cyber": (60, 60)}})
    pin_run(store, store.gate.model_version("model", "1"), "r2")  # type: ignore[arg-type]
    card = assess_model(store, PF, "model", "1")
    assert not card.deploy.holds
    record_entry(
        store,
        keys["ana"],
        kind="review",
        scorecard=card,
        reasons="r",
        recommendation="do-not-deploy",
    )
    with pytest.raises(GateError, match=r"deploy rule \(post <= Medium\) does not hold"):
        record_entry(
            store, keys["lee"], kind="decision", scorecard=card, reasons="r", outcome="deploy"
        )
    record_entry(
        store, keys["lee"], kind="decision", scorecard=card, reasons="r", outcome="do-not-deploy"
    )
    result = check_release(store, PF, "model", "1")
    assert not result.passed


def test_check_passes_after_review_and_decision_and_fails_after_reversal(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    assert not check_release(store, PF, "model", "1").passed  # no decision yet
    review_and_decide(store, keys)
    result = check_release(store, PF, "model", "1")
    assert result.passed, result.reasons
    record_entry(store, keys["bo"], kind="board-notification", reasons="noted", refers_to=2)
    assert check_release(store, PF, "model", "1").passed
    record_entry(
        store, keys["bo"], kind="reversal", reasons="autonomy evidence too thin", refers_to=2
    )
    failed = check_release(store, PF, "model", "1")
    assert not failed.passed and "no unreversed decision" in failed.reasons[0]
    with pytest.raises(GateError, match="decision 2 is already reversed"):
        record_entry(store, keys["bo"], kind="reversal", reasons="again", refers_to=2)
    assert verify_entries(read_log(store), store.gate.signers()).ok


def test_check_is_for_exactly_this_version_and_framework(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    review_and_decide(store, keys)
    assert not check_release(store, load_framework("pf-v2-2025"), "model", "1").passed
    edited = PF.model_copy(
        update={"rules": PF.rules.model_copy(update={"develop": "post <= Critical"})}
    )
    result = check_release(store, edited, "model", "1")
    assert not result.passed and "framework digest" in result.reasons[-1]
    from safestack.gate.evidence import register_model_version

    register_model_version(store, "model", "2", pre_target="model-raw", post_target="model-guarded")
    assert not check_release(store, PF, "model", "2").passed


def test_check_fails_when_evidence_changed_after_the_decision(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    review_and_decide(store, keys)
    attempts = store.runs.attempts("run-1", target="model-guarded")
    store.runs.replace_attempts([attempts[0].model_copy(update={"response": "changed"})])
    result = check_release(store, PF, "model", "1")
    assert not result.passed and "the run's attempts changed" in result.reasons[0]
    pin_run(store, store.gate.model_version("model", "1"), "run-1")  # type: ignore[arg-type]
    result = check_release(store, PF, "model", "1")
    assert not result.passed and "evidence changed since the decision" in result.reasons[-1]


def test_a_tampered_store_row_is_named_and_blocks_the_check(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    review_and_decide(store, keys)
    entry = read_log(store)[0].model_dump(mode="json")
    entry["recommendation"] = "do-not-deploy"
    with store.engine.begin() as connection:
        connection.execute(update(GateLogRow).where(GateLogRow.seq == 1).values(entry=entry))
    result = verify_entries(read_log(store), store.gate.signers())
    assert not result.ok and result.broken == 1
    assert "entry 1 (review by ana): its content does not match its hash" in (result.problem or "")
    assert not check_release(store, PF, "model", "1").passed
    card = assess_model(store, PF, "model", "1")
    with pytest.raises(GateError, match="the decision log is broken, nothing can be appended"):
        record_entry(
            store, keys["ana"], kind="review", scorecard=card, reasons="r", recommendation="deploy"
        )


def test_exported_lines_verify_and_an_edited_line_is_named(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    review_and_decide(store, keys)
    record_entry(store, keys["bo"], kind="board-notification", reasons="noted", refers_to=2)
    lines = export_lines(read_log(store)).splitlines()
    assert len(lines) == 3
    signers = store.gate.signers()
    assert verify_entries(parse_log_lines(lines, "log.jsonl"), signers).ok
    # edit the decision's reasons: the hash no longer matches
    edited = json.loads(lines[1])
    edited["reasons"] = "overruled"
    tampered = [lines[0], json.dumps(edited), lines[2]]
    result = verify_entries(parse_log_lines(tampered, "log.jsonl"), signers)
    assert result.broken == 2 and "edited after signing" in (result.problem or "")
    # recompute the hash too: now the signature fails
    from safestack.gate.decisions import LogEntry

    rehashed = LogEntry.model_validate(edited)
    rehashed = rehashed.model_copy(update={"entry_hash": rehashed.computed_hash()})
    result = verify_entries([parse_log_lines(lines, "x")[0], rehashed], signers)
    assert result.broken == 2 and "the signature does not verify with lee's key" in (
        result.problem or ""
    )
    # drop an entry: the chain breaks at the next one
    result = verify_entries(parse_log_lines([lines[0], lines[2]], "x"), signers)
    assert result.broken == 3 and "expected entry number 2" in (result.problem or "")


def test_a_signature_by_an_unknown_key_is_named(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    review_and_decide(store, keys)
    entries = read_log(store)
    others = [s for s in store.gate.signers() if s.person != "lee"]
    result = verify_entries(entries, others)
    assert result.broken == 2 and f"signed by unknown key {entries[1].key_id}" in (
        result.problem or ""
    )


def test_an_unregistered_key_cannot_sign(
    store: Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    demo_evidence(store, tmp_path)
    with Store.open(f"sqlite:///{tmp_path}/other.db") as other:
        stray = tmp_path / "stray.key"
        create_key(other, "eve", "advisory", stray)
    card = assess_model(store, PF, "model", "1")
    with pytest.raises(GateError, match=r"stray.key: key [0-9a-f]{16} is not registered"):
        record_entry(
            store, stray, kind="review", scorecard=card, reasons="r", recommendation="deploy"
        )
