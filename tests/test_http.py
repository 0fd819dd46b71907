"""The one retry decision (`safestack.http.RetryPolicy.decide`), seen through both callers that
retry: the judge's remote detectors and the red-team runner's `GatedModel`. The same answers from
a real HTTP server must make both wait the same times, or give up alike."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fake_api import FakeAPI, serving
from safestack.errors import DetectorError
from safestack.judge import Sample, normalise
from safestack.judge.detectors.openai_moderation import OpenAIModeration
from safestack.models import GenerationSettings, ModelError, create_model
from safestack.policy import default_policy
from safestack.records import Message, Role
from safestack.redteam.campaign import Retries
from safestack.redteam.runner import GatedModel, Spend

MODERATION_OK = {"results": [{"flagged": False, "categories": {}, "category_scores": {}}]}
CHAT_OK = {
    "model": "target-1",
    "choices": [{"message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
}
HELLO = [Message(role=Role.USER, content="hello")]


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff jitter at its top: each backoff is exactly `backoff * 2**retry`."""
    monkeypatch.setattr("safestack.http.random.uniform", lambda low, high: high)


def queue_failures(api: FakeAPI, retry_after: str, success: dict[str, Any]) -> None:
    api.reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": retry_after})
    api.reply(503, {"error": {"message": "overloaded"}})
    api.reply(body=success)


def detector_waits(
    monkeypatch: pytest.MonkeyPatch, retry_after: str, **options: Any
) -> tuple[list[float], int, str | None]:
    """Waits of the openai-moderation detector, its request count and its error, if any."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    with serving() as api:
        queue_failures(api, retry_after, MODERATION_OK)
        det = OpenAIModeration(
            default_policy(),
            OpenAIModeration.Options(base_url=api.base_url, api_key_env=None, **options),
        )
        api.detectors.append(det)
        try:
            det.detect(Sample(normalise("hello")))
            error = None
        except DetectorError as exc:
            error = str(exc)
        return waits, len(api.received), error


def runner_waits(retry_after: str, retries: Retries) -> tuple[list[float], int, str | None]:
    """Waits of the red-team runner calling an `openai` target, its request count and error."""
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def call(base_url: str) -> None:
        target = create_model("openai", {"base_url": base_url, "model": "target-1"})
        gated = GatedModel(target, Spend(None, None), retries, 10.0, sleep=fake_sleep)
        try:
            await gated.complete(HELLO, GenerationSettings())
        finally:
            await gated.aclose()

    with serving() as api:
        queue_failures(api, retry_after, CHAT_OK)
        try:
            asyncio.run(call(api.base_url))
            error = None
        except ModelError as exc:
            error = str(exc)
        return waits, len(api.received), error


def test_detector_and_runner_wait_alike_for_retry_after_then_a_server_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 429 asking for 2 s: wait 2 s, even though the first backoff would be 4 s; 503 without
    # Retry-After: the second backoff, 4 * 2 = 8 s; then the answer.
    judged = detector_waits(monkeypatch, "2", max_retries=2, backoff=4, max_backoff=30)
    ran = runner_waits("2", Retries(attempts=3, backoff_s=4, max_backoff_s=30))
    assert judged == ran == ([2.0, 8.0], 3, None)


def test_detector_and_runner_give_up_alike_when_retry_after_is_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judged = detector_waits(monkeypatch, "120", max_retries=2, backoff=0.5, max_backoff=5)
    ran = runner_waits("120", Retries(attempts=3, backoff_s=0.5, max_backoff_s=5))
    assert judged[:2] == ran[:2] == ([], 1)  # one request, no wait: the error comes at once
    assert "asked to retry after 120s, longer than max_backoff=5s" in (judged[2] or "")
    assert "asked to retry after 120 s, longer than the campaign's retries.max_backoff_s=5 s" in (
        ran[2] or ""
    )
