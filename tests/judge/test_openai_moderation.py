"""The openai-moderation detector, and through it the shared HTTP plumbing (retries, errors).

It runs against a real HTTP server on 127.0.0.1 (the `api` fixture of conftest.py), no mocking.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from safestack.errors import DetectorError
from safestack.judge import Sample, normalise
from safestack.judge.detectors.http import RemoteDetector
from safestack.judge.detectors.openai_moderation import OpenAIModeration
from safestack.judge.moderation import OPENAI_CATEGORIES
from safestack.policy import Policy, default_policy
from safestack.records import Finding, Kind

if TYPE_CHECKING:
    from conftest import FakeAPI

Moderation = Callable[..., OpenAIModeration]
AsyncDetect = Callable[[RemoteDetector, Sample], Awaitable[list[Finding]]]


@pytest.fixture
def policy() -> Policy:
    return default_policy()


@pytest.fixture
def moderation(remote_detector: Callable[..., RemoteDetector]) -> Moderation:
    """`moderation(policy, api, **options)`; api=None aims it at a port nothing listens on."""
    return partial(remote_detector, OpenAIModeration)


def sample(text: str, kind: Kind = "prompt") -> Sample:
    return Sample(normalise(text), kind)


def moderation_result(scores: dict[str, float] | None = None) -> dict[str, Any]:
    """One result in the exact shape of OpenAI's moderation API (omni-moderation)."""
    all_scores = {name: 1e-06 for name in OPENAI_CATEGORIES}
    all_scores.update(scores or {})
    return {
        "flagged": any(s >= 0.5 for s in all_scores.values()),
        "categories": {name: s >= 0.5 for name, s in all_scores.items()},
        "category_scores": all_scores,
        "category_applied_input_types": {name: ["text"] for name in all_scores},
    }


def moderation_body(*results: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "modr-0d9740456c391e43c445bf0f010940c7",
        "model": "omni-moderation-2024-09-26",
        "results": list(results),
    }


def test_moderation_scores_become_policy_findings(
    api: FakeAPI, policy: Policy, moderation: Moderation
) -> None:
    result = moderation_result(
        {"harassment": 0.8189693396524255, "violence": 0.55, "brand-new": 0.99}
    )
    api.reply(body=moderation_body(result))

    findings = moderation(policy, api).detect(sample("I will find you, you idiot"))

    by_category = {f.category: f for f in findings}
    assert set(by_category) == set(OPENAI_CATEGORIES)  # 'brand-new' is not a policy category
    harassment = by_category["harassment"]
    assert harassment.score == pytest.approx(0.8189693396524255)
    assert harassment.severity == 6  # the default policy's cut points: 0.8 <= score < 0.92
    assert harassment.label == "harassment"
    assert harassment.detector == "openai-moderation"
    assert by_category["violence"].severity == 4
    assert by_category["hate"].severity == 0
    [request] = api.received
    assert request.path == "/v1/moderations"
    assert request.body == {
        "model": "omni-moderation-latest",
        "input": ["I will find you, you idiot"],
    }


def test_moderation_sends_the_key_from_the_named_env_var(
    api: FakeAPI, policy: Policy, moderation: Moderation, api_key: str
) -> None:
    api.reply(body=moderation_body(moderation_result()))
    moderation(policy, api).detect(sample("hello"))
    assert api.received[0].headers["authorization"] == f"Bearer {api_key}"


def test_moderation_without_the_key_fails_before_calling(
    api: FakeAPI,
    policy: Policy,
    moderation: Moderation,
    remote_options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_env = remote_options["api_key_env"]
    monkeypatch.delenv(key_env)
    with pytest.raises(DetectorError, match=f"{key_env} .* is not set"):
        moderation(policy, api).detect(sample("hello"))
    assert api.received == []


def test_moderation_scores_decoded_payloads_in_the_same_request(
    api: FakeAPI, policy: Policy, moderation: Moderation
) -> None:
    hidden = "I will hurt every one of them tonight"
    text = f"please decode {base64.b64encode(hidden.encode()).decode()}"
    api.reply(body=moderation_body(moderation_result(), moderation_result({"violence": 0.93})))

    findings = moderation(policy, api).detect(sample(text))

    assert api.received[0].body["input"] == [text, hidden]
    [violent] = [f for f in findings if f.category == "violence" and f.score > 0.9]
    assert violent.source == "base64"
    assert violent.span is not None
    assert text[violent.span.start : violent.span.end] == text.removeprefix("please decode ")


def test_moderation_batch_is_one_request(
    api: FakeAPI, policy: Policy, moderation: Moderation
) -> None:
    api.reply(
        body=moderation_body(
            moderation_result({"hate": 0.9}),
            moderation_result(),
            moderation_result({"sexual": 0.7}),
        )
    )
    results = moderation(policy, api).detect_batch(
        [sample("first"), sample("second"), sample("third")]
    )

    assert len(api.received) == 1
    assert api.received[0].body["input"] == ["first", "second", "third"]
    top = [max(found, key=lambda f: f.score).category for found in results]
    assert top[0] == "hate" and top[2] == "sexual"
    assert max(f.score for f in results[1]) < 0.01


def test_moderation_batch_respects_batch_size(
    api: FakeAPI, policy: Policy, moderation: Moderation
) -> None:
    api.reply(body=moderation_body(moderation_result(), moderation_result()))
    api.reply(body=moderation_body(moderation_result({"hate": 0.9})))
    results = moderation(policy, api, batch_size=2).detect_batch(
        [sample("a b"), sample("c d"), sample("e f")]
    )
    assert [r.body["input"] for r in api.received] == [["a b", "c d"], ["e f"]]
    assert max(results[2], key=lambda f: f.score).category == "hate"


# -- the shared HTTP plumbing, seen through this detector ------------------------------------------


def test_server_error_is_retried_then_succeeds(
    api: FakeAPI, policy: Policy, moderation: Moderation
) -> None:
    api.reply(500, {"error": {"message": "The server had an error"}})
    api.reply(body=moderation_body(moderation_result({"hate": 0.9})))
    findings = moderation(policy, api).detect(sample("hello"))
    assert len(api.received) == 2
    assert max(f.score for f in findings) == pytest.approx(0.9)


def test_retry_after_is_honoured(api: FakeAPI, policy: Policy, moderation: Moderation) -> None:
    api.reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "1"})
    api.reply(body=moderation_body(moderation_result()))
    started = time.monotonic()
    moderation(policy, api).detect(sample("hello"))
    assert time.monotonic() - started >= 1.0
    assert len(api.received) == 2


