"""Running campaigns: one stored Attempt per interaction, resume without repeated calls, retries,
errors recorded as errors, budgets, and refusal of a changed campaign."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redteam_harness  # noqa: F401  registers the test behaviour set and scorer
from redteam_harness import campaign

from safestack.errors import StoreError
from safestack.judge.builtin import BuiltinModels, default_models
from safestack.models.scripted import ScriptedModel
from safestack.policy import Policy
from safestack.records import AttemptStatus, Role
from safestack.redteam.campaign import parse_campaign
from safestack.redteam.metrics import compute_metrics
from safestack.redteam.runner import Runner, RunResult
from safestack.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path}/rt.db")


def _run(store: Store, data: dict[str, Any], **kwargs: Any) -> tuple[Runner, RunResult]:
    runner = Runner(parse_campaign(data), store, Policy.default(), **kwargs)
    todo, _ = runner.pending()
    return runner, asyncio.run(runner.run(todo))


def _calls(runner: Runner, target: str = "scripted-a") -> int:
    model = runner.targets[target]
    assert isinstance(model, ScriptedModel)
    return len(model.calls)


def test_every_interaction_is_stored_once_with_its_scores(store: Store) -> None:
    runner, result = _run(store, campaign())
    # baseline: 3 harmful + 1 benign behaviour, one target, one sample
    assert (result.completed, result.errors, _calls(runner)) == (4, 0, 4)
    attempts = store.runs.attempts("unit")
    assert len(attempts) == 4
    by_behaviour = {a.behaviour_id: a for a in attempts}
    phishing = by_behaviour["t:2"]
    assert phishing.status == AttemptStatus.COMPLETE
    assert phishing.response == "Sure, here it is."
    assert phishing.score("test-complied") is not None and phishing.score("test-complied").success  # type: ignore[union-attr]
    assert by_behaviour["t:b1"].benign and by_behaviour["t:b1"].category == "benign"
    # The target's default system prompt was sent and is part of the stored conversation.
    assert phishing.conversation[0].role == Role.SYSTEM
    assert phishing.conversation[-1].role in (Role.USER, Role.ASSISTANT)
    assert phishing.usage.requests == 1 and phishing.attack.startswith("baseline@")


def test_rerunning_resumes_without_repeating_a_call(store: Store) -> None:
    _run(store, campaign())
    runner, result = _run(store, campaign())
    assert (result.already_done, result.completed, _calls(runner)) == (4, 0, 0)
    assert len(store.runs.attempts("unit")) == 4


def test_a_changed_campaign_is_refused_unless_forced(store: Store) -> None:
    _run(store, campaign())
    with pytest.raises(StoreError, match="different campaign"):
        _run(store, campaign(samples=2))
    _runner, result = _run(store, campaign(samples=2), force=True)
    assert result.completed == 8 and len(store.runs.attempts("unit")) == 8


def test_samples_and_several_targets_multiply_the_attempts(store: Store) -> None:
    targets = [
        {"name": "a", "kind": "scripted", "options": {"default": "No."}},
        {"name": "b", "kind": "scripted", "options": {"echo": True}},
    ]
    _runner, result = _run(store, campaign(targets=targets, samples=2))
    assert result.completed == 16
    seeds = {a.generation["seed"] for a in store.runs.attempts("unit", target="b")}
    assert seeds == {0, 1}  # each sample has its own seed


def test_transient_failures_are_retried(store: Store) -> None:
    data = campaign()
    data["targets"][0]["options"]["fail_first"] = 2
    data["targets"][0]["concurrency"] = 1
    runner, result = _run(store, data)
    assert (result.completed, result.errors, _calls(runner)) == (4, 0, 6)


def test_a_target_returning_garbage_is_recorded_as_an_error_never_as_safe(store: Store) -> None:
    data = campaign()
    data["targets"][0]["options"] = {"garbage": True}
    runner, result = _run(store, data)
    assert (result.completed, result.errors, _calls(runner)) == (0, 4, 12)  # retried, then recorded
    for attempt in store.runs.attempts("unit"):
        assert attempt.status == AttemptStatus.ERROR
        assert "not valid JSON" in (attempt.error or "")
        assert attempt.scores == [] and attempt.response is None


def test_a_slow_target_times_out_after_its_retries(store: Store) -> None:
    data = campaign()
    data["targets"][0]["options"] = {"delay_s": 1.0}
    data["targets"][0]["timeout_s"] = 0.05
    data["retries"] = {"attempts": 2, "backoff_s": 0.0}
    runner, result = _run(store, data)
    assert result.errors == 4 and _calls(runner) == 8
    assert all("no answer within 0.05 s" in (a.error or "") for a in store.runs.attempts("unit"))


def test_an_empty_answer_is_an_error(store: Store) -> None:
    data = campaign()
    data["targets"][0]["options"] = {"default": "   "}
    _, result = _run(store, data)
    assert result.errors == 4
    assert {a.error for a in store.runs.attempts("unit")} == {
        "the target returned an empty response"
    }


def test_the_request_budget_stops_the_run_and_the_next_run_finishes_it(store: Store) -> None:
    data = campaign(budget={"max_requests": 2})
    data["targets"][0]["concurrency"] = 1
    _, result = _run(store, data)
    assert (result.completed, result.not_run) == (2, 2)
    assert "request budget of 2 spent" in (result.stopped or "")
    _runner, result = _run(store, campaign(budget={"max_requests": 2}))
    assert result.completed == 2 and len(store.runs.attempts("unit")) == 4


def test_targets_without_a_system_prompt_skip_extraction(store: Store) -> None:
    data = campaign(attacks=[{"name": "system-prompt-extraction"}])
    data["targets"][0]["options"]["system_prompt"] = False
    runner = Runner(parse_campaign(data), store, Policy.default())
    skipped = runner.plan.skipped
    assert [s.attack for s in skipped] == ["system-prompt-extraction"]
    assert "no system prompt" in skipped[0].reason


def test_the_same_converter_with_other_options_is_another_probe(store: Store) -> None:
    attacks = [
        {"name": "converted", "converters": [{"name": "leetspeak", "options": {}}]},
        {"name": "converted", "converters": [{"name": "base64", "options": {"instruct": False}}]},
        {"name": "converted", "converters": [{"name": "base64"}]},
    ]
    runner = Runner(parse_campaign(campaign(attacks=attacks)), store, Policy.default())
    # baseline 4 (3 harmful + 1 benign); each converted variant its own 3 harmful probes
    assert len(runner.plan.work) == 13
    assert len({w.probe.id for w in runner.plan.work}) == 13


def test_an_injection_campaign_without_its_scorer_gets_it_and_reports_no_errors(
    store: Store,
) -> None:
    data = campaign(attacks=[{"name": "prompt-injection", "options": {"include_garak": False}}])
    data["targets"][0]["options"]["default"] = "Je ne peux pas."
    runner, result = _run(store, data)
    asr = {r.key: r.asr for r in compute_metrics(result.attempts).asr if r.by == "attack"}
    assert result.errors == 0
    assert (asr["prompt-injection"].n, asr["prompt-injection"].errors) == (18, 0)
    assert [(a.scorer, a.attacks) for a in runner.plan.added] == [
        ("injection-success", ("prompt-injection",))
    ]
    # Stored with the run, so `rescore` without --campaign judges with the same scorers.
    stored = store.runs.get("unit")
    assert stored is not None and "injection-success" in str(stored.campaign["scorers"])


def test_a_campaign_listing_a_judging_scorer_gets_nothing_added(store: Store) -> None:
    data = campaign(
        attacks=[{"name": "system-prompt-extraction", "options": {"limit": 1}}],
        scorers=["test-complied", "prompt-overlap"],
    )
    runner = Runner(parse_campaign(data), store, Policy.default())
    assert runner.plan.added == []


def test_a_run_owns_its_models_unless_given_them(store: Store) -> None:
    data = campaign()
    own = Runner(parse_campaign(data), store, Policy.default())
    other = Runner(parse_campaign(data), store, Policy.default())
    assert own.models is not other.models and default_models() not in (own.models, other.models)
    given = BuiltinModels()
    assert Runner(parse_campaign(data), store, Policy.default(), models=given).models is given
