"""`safestack align` as a user runs it: the data set and its store record, the regression
campaign, and one clear line (with a distinct exit code) for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from align_harness import store_run
from typer.testing import CliRunner

from safestack.cli.main import app
from safestack.store import Store

FAST = ["--retain-source", "run", "--retain-source", "borderline"]


@pytest.fixture
def env(store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("SAFESTACK_DB_URL", db_url)
    return store


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_align_data_writes_the_set_and_records_it(env: Store, tmp_path: Path) -> None:
    out = tmp_path / "round1"
    result = invoke("align", "data", "r1", "--out", str(out), "--retain-ratio", "1", *FAST)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    manifest = json.loads((out / "manifest.json").read_text())
    set_id, version = result.stdout.split()  # type: ignore[attr-defined]
    assert (set_id, version) == (manifest["id"], manifest["version"])
    assert "sft" in result.stderr and "left out: duplicate-prompt: 1" in result.stderr  # type: ignore[attr-defined]
    assert (out / "regression.yaml").is_file()
    [stored] = env.training_sets.all()
    assert (stored.id, stored.path, stored.runs) == (set_id, str(out.resolve()), ["r1"])

    again = invoke("align", "data", "r1", "--out", str(out), "--retain-ratio", "1", *FAST)
    assert again.exit_code == 0 and "already holds this set" in again.stderr  # type: ignore[attr-defined]
    listed = invoke("align", "sets")
    assert set_id in listed.stdout  # type: ignore[attr-defined]


def test_an_unknown_run_is_one_line_naming_it_and_how_to_list_runs(
    env: Store, tmp_path: Path
) -> None:
    result = invoke("align", "data", "r1", "nope", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    stderr = result.stderr  # type: ignore[attr-defined]
    assert "no stored red-team run 'nope'" in stderr and "safestack redteam runs" in stderr
    assert "Traceback" not in result.output and len(stderr.strip().splitlines()) == 1  # type: ignore[attr-defined]
    assert not (tmp_path / "o").exists()


def test_a_run_without_failures_exits_3_and_writes_nothing(env: Store, tmp_path: Path) -> None:
    refused = [a.model_copy(update={"id": "s05"}) for a in env.runs.attempts("r1") if a.id == "a05"]
    store_run(env, "r-safe", refused)
    for command in (
        ["align", "data", "r-safe", "--out", str(tmp_path / "o")],
        ["align", "regression", "r-safe", "--out", str(tmp_path / "c.yaml")],
    ):
        result = invoke(*command)
        assert result.exit_code == 3, result.output  # type: ignore[attr-defined]
        assert (
            "nothing to learn" in result.stderr and "'r-safe': no attack succeeded" in result.stderr
        )  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == [tmp_path / "store"]
    assert env.training_sets.all() == []


def test_a_different_set_in_out_is_refused_unless_forced(env: Store, tmp_path: Path) -> None:
    out = tmp_path / "set"
    first = invoke("align", "data", "r1", "--out", str(out), "--retain-ratio", "0")
    assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
    old_version = json.loads((out / "manifest.json").read_text())["version"]
    refused = invoke("align", "data", "r1", "--out", str(out), "--retain-ratio", "0", "--seed", "9")
    assert refused.exit_code == 2  # type: ignore[attr-defined]
    assert f"already holds training set {old_version[:12]}" in refused.stderr  # type: ignore[attr-defined]
    assert json.loads((out / "manifest.json").read_text())["version"] == old_version
    forced = invoke(
        "align", "data", "r1", "--out", str(out), "--retain-ratio", "0", "--seed", "9", "--force"
    )
    assert forced.exit_code == 0, forced.output  # type: ignore[attr-defined]
    assert (tmp_path / f"set.{old_version[:12]}" / "manifest.json").is_file()
    assert f"kept in {tmp_path / f'set.{old_version[:12]}'}" in forced.stderr  # type: ignore[attr-defined]


def test_bad_options_are_one_line(env: Store, tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    for args, message in [
        (["--retain-ratio", "-2"], "--retain-ratio must be 0 or more"),
        (["--writer", "[1]"], "--writer: expected 'templates'"),
        (["--writer", "nope"], "unknown chat model 'nope'"),
        (["--heldout-source", "nope"], "unknown behaviour source 'nope'"),
    ]:
        result = invoke("align", "data", "r1", "--out", out, *args)
        assert result.exit_code == 2, (args, result.output)  # type: ignore[attr-defined]
        assert message in result.stderr, (args, result.stderr)  # type: ignore[attr-defined]
    assert not (tmp_path / "o").exists()


def test_align_regression_writes_a_campaign_redteam_can_plan(env: Store, tmp_path: Path) -> None:
    path = tmp_path / "regression.yaml"
    result = invoke("align", "regression", "r1", "--out", str(path))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "4 fixed probes (written)" in result.stderr  # type: ignore[attr-defined]
    plan = invoke("redteam", "plan", str(path))
    assert plan.exit_code == 0, plan.output  # type: ignore[attr-defined]
    assert "8 attempts planned" in plan.stderr  # type: ignore[attr-defined]  # 4 probes x 2 targets
    assert "behaviours fixed@campaign: 4" in plan.stderr  # type: ignore[attr-defined]
