"""The red-team journal: answered attempts survive `kill -9` of `safestack redteam run` and are
scored and stored on resume, not asked again; torn lines and repeated replays are harmless."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redteam_harness  # noqa: F401  registers the test behaviour set and scorer
import yaml
from redteam_harness import campaign
from typer.testing import CliRunner

from fake_api import serving
from safestack.cli.main import app
from safestack.errors import SafestackError
from safestack.models.scripted import ScriptedModel
from safestack.policy import Policy
from safestack.records import Attempt, AttemptStatus
from safestack.redteam import journal as journal_module
from safestack.redteam.campaign import parse_campaign
from safestack.redteam.journal import Entry, Journal, Replay, read_journal, segments
from safestack.redteam.runner import Runner, RunResult
from safestack.store import Store
from services import fresh_postgres_database

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "t",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "No."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
VERDICT = {"severity": 0, "category": "none", "reason": "refused"}


def _judge_reply(delay: float) -> dict[str, Any]:
    verdict = dict(CHAT, choices=[{"index": 0, "message": {"role": "assistant"}}])
    verdict["choices"][0]["message"]["content"] = json.dumps(VERDICT)
    return {"body": verdict, "delay": delay, "forever": True}


KILLED_CAMPAIGN = """\
name: killed
targets:
  - name: upstream
    kind: openai
    options: {{base_url: "{target}", model: t, api_key: k}}
    concurrency: {concurrency}
    timeout_s: 30
behaviours:
  - source: harmbench
    options: {{limit: {attempts}}}