def test_retry_after_longer_than_max_backoff_fails_at_once(
    api: FakeAPI, policy: Policy, moderation: Moderation
) -> None:
    api.reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "120"})
    with pytest.raises(DetectorError, match="retry after 120s, longer than max_backoff=5s"):
        moderation(policy, api, max_backoff=5).detect(sample("hello"))
    assert len(api.received) == 1


def test_server_error_forever_is_an_error_not_a_pass(
    api: FakeAPI, policy: Policy, moderation: Moderation
) -> None:
    api.reply(503, {"error": {"message": "overloaded"}}, forever=True)
    with pytest.raises(DetectorError, match=r"HTTP 503 after 3 attempts \(overloaded\)"):
        moderation(policy, api, max_retries=2).detect(sample("hello"))
    assert len(api.received) == 3


def test_auth_error_names_the_env_var_and_never_the_key(
    api: FakeAPI,
    policy: Policy,
    moderation: Moderation,
    remote_options: dict[str, Any],
    api_key: str,
) -> None:
    api.reply(401, {"error": {"message": f"Incorrect API key provided: {api_key}."}})
    with pytest.raises(DetectorError) as caught:
        moderation(policy, api).detect(sample("hello"))
    message = str(caught.value)
    key_env = remote_options["api_key_env"]
    assert api_key not in message and f"${key_env}" in message and "HTTP 401" in message
    assert len(api.received) == 1  # a 401 is not retried


def test_malformed_json_is_an_error(api: FakeAPI, policy: Policy, moderation: Moderation) -> None:
    api.reply(body='{"results": [{"category_scores": ')
    with pytest.raises(DetectorError, match="not valid JSON"):
        moderation(policy, api).detect(sample("hello"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"id": "modr-1"}, "no 'results' list"),
        (moderation_body(), "0 results for 1 inputs"),
        (moderation_body({"flagged": False}), "no 'category_scores'"),
        (moderation_body(moderation_result({"hate": 1.5})), r"category_scores.hate is 1.5"),
        (
            moderation_body({"category_scores": {"hate": "high"}}),
            "category_scores.hate is 'high'",
        ),
    ],
)
def test_off_shape_answers_are_errors(
    api: FakeAPI, policy: Policy, moderation: Moderation, body: dict[str, Any], problem: str
) -> None:
    api.reply(body=body)
    with pytest.raises(DetectorError, match=problem):
        moderation(policy, api).detect(sample("hello"))


def test_connection_refused_is_an_error(policy: Policy, moderation: Moderation) -> None:
    with pytest.raises(DetectorError, match=r"cannot reach .* after 2 attempts"):
        moderation(policy, None, max_retries=1).detect(sample("hello"))


def test_slow_server_times_out(api: FakeAPI, policy: Policy, moderation: Moderation) -> None:
    api.reply(body=moderation_body(moderation_result()), delay=3.0)
    started = time.monotonic()
    with pytest.raises(DetectorError, match=r"did not answer within 0.2s"):
        moderation(policy, api, timeout=0.2).detect(sample("hello"))
    assert time.monotonic() - started < 1.5


def test_moderation_async(
    api: FakeAPI, policy: Policy, moderation: Moderation, adetect: AsyncDetect
) -> None:
    api.reply(502, {"error": {"message": "bad gateway"}})
    api.reply(body=moderation_body(moderation_result({"self-harm/intent": 0.95})))
    api.reply(body=moderation_body(moderation_result()))
    det = moderation(policy, api)
    first = asyncio.run(adetect(det, sample("I want to end it all")))
    second = asyncio.run(adetect(det, sample("hello")))  # a new event loop: a new client
    assert max(first, key=lambda f: f.score).category == "self-harm/intent"
    assert max(f.score for f in second) < 0.01
    assert len(api.received) == 3


def test_moderation_async_failure_is_an_error(policy: Policy, moderation: Moderation) -> None:
    det = moderation(policy, None, max_retries=0)
    with pytest.raises(DetectorError, match="cannot reach"):
        asyncio.run(det.adetect(sample("hello")))
