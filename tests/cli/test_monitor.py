"""`safestack monitor` as an operator runs it: decisions by hand, status, the log, accounts of end
users; mistakes as one line naming what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safestack.cli.main import app
from safestack.monitor.identity import hash_end_user
from safestack.store import Store

runner = CliRunner()


@pytest.fixture
def key_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    monkeypatch.setenv("SAFESTACK_DB_URL", url)
    monkeypatch.setenv("SAFESTACK_MONITOR_SECRET", "cli-secret")
    with Store.open(url) as store:
        key, _ = store.keys.create("app", ["chat"])
    return key.id


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_suspend_status_lift_and_the_log(key_id: str) -> None:
    account = f"key:{key_id}"
    code, out, err = run(
        "monitor",
        "suspend",
        account,
        "--reason",
        "weapons requests",
        "--by",
        "alice",
        "--for",
        "2h",
    )
    assert code == 0, err
    assert "suspend" in out and "enforced" in out and "(2h)" in out
    code, out, _ = run("monitor", "status", account)
    assert code == 0 and "suspend" in out and "weapons requests" in out

    assert run("monitor", "lift", account, "--reason", "appeal", "--by", "bob")[0] == 0
    code, out, _ = run("monitor", "status", account, "--json")
    status = json.loads(out)
    assert status["in_force"] == [] and [d["action"] for d in status["recent"]] == [
        "lift",
        "suspend",
    ]
    code, out, _ = run("monitor", "decisions", "--json", "--since", "1h")
    decisions = [json.loads(line) for line in out.splitlines()]
    assert [(d["action"], d["actor"], d["shadow"]) for d in decisions] == [
        ("lift", "bob", False),
        ("suspend", "alice", False),
    ]


def test_strikes_climb_and_shadow_records_only(key_id: str) -> None:
    account = f"key:{key_id}"
    for _ in range(3):
        assert run("monitor", "strike", account, "--reason", "again", "--by", "alice")[0] == 0
    assert run("monitor", "warn", account, "--reason", "r", "--by", "a", "--shadow")[0] == 0
    code, out, _ = run("monitor", "decisions", "--json")
    actions = [(d["action"], d["shadow"]) for d in map(json.loads, out.splitlines())]
    assert actions == [("warn", True), ("suspend", False), ("throttle", False), ("warn", False)]
    code, out, _ = run("monitor", "decisions")
    assert code == 0 and "shadow" in out


def test_the_account_of_an_end_user_is_its_hash(key_id: str) -> None:
    code, out, _ = run("monitor", "account", key_id, "--end-user", "alice@example.com")
    assert code == 0
    assert out.strip() == f"user:{key_id}:{hash_end_user('alice@example.com', 'cli-secret')}"
    account = out.strip()
    assert run("monitor", "throttle", account, "--reason", "r", "--by", "a")[0] == 0
    # A key's log lists its end users' decisions too.
    code, out, _ = run("monitor", "decisions", "--account", f"key:{key_id}", "--json")
    assert json.loads(out)["account"] == account


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("suspend", "ssk_1", "--reason", "r", "--by", "a"), "is not 'key:<key id>'"),
        (
            ("suspend", "key:ssk_00000000", "--reason", "r", "--by", "a"),
            "no API key 'ssk_00000000'",
        ),
        (("warn", "key:{key}", "--reason", "r", "--by", "a", "--for", "3 days"), "--for: "),
        (("decisions", "--since", "last week"), "--since 'last week'"),
    ],
)
def test_mistakes_are_one_line_errors(key_id: str, args: tuple[str, ...], message: str) -> None:
    code, _, err = run("monitor", *(arg.replace("{key}", key_id) for arg in args))
    assert code == 2 and message in err and "Traceback" not in err
    assert run("monitor", "decisions", "--json")[1] == ""  # nothing was recorded


def test_a_bad_ladder_file_names_its_line(
    key_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ladder = tmp_path / "ladder.yaml"
    ladder.write_text("warn:\n  decay: soon\n")
    monkeypatch.setenv("SAFESTACK_MONITOR_LADDER", str(ladder))
    code, _, err = run("monitor", "warn", f"key:{key_id}", "--reason", "r", "--by", "a")
    assert code == 2 and f"{ladder}:2: warn.decay" in " ".join(err.split())
