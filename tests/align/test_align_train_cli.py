"""`safestack align train` and `align models` as a user runs them: a set named by its stored id,
the model recorded in the lineage, one line for bad input, and a job killed with SIGKILL that
continues from its last checkpoint with --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")
from align_harness import store_run
from train_harness import tiny_model, words, write_set
from typer.testing import CliRunner

from safestack.align import record_training_set
from safestack.align.output import WriteResult, read_manifest
from safestack.cli.main import app
from safestack.store import Store

FAST = [
    "--sft-steps", "2", "--preference-steps", "1", "--gradient-accumulation", "1",
    "--threads", "1", "--max-length", "64", "--max-answer-length", "32",
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    url = f"sqlite:///{tmp_path}/safestack.db"
    monkeypatch.setenv("SAFESTACK_DB_URL", url)
    monkeypatch.setenv("SAFESTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "240")  # tables on one line each
    with Store.open(url) as store:
        store_run(store)
        training_set = write_set(store, tmp_path / "set")
        manifest = read_manifest(training_set)
        assert manifest is not None
        record_training_set(
            store, WriteResult(manifest["version"], training_set, "written", None, manifest)
        )
    return {"set": training_set, "model": tiny_model(tmp_path / "tiny", words(training_set))}


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_train_records_the_model_and_models_lists_its_lineage(
    env: dict[str, Path], tmp_path: Path
) -> None:
    set_id = read_manifest(env["set"])["id"]  # type: ignore[index]
    out = tmp_path / "round1"
    result = invoke(
        "align", "train", set_id, "--model", str(env["model"]), "--out", str(out), *FAST
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    model_id, merged = result.stdout.split()  # type: ignore[attr-defined]
    assert merged == str(out / "merged") and model_id.startswith("ft-")
    assert "SFT: 2 steps" in result.stderr and "DPO: 1 steps" in result.stderr  # type: ignore[attr-defined]
    assert f"red-team target: {out / 'target.yaml'}" in result.stderr  # type: ignore[attr-defined]

    listed = invoke("align", "models", model_id)
    assert listed.exit_code == 0, listed.output  # type: ignore[attr-defined]
    rows = [line for line in listed.stdout.splitlines() if "tiny@" in line or "ft-" in line]  # type: ignore[attr-defined]
    assert rows[0].split("│")[1].strip().startswith("tiny@")  # the base first
    assert model_id in rows[1] and set_id in rows[1]


def test_bad_input_is_one_line_with_exit_code_2(env: dict[str, Path], tmp_path: Path) -> None:
    result = invoke("align", "train", "nope", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.stderr.strip() == (  # type: ignore[attr-defined]
        "error: training set 'nope': no such directory and no stored set with that id; "
        "safestack align sets lists them"
    )
    result = invoke(
        "align",
        "train",
        str(env["set"]),
        "--out",
        str(tmp_path / "o"),
        "--max-answer-length",
        "300",
    )
    assert result.exit_code == 2  # type: ignore[attr-defined]
    [line] = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert line.startswith("error: align train: ") and "must leave at least 8 of max_length" in line
    result = invoke("align", "train", str(env["set"]), "--out", str(tmp_path / "o"), "--model", "x")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1  # type: ignore[attr-defined]


def test_a_killed_job_resumes_from_its_last_checkpoint(
    env: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    train = ["align", "train", str(env["set"]), "--model", str(env["model"]), "--out", str(out)]
    options = [
        "--preference", "none", "--save-steps", "1", "--gradient-accumulation", "1",
        "--threads", "1", "--max-length", "64", "--max-answer-length", "32",
    ]  # fmt: skip
    command = [
        sys.executable,
        "-c",
        "from safestack.cli.main import run; run()",
        *train,
        *options,
        "--sft-steps",
        "500",
    ]
    job = subprocess.Popen(
        command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = out / "sft" / "checkpoints"
    try:
        deadline = time.monotonic() + 120
        while not (checkpoints / "checkpoint-2" / "trainer_state.json").is_file():
            assert job.poll() is None, "the job ended before it saved two checkpoints"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    saved = sorted(
        int(p.name.split("-")[1])
        for p in checkpoints.iterdir()
        if (p / "trainer_state.json").is_file()
    )
    assert not (out / "training.json").exists()

    refused = invoke(*train, *options)
    assert refused.exit_code == 2 and "pass --resume" in refused.stderr  # type: ignore[attr-defined]

    # Resume, asking for 3 steps more than the last checkpoint (the step count may change).
    total = saved[-1] + 3
    resumed = invoke(*train, *options, "--sft-steps", str(total), "--resume")
    assert resumed.exit_code == 0, resumed.output  # type: ignore[attr-defined]
    done = json.loads((out / "training.json").read_text())["metrics"]["sft"]
    assert done["resumed_from"] == f"checkpoint-{saved[-1]}" and done["steps"] == total
    assert f"resuming at step {saved[-1]}" in resumed.stderr  # type: ignore[attr-defined]
