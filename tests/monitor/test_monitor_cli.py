"""`safestack monitor` analysis commands as a user runs them, on a tiny simulated log: simulate,
signals, rules check|evaluate, run, report (an offline page), campaign, export and --parquet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from safestack.cli.main import app
from safestack.redteam.campaign import parse_campaign

runner = CliRunner()
TINY = ["--benign", "40", "--campaign", "12", "--abusers", "2", "--days", "1"]
END = "2026-12-01T00:00"


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    root = tmp_path_factory.mktemp("monitor")
    env = {"SAFESTACK_DB_URL": f"sqlite:///{root / 'audit.db'}", "SAFESTACK_HOME": str(root)}
    code, out, err = run(
        env,
        "monitor",
        "simulate",
        "--labels",
        str(root / "labels.csv"),
        *TINY,
        "--end",
        END,
        "--add-end-user-column",
    )
    assert code == 0, err
    assert re.search(r"wrote \d+ audit events for 84 accounts", out)
    return env, root


def test_signals_and_rules(simulated: tuple[dict[str, str], Path]) -> None:
    env, root = simulated
    code, out, _ = run(env, "monitor", "signals", "--top", "3", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert rows and rows[0]["account"].startswith("key:abu")
    code, out, _ = run(env, "monitor", "rules", "check")
    assert code == 0 and "5 rule(s) valid" in out
    code, out, _ = run(
        env, "monitor", "rules", "evaluate", "--labels", str(root / "labels.csv"), "--json"
    )
    assert code == 0, out
    scores = {s["rule"]: s for s in json.loads(out)}
    assert scores["*"]["precision"] == 1.0 and scores["*"]["true_positives"] == 2


def test_run_records_the_rules_decisions(simulated: tuple[dict[str, str], Path]) -> None:
    env, _ = simulated
    code, out, _ = run(env, "monitor", "run", "--at", "2026-11-30T23:00", "--dry-run")
    assert code == 0 and "would " in out and "(rule " in out
    firings = re.search(r"(\d+) firing\(s\)", out)
    assert firings and int(firings.group(1)) > 0
    code, out, err = run(env, "monitor", "run", "--at", "2026-11-30T23:00")
    assert code == 0, err
    recorded = re.search(r"(\d+) decision\(s\) recorded", out)
    assert recorded and recorded.group(1) == firings.group(1)
    code, out, err = run(env, "monitor", "decisions")
    assert code == 0, err
    assert "rule:" in out and "shadow" in out  # the shipped rules start in shadow mode


def test_report_is_offline_and_exports_a_campaign(simulated: tuple[dict[str, str], Path]) -> None:
    env, root = simulated
    out_dir = root / "report"
    code, _, err = run(env, "monitor", "report", "--out", str(out_dir), "--min-accounts", "5")
    assert code == 0, err
    html = (out_dir / "dashboard.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", html, re.IGNORECASE)
    assert "Plotly.newPlot" in html and "Accounts by strikes" in html
    report = json.loads((out_dir / "threat-report.json").read_text())
    assert report["accounts_actioned"] == 2
    themes = report["themes"]
    assert all(t["accounts"] >= 5 for t in themes)
    spam = next(t for t in themes if t["label"].startswith("spam"))
    code, _, err = run(
        env,
        "monitor",
        "campaign",
        spam["id"],
        "--clusters",
        str(out_dir / "clusters.json"),
        "--out",
        str(root / "campaign.yaml"),
    )
    assert code == 0, err
    campaign = yaml.safe_load((root / "campaign.yaml").read_text())
    parsed = parse_campaign(campaign, "campaign.yaml")
    items = campaign["behaviours"][0]["options"]["behaviours"]
    assert parsed.behaviours[0].source == "fixed" and items[0]["category"] == "spam"
    assert "verification" in items[0]["text"]
    assert (out_dir / "threat-report.md").read_text().startswith("# Threat report")


def test_export_and_read_parquet(simulated: tuple[dict[str, str], Path]) -> None:
    env, root = simulated
    parquet = root / "audit.parquet"
    code, _, _ = run(env, "monitor", "export", "--out", str(parquet))
    assert code == 0 and parquet.is_file()
    _, from_db, _ = run(env, "monitor", "signals", "--json")
    _, from_parquet, _ = run(env, "monitor", "signals", "--json", "--parquet", str(parquet))
    assert from_parquet == from_db
    # The same log exported as two shards, read here and on Ray: the same signals.
    import polars as pl

    frame = pl.read_parquet(parquet)
    half = frame.height // 2
    shards = [root / "shard-1.parquet", root / "shard-2.parquet"]
    frame.slice(0, half).write_parquet(shards[0])
    frame.slice(half).write_parquet(shards[1])
    both = ["--parquet", str(shards[0]), "--parquet", str(shards[1])]
    for executor in ("local", "ray"):
        code, sharded, err = run(env, "monitor", "signals", "--json", *both, "--executor", executor)
        assert code == 0, err
        assert sharded == from_db, executor
    code, _, err = run(env, "monitor", "cluster", *both)
    assert code == 2 and "clustering reads one source" in err


def test_bad_input_is_one_line(simulated: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, _ = simulated
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: x\n    when: [{signal: nope, above: 1}]\n    action: warn\n"
    )
    code, _, err = run(env, "monitor", "rules", "check", str(rules))
    assert code == 2 and "rules.yaml:3: rules.0.when.0.signal: unknown signal 'nope'" in err
    code, _, err = run(env, "monitor", "signals", "--window", "1w")
    assert code == 2 and "--window" in err