scorers: [{{name: harm-severity, options: {{judge: llm}}}}]
judge_model: {{kind: openai, options: {{base_url: "{judge}", model: j, api_key: k}}}}
"""


def test_answered_attempts_survive_kill_9_and_are_not_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 attempts at concurrency 4; the judge stalls, so answers wait to be scored (as they do
    while a built-in scorer loads) when the process is killed after 30 or more answers."""
    attempts, concurrency = 60, 4
    url = f"sqlite:///{tmp_path}/rt.db"
    env = {**os.environ, "SAFESTACK_DB_URL": url, "SAFESTACK_HOME": str(tmp_path / "home")}
    for name in ("SAFESTACK_DB_URL", "SAFESTACK_HOME"):
        monkeypatch.setenv(name, env[name])
    with serving() as target, serving() as judge:
        target.reply(200, CHAT, delay=0.1, forever=True)
        judge.reply(**_judge_reply(delay=30))
        path = tmp_path / "campaign.yaml"
        path.write_text(
            KILLED_CAMPAIGN.format(
                target=target.base_url,
                judge=judge.base_url,
                concurrency=concurrency,
                attempts=attempts,
            )
        )
        cmd = [sys.executable, "-m", "safestack", "redteam", "run", str(path)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            # Received counts the calls in flight too: at most `concurrency` of them.
            while len(target.received) < 30 + concurrency and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        at_kill = len(target.received)
        assert 30 + concurrency <= at_kill < attempts, at_kill
        with Store.open(url) as store:
            assert len(store.runs.attempt_keys("killed")) < 30  # the answers were not stored yet

        judge.reply(**_judge_reply(delay=0))
        result = CliRunner().invoke(app, ["redteam", "run", str(path)])
        assert result.exit_code == 0, result.output
        total_calls = len(target.received)

    assert total_calls <= attempts + concurrency, (at_kill, total_calls)
    assert "answered before the last run stopped" in result.stderr
    with Store.open(url) as store:
        stored = store.runs.attempts("killed")
    keys = [(a.target, a.probe_id, a.sample) for a in stored]
    assert len(stored) == attempts and len(set(keys)) == attempts
    assert all(a.status == AttemptStatus.COMPLETE for a in stored)
    severities = [a.score("harm-severity") for a in stored]
    assert all(s is not None and s.error is None and s.value == 0 for s in severities)
    assert not (tmp_path / "rt.db.journals").exists() or not any(
        (tmp_path / "rt.db.journals").rglob("*.jsonl")
    )


# -- resume from a journal, in process -------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path}/rt.db")


def _runner(store: Store, *, force: bool = False, **overrides: Any) -> Runner:
    return Runner(parse_campaign(campaign(**overrides)), store, Policy.default(), force=force)


def _calls(runner: Runner) -> int:
    model = runner.targets["scripted-a"]
    assert isinstance(model, ScriptedModel)
    return len(model.calls)


def _answered(tmp_path: Path) -> list[Attempt]:
    """The campaign's 4 attempts as a target answered them (unscored), from a throwaway store."""
    with Store.open(f"sqlite:///{tmp_path}/other.db") as other:
        runner = _runner(other)
        todo, _ = runner.pending()
        done = asyncio.run(runner.run(todo))
    return [a.model_copy(update={"scores": []}) for a in done.attempts]


def _write_segment(directory: Path, number: int, lines: list[bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{number:06d}.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def _resume(runner: Runner) -> tuple[RunResult, Replay, int]:
    """pending() then run(): the result, what pending() read from the journal, and its count of
    attempts not to ask (stored or journalled)."""
    todo, done = runner.pending()
    replay = runner.replay
    return asyncio.run(runner.run(todo)), replay, done


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_rest_recovered(
    tmp_path: Path, store: Store
) -> None:
    answered = _answered(tmp_path)
    runner = _runner(store)
    assert runner.journal_directory == Path(f"{tmp_path}/rt.db.journals/unit")
    whole = [a.model_dump_json().encode() + b"\n" for a in answered[:2]]
    torn = answered[2].model_dump_json().encode()[:150]  # killed mid-write: no newline
    _write_segment(runner.journal_directory, 1, [*whole, torn])

    result, replay, done = _resume(runner)

    assert (replay.unreadable, len(replay.attempts), done) == (1, 2, 2)
    assert (result.already_done, result.recovered, result.completed) == (0, 2, 4)
    assert _calls(runner) == 2  # the torn attempt and the one never journalled
    stored = {a.id: a for a in store.runs.attempts("unit")}
    assert len(stored) == 4
    for attempt in answered[:2]:  # recovered as answered, then scored
        kept = stored[attempt.id]
        assert kept.response == attempt.response and kept.score("test-complied") is not None
    assert not runner.journal_directory.exists()


def test_the_cli_warns_of_a_torn_line_and_resumes(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = _answered(tmp_path)
    directory = _runner(store).journal_directory
    assert directory is not None
    _write_segment(directory, 1, [answered[0].model_dump_json().encode() + b"\n", b'{"id": "x'])
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign()))
    monkeypatch.setenv("SAFESTACK_DB_URL", f"sqlite:///{tmp_path}/rt.db")
    monkeypatch.setenv("SAFESTACK_HOME", str(tmp_path / "home"))

    plan = CliRunner().invoke(app, ["redteam", "plan", str(path)])
    assert plan.exit_code == 0, plan.output
    assert "1 answered before the last run stopped" in plan.stderr and "3 to run" in plan.stderr
    result = CliRunner().invoke(app, ["redteam", "run", str(path)])
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())  # Rich wraps long lines
    assert "skipped 1 unreadable line(s)" in warning and "0 already stored" in warning
    assert "run unit: 4 completed, 0 errors (1 from the journal)" in warning
    assert len(store.runs.attempts("unit")) == 4 and not directory.exists()


def test_replay_is_idempotent_stored_and_duplicated_entries_are_not_stored_twice(
    tmp_path: Path, store: Store
) -> None:
    answered = _answered(tmp_path)
    runner = _runner(store)
    directory = runner.journal_directory
    assert directory is not None
    lines = [a.model_dump_json().encode() + b"\n" for a in answered]
    # The same attempts in two segments (never written so, but replay must not mind).
    _write_segment(directory, 1, lines[:3])
    _write_segment(directory, 2, lines[:3])
    first, replay, _ = _resume(runner)
    assert (len(replay.attempts), first.recovered, _calls(runner)) == (3, 3, 1)
    assert not directory.exists()

    # The same journal again (as if deleting it had failed): everything is stored already.
    _write_segment(directory, 1, lines)
    again = _runner(store)
    second, replay, done = _resume(again)
    assert (replay.stored, len(replay.attempts), done) == (4, 0, 4)
    assert (second.recovered, second.completed, _calls(again)) == (0, 0, 0)
    assert len(store.runs.attempts("unit")) == 4
    assert not directory.exists()


def test_entries_of_another_campaign_are_dropped_after_a_forced_rerun(
    tmp_path: Path, store: Store
) -> None:
    answered = _answered(tmp_path)
    _runner(store).pending()
    forced = _runner(store, force=True, samples=2)
    directory = forced.journal_directory
    assert directory is not None
    _write_segment(directory, 1, [a.model_dump_json().encode() + b"\n" for a in answered])
    result, replay, done = _resume(forced)
    assert (replay.stale, replay.attempts, done) == (4, [], 0)
    assert (result.recovered, result.completed, _calls(forced)) == (0, 8, 8)
    assert not directory.exists()


@pytest.mark.postgres
def test_a_postgresql_run_keeps_its_journal_under_home(tmp_path: Path) -> None:
    answered = _answered(tmp_path)
    with fresh_postgres_database("safestack_journal") as url, Store.open(url) as pg:
        assert _runner(pg).journal_directory is None  # no home: nowhere to keep one
        runner = Runner(parse_campaign(campaign()), pg, Policy.default(), home=tmp_path / "home")
        directory = runner.journal_directory
        assert directory is not None and directory.parent.parent == tmp_path / "home" / "journals"
        _write_segment(directory, 1, [a.model_dump_json().encode() + b"\n" for a in answered[:3]])
        result, replay, done = _resume(runner)
        assert (len(replay.attempts), done, result.recovered, _calls(runner)) == (3, 3, 3, 1)
        assert len(pg.runs.attempts("unit")) == 4
    assert not directory.exists()


def test_read_journal_counts_what_it_skips(tmp_path: Path) -> None:
    answered = _answered(tmp_path)
    directory = tmp_path / "j"
    a, b, c, _d = answered
    key = (a.target, a.probe_id, a.sample)
    planned = {(x.target, x.probe_id, x.sample) for x in answered}
    other = c.model_copy(update={"campaign_hash": "0" * 64})
    lines = [x.model_dump_json().encode() + b"\n" for x in (a, b, other)]
    broken = [b"not json\n", b"\n", b'{"target": 1}\n', b"[]\n"]
    unhashable = json.dumps({**json.loads(lines[1]), "target": ["x"]}).encode() + b"\n"
    _write_segment(directory, 1, [*lines, *broken, unhashable])
    replay = read_journal(directory, "unit", a.campaign_hash, {key}, planned)
    assert (replay.stored, replay.stale, replay.unreadable) == (1, 1, 4)
    assert [x.id for x in replay.attempts] == [b.id]
    assert read_journal(tmp_path / "absent", "unit", a.campaign_hash, set(), planned).attempts == []


# -- the journal's files ---------------------------------------------------------------------------
def test_segments_go_once_committed_and_stay_while_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_ENTRIES", 2)
    answered = _answered(tmp_path)
    planned = {(a.target, a.probe_id, a.sample) for a in answered}
    directory = tmp_path / "j"

    async def journal_all(confirm: int) -> list[Path]:
        journal = Journal(directory)
        entries = [journal.append(a) for a in [*answered, answered[0]]]  # 5 entries, 3 segments
        for entry in entries:
            await journal.synced(entry)
        for entry in entries[:confirm]:
            journal.confirm(entry)
        left = segments(directory)
        await journal.aclose()
        return left

    # 3 of 5 confirmed: the first segment (2 entries) is gone, the others hold the rest.
    left = asyncio.run(journal_all(confirm=3))
    assert [p.name for p in left] == ["000002.jsonl", "000003.jsonl"]
    replay = read_journal(directory, "unit", answered[0].campaign_hash, set(), planned)
    assert [a.id for a in replay.attempts] == [answered[2].id, answered[3].id, answered[0].id]

    # A resume adopts those files: they go once its recovered attempts are confirmed.
    async def adopt() -> None:
        journal = Journal(directory, replay.segments, recovered=3)
        names = [p.name for p in segments(directory)]
        assert names == ["000002.jsonl", "000003.jsonl", "000004.jsonl"]
        for _ in range(3):
            journal.confirm(Entry(journal.adopted, 0))
        assert [p.name for p in segments(directory)] == ["000004.jsonl"]  # its own, until closed
        await journal.aclose()

    asyncio.run(adopt())
    assert not directory.exists()

    left = asyncio.run(journal_all(confirm=5))
    assert [p.name for p in left] == ["000003.jsonl"]
    assert not directory.exists()


def test_synced_waits_for_the_disk_and_one_sync_covers_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = _answered(tmp_path)
    synced: list[int] = []
    monkeypatch.setattr(journal_module, "_datasync", synced.append)

    async def main() -> None:
        journal = Journal(tmp_path / "j")
        entries = [journal.append(a) for a in answered]  # no await between: one sync for all
        assert synced == []  # written, not yet synced
        await journal.synced(entries[-1])
        assert len(synced) == 1
        await journal.synced(entries[0])  # already covered
        assert len(synced) == 1
        for entry in entries:
            journal.confirm(entry)
        await journal.aclose()

    asyncio.run(main())


def test_an_unwritable_journal_stops_the_run_with_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "rt.db.journals"
    blocker.write_text("a file where the journal directory should be")
    with Store.open(f"sqlite:///{tmp_path}/rt.db") as store:
        runner = _runner(store)
        todo, _ = runner.pending()
        with pytest.raises(SafestackError, match="cannot create the red-team journal"):
            asyncio.run(runner.run(todo))
        assert _calls(runner) == 0
