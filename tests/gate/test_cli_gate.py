"""`safestack gate` bad input: each a one-line error naming the item, exit 2 (check/verify: 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from safestack.cli.main import app


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["gate", *args],
        env={"SAFESTACK_DB_URL": f"sqlite:///{tmp_path}/c.db", "COLUMNS": "200"},
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["assess", "nobody"], "model 'nobody' has no registered version"),
        (["assess", "m", "--version", "9"], "model version 'm@9' is not registered"),
        (["assess", "m", "--framework", "nope.yaml"], "nope.yaml: framework file not found"),
        (
            ["model", "add", "m", "--version", "1", "--pre", "a", "--post", "a"],
            "the pre- and post-mitigation targets must differ",
        ),
        (
            [
                "model",
                "add",
                "m",
                "--version",
                "1",
                "--pre",
                "a",
                "--post",
                "b",
                "--built",
                "yesterday",
            ],
            "--built must be an ISO 8601 time",
        ),
        (
            ["evidence", "add-run", "m", "missing-run", "--version", "1"],
            "no stored red-team run 'missing-run'",
        ),
        (
            ["evidence", "import", "m", "nofile.json", "--stage", "pre", "--version", "1"],
            "nofile.json: evaluation result file not found",
        ),
        (
            [
                "evidence",
                "add-finding",
                "m",
                "--version",
                "1",
                "--category",
                "bio",
                "--severity",
                "6",
                "--accepted",
                "--summary",
                "s",
                "--author",
                "x",
            ],
            "finding category 'bio' is not a policy category",
        ),
        (
            [
                "evidence",
                "add-finding",
                "m",
                "--version",
                "1",
                "--category",
                "cbrn",
                "--severity",
                "9",
                "--accepted",
                "--summary",
                "s",
                "--author",
                "x",
            ],
            "finding severity: Input should be less than or equal to 7",
        ),
        (
            ["keys", "create", "ana", "--role", "ceo", "--out", "k"],
            "role must be one of advisory, leadership, board",
        ),
        (
            [
                "review",
                "m",
                "--version",
                "1",
                "--key",
                "missing.key",
                "--recommend",
                "deploy",
                "--reason",
                "r",
            ],
            "missing.key: key file not found",
        ),
        (["verify", "--log", "nolog.jsonl"], "nolog.jsonl: file not found"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    if args[0] in ("evidence", "review"):
        assert (
            run(tmp_path, "model", "add", "m", "--version", "1", "--pre", "a", "--post", "b")[0]
            == 0
        )
    code, out = run(tmp_path, *args)
    assert code == 2, out
    assert out.startswith("error: ") and message in out
    assert "Traceback" not in out


def test_bad_imports_name_the_file_and_field(tmp_path: Path) -> None:
    assert run(tmp_path, "model", "add", "m", "--version", "1", "--pre", "a", "--post", "b")[0] == 0
    bad = tmp_path / "bad.json"
    for content, message in (
        ("{not json", "bad.json: not JSON"),
        (
            '{"task": "t", "created": "2026-01-01"}',
            "bad.json: JSON result: required field 'metrics' is missing",
        ),
        (
            '{"task": "t", "created": "2026-01-01", "metrics": {"acc": "high"}}',
            "metrics.acc.value must be a number",
        ),
        (
            '{"eval": {"task": "t", "created": "2026-01-01"}, "status": "error"}',
            "bad.json: Inspect log: status is 'error'",
        ),
        (
            '{"eval": {"task": "t", "created": "2026-01-01"}, "status": "success", "results": {"scores": [{"name": "s"}]}}',
            "results.scores[0].metrics is missing",
        ),
    ):
        bad.write_text(content)
        code, out = run(tmp_path, "evidence", "import", "m", str(bad), "--stage", "pre")
        assert code == 2 and message in out, out
    code, out = run(tmp_path, "evidence", "import", "m", str(bad), "--stage", "middle")
    assert code == 2 and "stage must be 'pre' or 'post'" in out


def test_an_inspect_log_is_imported_with_its_interval(tmp_path: Path) -> None:
    import json

    assert (
        run(
            tmp_path,
            "model",
            "add",
            "m",
            "--version",
            "1",
            "--pre",
            "a",
            "--post",
            "b",
            "--built",
            "2025-01-01T00:00:00+00:00",
        )[0]
        == 0
    )
    log = {
        "version": 2,
        "status": "success",
        "eval": {
            "task": "inspect_evals/autonomy",
            "model": "openai/x",
            "created": "2026-02-01T10:00:00+00:00",
            "dataset": {"name": "autonomy-tasks"},
        },
        "results": {
            "total_samples": 100,
            "completed_samples": 100,
            "scores": [
                {
                    "name": "match",
                    "scorer": "match",
                    "metrics": {
                        "accuracy": {"name": "accuracy", "value": 0.25},
                        "stderr": {"name": "stderr", "value": 0.05},
                    },
                }
            ],
        },
    }
    path = tmp_path / "log.json"
    path.write_text(json.dumps(log))
    code, out = run(tmp_path, "evidence", "import", "m", str(path), "--stage", "pre")
    assert code == 0, out
    from safestack.store import Store

    with Store.open(f"sqlite:///{tmp_path}/c.db") as store:
        item = store.gate.evidence("m@1")[0]
    score = item.payload["scores"][0]
    assert item.kind == "inspect-log" and item.payload["task"] == "autonomy"
    assert score["metric"] == "match/accuracy" and score["value"] == 0.25
    assert score["low"] == pytest.approx(0.25 - 1.959964 * 0.05) and score["high"] == pytest.approx(
        0.25 + 1.959964 * 0.05
    )


def test_validate_and_frameworks(tmp_path: Path) -> None:
    code, out = run(tmp_path, "frameworks")
    assert code == 0 and "pf-beta-2023" in out and "fsf-ccl" in out
    bad = tmp_path / "f.yaml"
    bad.write_text("id: x\n")
    code, out = run(tmp_path, "validate", str(bad))
    assert code == 2 and f"{bad}" in out and "required field is missing" in out


def test_verify_names_a_tampered_exported_line(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"seq": 1}\n')
    signers = tmp_path / "s.json"
    signers.write_text("[]")
    code, out = run(tmp_path, "verify", "--log", str(log), "--signers", str(signers))
    assert code == 2 and f"{log}:1: not a decision log entry" in out


def test_sign_refuses_a_missing_file_an_edited_entry_and_someone_elses_key(
    tmp_path: Path,
) -> None:
    from gate_harness import demo_evidence

    from safestack.gate.decisions import create_key, prepare_entry
    from safestack.gate.framework import load_framework
    from safestack.gate.scorecard import assess_model
    from safestack.store import Store

    with Store.open(f"sqlite:///{tmp_path}/c.db") as store:
        demo_evidence(store, tmp_path)
        ana = create_key(store, "ana", "advisory", tmp_path / "ana.key")
        create_key(store, "lee", "leadership", tmp_path / "lee.key")
        card = assess_model(store, load_framework("pf-beta-2023"), "model", "1")
        entry = prepare_entry(
            store, ana, kind="review", scorecard=card, reasons="ok", recommendation="deploy"
        )
    good = tmp_path / "entry.json"
    good.write_text(entry.model_dump_json(), "utf-8")
    code, out = run(
        tmp_path, "sign", str(tmp_path / "none.json"), "--key", str(tmp_path / "ana.key")
    )
    assert code == 2 and "none.json: file not found" in out
    code, out = run(tmp_path, "sign", str(good), "--key", str(tmp_path / "lee.key"))
    assert code == 2 and "this key is not ana's" in out
    edited = tmp_path / "edited.json"
    edited.write_text(entry.model_copy(update={"reasons": "changed"}).model_dump_json(), "utf-8")
    code, out = run(tmp_path, "sign", str(edited), "--key", str(tmp_path / "ana.key"))
    assert code == 2 and "its content does not match its hash" in out
    junk = tmp_path / "junk.json"
    junk.write_text('{"kind": "review"}', "utf-8")
    code, out = run(tmp_path, "sign", str(junk), "--key", str(tmp_path / "ana.key"))
    assert code == 2 and "junk.json: not a prepared decision log entry" in out
    code, out = run(tmp_path, "sign", str(good), "--key", str(tmp_path / "ana.key"))
    assert code == 0 and "signing entry 1 (review by ana): deploy on model@1" in out
    assert len(out.strip().splitlines()[-1]) == 88  # base64 of a 64-byte Ed25519 signature
