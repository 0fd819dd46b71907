"""`safestack keys` as an operator runs it: the secret shown once, listed never, revoked for good."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safestack.cli.keys import ScopeName
from safestack.cli.main import app
from safestack.store import SCOPES, KeyLimits, Store

runner = CliRunner()
SECRET = re.compile(r"ssk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    monkeypatch.setenv("SAFESTACK_DB_URL", url)
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def create(*args: str) -> str:
    code, out, err = run("keys", "create", *args)
    assert code == 0, err
    return out.strip()


def test_create_prints_the_secret_once_with_a_warning(db_url: str) -> None:
    code, out, err = run("keys", "create", "ci-bot", "--scope", "chat", "--scope", "moderate")

    assert code == 0, err
    secret = out.strip()
    assert SECRET.fullmatch(secret)  # stdout is the secret alone, so scripts can capture it
    assert "cannot be shown again" in err
    assert (out + err).count(secret) == 1
    key_id = secret.split(".")[0]
    assert key_id in err and "ci-bot" in err
    with Store.open(db_url) as store:
        key = store.keys.verify(secret)
    assert key is not None
    assert (key.id, key.name, key.scopes) == (key_id, "ci-bot", ["chat", "moderate"])
    assert key.models == [] and key.policy is None
    assert key.rate_per_minute is None and key.burst is None


def test_create_stores_policy_models_and_limits(db_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text("name: strict\n")

    secret = create(
        "partner",
        "-s",
        "chat",
        "--policy",
        str(policy),
        "--model",
        "llama-3-8b",
        "-m",
        "qwen-2",
        "--rate-per-minute",
        "120",
        "--burst",
        "20",
    )

    with Store.open(db_url) as store:
        key = store.keys.verify(secret)
    assert key is not None
    assert key.policy == str(policy.resolve())
    assert key.models == ["llama-3-8b", "qwen-2"]
    assert (key.rate_per_minute, key.burst) == (120, 20)


def test_create_stores_work_limits_and_list_shows_them(db_url: str) -> None:
    secret = create(
        "batch",
        "-s",
        "chat",
        "--max-messages",
        "1000",
        "--max-inputs",
        "64",
        "--max-chars",
        "500000",
        "--chars-per-minute",
        "2000000",
    )
    plain = create("plain", "-s", "chat")

    with Store.open(db_url) as store:
        key = store.keys.verify(secret)
        other = store.keys.verify(plain)
    assert key is not None and other is not None
    assert key.limits == KeyLimits(
        max_messages=1000, max_inputs=64, max_chars=500_000, chars_per_minute=2_000_000
    )
    assert other.limits == KeyLimits()
    code, out, err = run("keys", "list")
    assert code == 0, err
    assert "1,000 msgs" in out and "64 inputs" in out


def test_a_policy_that_does_not_load_is_refused_and_no_key_made(
    db_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("thresholds: [1\n")
    for policy in (broken, tmp_path / "missing.yaml"):
        code, out, err = run("keys", "create", "k", "--scope", "chat", "--policy", str(policy))
        assert code == 2
        assert err.startswith("error: ") and err.strip().count("\n") == 0
        assert policy.name in err
        assert not SECRET.search(out + err)
    with Store.open(db_url) as store:
        assert store.keys.all(include_revoked=True) == []


@pytest.mark.parametrize(
    "args",
    [
        ["k"],  # no scope
        ["k", "--scope", "root"],
        ["k", "--scope", "chat", "--rate-per-minute", "0"],
        ["k", "--scope", "chat", "--burst", "-5"],
        ["k", "--scope", "chat", "--max-messages", "0"],
        ["k", "--scope", "chat", "--chars-per-minute", "-1"],
    ],
)
def test_invalid_options_are_usage_errors(db_url: str, args: list[str]) -> None:
    code, out, err = run("keys", "create", *args)
    assert code == 2
    assert not SECRET.search(out + err)
    with Store.open(db_url) as store:
        assert store.keys.all(include_revoked=True) == []


def test_an_empty_name_is_a_one_line_error(db_url: str) -> None:
    code, _, err = run("keys", "create", "", "--scope", "chat")
    assert code == 2
    assert "error: field 'name'" in err
    assert "Traceback" not in err


def test_list_shows_keys_but_never_secrets(db_url: str) -> None:
    first = create("alpha", "--scope", "chat", "--rate-per-minute", "60", "--burst", "5")
    second = create("beta", "--scope", "admin", "--model", "llama")

    code, out, err = run("keys", "list")

    assert code == 0, err
    for secret in (first, second):
        key_id, random_part = secret.split(".")
        assert key_id in out
        assert random_part not in out + err
    assert "alpha" in out and "beta" in out
    assert "60/min" in out and "llama" in out
    assert not SECRET.search(out)


def test_revoke_stops_the_key_and_hides_it_from_the_list(db_url: str) -> None:
    leaked = create("leaked", "--scope", "chat")
    kept = create("kept", "--scope", "chat")
    leaked_id, kept_id = leaked.split(".")[0], kept.split(".")[0]

    code, out, _ = run("keys", "revoke", leaked_id)
    assert code == 0
    assert f"revoked API key {leaked_id}" in out
    with Store.open(db_url) as store:
        assert store.keys.verify(leaked) is None
        assert store.keys.verify(kept) is not None

    _, listed, _ = run("keys", "list")
    assert kept_id in listed and leaked_id not in listed
    _, everything, _ = run("keys", "list", "--all")
    assert kept_id in everything and leaked_id in everything
    assert everything.count("revoked") == 1

    code, out, _ = run("keys", "revoke", leaked_id)
    assert code == 0
    assert "already revoked" in out


def test_revoking_an_unknown_key_is_a_one_line_error(db_url: str) -> None:
    code, _, err = run("keys", "revoke", "ssk_00000000")
    assert code == 2
    assert err.strip() == (
        "error: no API key 'ssk_00000000'; `safestack keys list --all` shows the keys"
    )


def test_an_empty_database_lists_how_to_create_a_key(db_url: str) -> None:
    code, out, _ = run("keys", "list")
    assert code == 0
    assert "no API keys" in out and "safestack keys create" in out


def test_scope_choices_are_the_stores_scopes() -> None:
    assert tuple(scope.value for scope in ScopeName) == SCOPES


def test_console_scopes_make_experts_and_leads(db_url: str) -> None:
    expert = create("Dr. Ada", "--scope", "redteam")
    lead = create("Lena", "--scope", "review")
    with Store.open(db_url) as store:
        assert store.keys.verify(expert).scopes == ["redteam"]  # type: ignore[union-attr]
        assert store.keys.verify(lead).scopes == ["review"]  # type: ignore[union-attr]
    code, _, err = run("keys", "create", "x", "--scope", "superuser")
    assert code != 0 and "redteam" in err


def test_limits_change_a_live_key_and_keep_the_rest(db_url: str) -> None:
    secret = create("batch", "-s", "chat", "--rate-per-minute", "60", "--max-messages", "10")
    key_id = secret.split(".")[0]
    code, out, err = run(
        "keys", "limits", key_id, "--max-chars", "500000", "--reset", "rate-per-minute"
    )
    assert code == 0, err
    assert "500,000 chars" in out and "10 msgs" in out
    with Store.open(db_url) as store:
        key = store.keys.verify(secret)
    assert key is not None and key.rate_per_minute is None
    assert key.limits == KeyLimits(max_messages=10, max_chars=500_000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to change"),
        (["--reset", "speed"], "not a limit"),
        (["--max-chars", "5", "--reset", "max-chars"], "contradict"),
    ],
)
def test_limits_bad_input_is_one_line_and_changes_nothing(
    db_url: str, args: list[str], message: str
) -> None:
    secret = create("batch", "-s", "chat", "--max-chars", "100")
    key_id = secret.split(".")[0]
    code, _, err = run("keys", "limits", key_id, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    with Store.open(db_url) as store:
        key = store.keys.verify(secret)
    assert key is not None and key.limits == KeyLimits(max_chars=100)


def test_limits_of_an_unknown_or_revoked_key_is_refused(db_url: str) -> None:
    secret = create("gone", "-s", "chat")
    key_id = secret.split(".")[0]
    assert run("keys", "revoke", key_id)[0] == 0
    for target in (key_id, "ssk_00000000"):
        code, _, err = run("keys", "limits", target, "--burst", "3")
        assert code != 0 and "no live API key" in err
