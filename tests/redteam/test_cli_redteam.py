"""`safestack redteam` as a user runs it: plan, run with resume after a killed process, rescore,
report, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from default_models import no_default_models  # noqa: F401
from safestack.cli.main import app
from safestack.store import Store

CAMPAIGN = """\
name: cli-demo
targets:
  - name: slow
    kind: scripted
    options: {{rules: [{{match: "python", reply: "Sure: use kill."}}], delay_s: {delay}}}
    concurrency: 1
behaviours:
  - source: harmbench
    options: {{limit: 3}}
  - source: benign-lookalikes
    options: {{limit: 2}}
scorers: [refusal, canary-leak]
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("SAFESTACK_DB_URL", url)
    return {**os.environ, "SAFESTACK_DB_URL": url}


def _campaign(tmp_path: Path, delay: float = 0.0) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN.format(delay=delay))
    return path


def test_plan_shows_the_work_and_the_estimate_without_calling(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = CliRunner().invoke(app, ["redteam", "plan", str(_campaign(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "5 attempts planned, 0 already stored, 5 to run" in result.stderr
    assert "harmbench@" in result.stderr and "requests" in result.stderr


def test_plan_says_which_scorer_it_added_for_an_attack(tmp_path: Path, env: dict[str, str]) -> None:
    path = _campaign(tmp_path)
    path.write_text(
        path.read_text() + "attacks: [{name: prompt-injection, options: {include_garak: false}}]\n"
    )
    result = CliRunner().invoke(app, ["redteam", "plan", str(path)])
    assert result.exit_code == 0, result.output
    assert "added scorer injection-success: prompt-injection need it" in result.stderr


def test_a_bad_campaign_is_one_line_with_its_location(tmp_path: Path, env: dict[str, str]) -> None:
    path = _campaign(tmp_path)
    path.write_text(path.read_text().replace("kind: scripted", "kind: scriptd"))
    result = CliRunner().invoke(app, ["redteam", "run", str(path)])
    assert result.exit_code == 2
    assert f"error: {path}:4: targets.0.kind: unknown chat model 'scriptd'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_killed_run_resumes_and_finishes(tmp_path: Path, env: dict[str, str]) -> None:
    path = _campaign(tmp_path, delay=0.4)
    cmd = [sys.executable, "-m", "safestack", "redteam", "run", str(path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = env["SAFESTACK_DB_URL"]
    # Answered attempts are journalled at once; stored ones wait for the refusal model to load,
    # which under load takes longer than the whole run's calls.
    journal = Path(url.removeprefix("sqlite:///") + ".journals") / "cli-demo"
    deadline = time.monotonic() + 60
    answered = 0
    while time.monotonic() < deadline and answered < 2:
        time.sleep(0.1)
        answered = sum(len(p.read_bytes().splitlines()) for p in journal.glob("*.jsonl"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert 2 <= answered < 5

    result = CliRunner().invoke(app, ["redteam", "run", str(path)])
    assert result.exit_code == 0, result.output
    with Store.open(url) as store:
        attempts = store.runs.attempts("cli-demo")
    assert len(attempts) == 5
    assert "already stored" in result.stderr
    assert not journal.exists()


# Under a process default that refuses to load: the run and the rescore use the models they own.
@pytest.mark.usefixtures("no_default_models")
def test_run_rescore_and_report(tmp_path: Path, env: dict[str, str]) -> None:
    path = _campaign(tmp_path)
    cli = CliRunner()
    assert cli.invoke(app, ["redteam", "run", str(path)]).exit_code == 0
    with Store.open(env["SAFESTACK_DB_URL"]) as store:
        before = store.runs.attempts("cli-demo")
    assert {s.scorer for a in before for s in a.scores} == {"refusal"}

    rescored = tmp_path / "rescore.yaml"
    rescored.write_text(
        path.read_text().replace("[refusal, canary-leak]", "[refusal, harm-severity]")
    )
    result = cli.invoke(app, ["redteam", "rescore", "cli-demo", "--campaign", str(rescored)])
    assert result.exit_code == 0, result.output
    with Store.open(env["SAFESTACK_DB_URL"]) as store:
        after = store.runs.attempts("cli-demo")
    assert [a.id for a in after] == [a.id for a in before]
    assert {s.scorer for a in after for s in a.scores} == {"refusal", "harm-severity"}
    assert not [s.error for a in after for s in a.scores if s.error]

    out = tmp_path / "report"
    result = cli.invoke(app, ["redteam", "report", "cli-demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").stat().st_size > 10_000
    metrics = json.loads((out / "metrics.json").read_text())
    assert "slow" in json.dumps(metrics)
    assert cli.invoke(app, ["redteam", "report", "nope", "--out", str(out)]).exit_code == 2
    runs = cli.invoke(app, ["redteam", "runs"])
    assert "cli-demo" in runs.stdout


@pytest.mark.usefixtures("no_default_models")
def test_a_guarded_target_runs_the_guard_on_the_runs_models(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = _campaign(tmp_path)
    path.write_text(
        path.read_text().replace(
            "    kind: scripted\n    options: {rules:",
            "    kind: guarded\n    options:\n      target:\n        kind: scripted\n"
            "        options: {rules:",
        )
    )
    result = CliRunner().invoke(app, ["redteam", "run", str(path)])
    assert result.exit_code == 0, result.output
    with Store.open(env["SAFESTACK_DB_URL"]) as store:
        attempts = store.runs.attempts("cli-demo")
    assert len(attempts) == 5 and all(a.status == "complete" for a in attempts)
    assert all(a.target_model.startswith("guarded(") for a in attempts)


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        # a mapping where a list belongs: pydantic quotes the whole target
        (
            "targets:\n  name: prod\n  kind: openai\n  options: {base_url: 'http://x/v1', "
            "model: m, api_key: sk-SECRET-1, headers: {Authorization: 'Bearer sk-SECRET-2'}}\n",
            "targets",
        ),
        # options as a list: the second problem quotes the targets list
        (
            "targets:\n  - name: prod\n    kind: openai\n    options: [{model: m, api_key: sk-SECRET-1, "
            "token: sk-SECRET-2, password: sk-SECRET-3}]\n",
            "targets.0.options",
        ),
    ],
    ids=["target is a mapping", "options is a list"],
)
def test_a_campaign_type_error_never_prints_a_secret(
    tmp_path: Path, env: dict[str, str], targets: str, field: str
) -> None:
    # Issue 17, item 8: the error quoted the whole target, inline api_key included.
    path = tmp_path / "campaign.yaml"
    path.write_text(f"name: t\n{targets}behaviours: [{{source: benign-lookalikes}}]\n")
    result = CliRunner().invoke(app, ["redteam", "plan", str(path)])
    assert result.exit_code == 2, result.output
    assert f"error: {path}:" in result.stderr and f": {field}: " in result.stderr
    assert "SECRET" not in result.output
    assert "'api_key': '<redacted>'" in result.stderr and "'model': 'm'" in result.stderr
