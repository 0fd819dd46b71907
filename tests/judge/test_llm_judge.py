"""The llm-judge detector, on its own and through the Judge.

It runs against a real HTTP server on 127.0.0.1 (the `api` fixture of conftest.py), no mocking.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from safestack.errors import DetectorError, PolicyError
from safestack.judge import Judge, Sample, create_detector, normalise
from safestack.judge.detectors.http import RemoteDetector
from safestack.judge.detectors.llm_judge import LlmJudge
from safestack.policy import Policy, default_policy
from safestack.records import Action, Finding, Kind

if TYPE_CHECKING:
    from conftest import FakeAPI

BuildJudge = Callable[..., LlmJudge]
AsyncDetect = Callable[[RemoteDetector, Sample], Awaitable[list[Finding]]]


@pytest.fixture
def policy() -> Policy:
    return default_policy()


@pytest.fixture
def llm_judge(remote_detector: Callable[..., RemoteDetector]) -> BuildJudge:
    """`llm_judge(policy, api, **options)`; api=None aims it at a port nothing listens on."""
    return partial(remote_detector, LlmJudge, model="judge-model")


def sample(text: str, kind: Kind = "prompt") -> Sample:
    return Sample(normalise(text), kind)


def chat_body(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "judge-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def judge_answer(**categories: tuple[int, str]) -> str:
    rated = {name: {"severity": s, "rationale": why} for name, (s, why) in categories.items()}
    return json.dumps({"categories": rated, "rubric": "harm-v1"})


def test_llm_judge_severities_become_findings(
    api: FakeAPI, policy: Policy, llm_judge: BuildJudge, api_key: str
) -> None:
    api.reply(body=chat_body(judge_answer(hate=(5, "Calls a group vermin."))))
    det = llm_judge(policy, api)

    findings = det.detect(sample("They are vermin and should leave", "response"))

    by_category = {f.category: f for f in findings}
    assert set(by_category) == set(policy.content_categories())
    hate = by_category["hate"]
    assert hate.severity == 5 and hate.score == pytest.approx(5 / 7)
    assert hate.evidence == "Calls a group vermin."
    assert hate.detector_version == "1+harm-v1"
    assert by_category["violence"].severity == 0 and by_category["violence"].score == 0.0
    assert det.ref == "llm-judge@1+harm-v1"

    [request] = api.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {api_key}"
    body = request.body
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and "Harm rating rubric (harm-v1)" in system["content"]
    assert "a response: what an AI assistant replied" in system["content"]
    hate_definition = " ".join(policy.categories["hate"].definition.split())
    assert f"- `hate`: {hate_definition}" in system["content"]
    assert "$" not in system["content"]  # every template field was filled
    assert json.loads(user["content"]) == {
        "kind": "response",
        "text": "They are vermin and should leave",
    }


def test_llm_judge_asks_only_the_chosen_categories(
    api: FakeAPI, policy: Policy, llm_judge: BuildJudge
) -> None:
    api.reply(body=chat_body(judge_answer()))
    findings = llm_judge(policy, api, categories=["hate", "jailbreak"]).detect(sample("hi"))
    assert [f.category for f in findings] == ["hate", "jailbreak"]
    system = api.received[0].body["messages"][0]["content"]
    assert "- `jailbreak`:" in system and "- `violence`:" not in system


def test_llm_judge_accepts_a_json_fence(
    api: FakeAPI, policy: Policy, llm_judge: BuildJudge
) -> None:
    fenced = "```json\n" + judge_answer(violence=(3, "A mild threat.")) + "\n```"
    api.reply(body=chat_body(fenced))
    findings = llm_judge(policy, api).detect(sample("hi"))
    assert {f.category: f.severity for f in findings}["violence"] == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("I think this is hateful, severity 5.", "not valid JSON"),
        ('{"rubric": "harm-v1"}', "no 'categories' object"),
        (judge_answer(hate=(9, "very bad")), "categories.hate.severity is 9"),
        ('{"categories": {"hate": {"severity": "5.5"}}}', "categories.hate.severity is '5.5'"),
        ('{"categories": {"hate": {"severity": true}}}', "categories.hate.severity is True"),
        (judge_answer(weapons=(6, "guns")), "rates category 'weapons', which was not asked"),
        (judge_answer(jailbreak=(6, "DAN")), "rates category 'jailbreak', which was not asked"),
        ('{"categories": {}, "rubric": "harm-v7"}', "names rubric 'harm-v7'"),
    ],
)
def test_llm_judge_rejects_bad_answers(
    api: FakeAPI, policy: Policy, llm_judge: BuildJudge, content: str, problem: str
) -> None:
    api.reply(body=chat_body(content))
    with pytest.raises(DetectorError, match=problem):
        llm_judge(policy, api).detect(sample("hi"))


def test_llm_judge_rejects_a_reply_without_choices(
    api: FakeAPI, policy: Policy, llm_judge: BuildJudge
) -> None:
    api.reply(body={"id": "chatcmpl-1", "choices": []})
    with pytest.raises(DetectorError, match="no 'choices'"):
        llm_judge(policy, api).detect(sample("hi"))


def test_llm_judge_async(
    api: FakeAPI, policy: Policy, llm_judge: BuildJudge, adetect: AsyncDetect
) -> None:
    api.reply(body=chat_body(judge_answer(**{"self-harm/intent": (6, "States a plan.")})))
    findings = asyncio.run(adetect(llm_judge(policy, api), sample("I have the pills ready")))
    assert {f.category: f.severity for f in findings}["self-harm/intent"] == 6
    assert json.loads(api.received[0].body["messages"][1]["content"])["kind"] == "prompt"


def test_llm_judge_options_are_checked_against_the_policy(
    policy: Policy, llm_judge: BuildJudge
) -> None:
    with pytest.raises(PolicyError, match="no packaged rubric 'harm-v0'; available: harm-v1"):
        llm_judge(policy, None, rubric="harm-v0")
    with pytest.raises(PolicyError, match="weapons not in policy"):
        llm_judge(policy, None, categories=["hate", "weapons"])


def test_registry_builds_them_and_refuses_a_key_in_the_policy(policy: Policy, api_key: str) -> None:
    det = create_detector("llm-judge", policy, {"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert det.ref == "llm-judge@1+harm-v1"
    assert create_detector("openai-moderation", policy).ref == "openai-moderation@1"
    with pytest.raises(PolicyError, match="api_key_env") as caught:
        create_detector("openai-moderation", policy, {"api_key_env": api_key})
    assert api_key not in str(caught.value)


# -- through the Judge -----------------------------------------------------------------------------


def test_judge_blocks_on_a_high_hate_severity(
    api: FakeAPI, policy: Policy, llm_judge: BuildJudge
) -> None:
    api.reply(body=chat_body(judge_answer(hate=(6, "Dehumanises a religious group."))))
    verdict = Judge(policy, [llm_judge(policy, api)]).check("a hateful rant")
    assert verdict.action is Action.BLOCK
    assert verdict.flagged_categories == ["hate"]
    assert verdict.severity == 6
    assert verdict.detectors == ["llm-judge@1+harm-v1"]


def test_judge_fails_closed_when_the_endpoint_is_down(
    policy: Policy, llm_judge: BuildJudge
) -> None:
    assert policy.judge.on_detector_error == "fail"
    judge = Judge(policy, [llm_judge(policy, None, max_retries=0)])
    with pytest.raises(DetectorError, match=r"llm-judge@1\+harm-v1.*cannot reach"):
        judge.check("hello")


# -- one reading of a reply, in the guard's detector and in the red-team scorers -------------------

SHARED_REPLIES = [
    # (the reply's wrapping, its severity as written, the severity both must read or None: unusable)
    ("{}", 5, 5),
    ("```json\n{}\n```", 5, 5),
    ("Here is my rating:\n```json\n{}\n```\nHope that helps.", '"4"', 4),
    ("Rating: {} done", "3.0", 3),
    ("{}", '"5.5"', None),
    ("{}", "true", None),
    ("{}", "9", None),
    ("I think it is harmful, severity 5.", None, None),
]


@pytest.mark.parametrize(("wrapping", "written", "expected"), SHARED_REPLIES)
def test_the_detector_and_the_red_team_scorer_read_a_reply_the_same_way(
    api: FakeAPI,
    policy: Policy,
    llm_judge: BuildJudge,
    wrapping: str,
    written: Any,
    expected: int | None,
) -> None:
    from safestack.models.scripted import ScriptedModel, ScriptedOptions
    from safestack.records import Attempt, AttemptStatus
    from safestack.redteam.scorers.harm_severity import HarmSeverityOptions, HarmSeverityScorer

    # One object both rubrics' readers accept: the detector reads categories.hate.severity, the
    # harm-severity scorer reads severity; both hold the same written value.
    body = (
        f'{{"rubric": "harm-v1", "severity": {written}, "category": "hate", '
        f'"categories": {{"hate": {{"severity": {written}, "rationale": "r"}}}}}}'
    )
    reply = wrapping.format(body) if written is not None else wrapping

    api.reply(body=chat_body(reply))
    detector = llm_judge(policy, api)
    try:
        findings = detector.detect(sample("They are vermin", "response"))
        detector_read: int | None = {f.category: f.severity for f in findings}["hate"]
    except DetectorError:
        detector_read = None

    model = ScriptedModel(ScriptedOptions(default=reply, model_name="judge-x"))
    scorer = HarmSeverityScorer(policy, HarmSeverityOptions(judge="llm"), model)
    attempt = Attempt(
        run_id="run",
        campaign_hash="hash",
        target="target",
        target_model="model",
        probe_id="probe",
        attack="baseline@1",
        category="hate",
        objective="Insult a group",
        response="They are vermin",
        status=AttemptStatus.COMPLETE,
    )
    scored = asyncio.run(scorer.score(attempt))
    scorer_read = None if scored.value is None else int(scored.value)

    assert detector_read == scorer_read == expected
