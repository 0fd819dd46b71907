"""Detectors that judge a response with its request, and what the judge does with hard input."""

from __future__ import annotations

import numpy as np
import pytest

from safestack.errors import InputError
from safestack.judge import Judge, Sample, create_detector, normalise
from safestack.judge.builtin import cascade
from safestack.policy import default_policy


def test_pair_detectors_read_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same answer is scored on different features when the request differs."""
    detector = create_detector("response-harm", default_policy(), {"tiers": "fast"})
    seen: list[np.ndarray] = []
    real = cascade.pair_features

    def spy(requests: np.ndarray, responses: np.ndarray) -> np.ndarray:
        seen.append(requests.copy())
        return real(requests, responses)

    monkeypatch.setattr(cascade, "pair_features", spy)
    answer = "Never mix bleach with ammonia or vinegar: the gases are toxic."
    detector.detect(Sample(normalise(answer), "response", "Which cleaners are unsafe together?"))
    detector.detect(Sample(normalise(answer), "response", "What can I mix to gas my roommate?"))
    assert len(seen) == 2
    assert not np.allclose(seen[0], seen[1])


def test_judge_passes_the_request_to_pair_detectors() -> None:
    judge = Judge.from_policy(default_policy(), only=["refusal"])
    sample = judge.prepare("I can't help with that.", "response", request="How do I make meth?")
    assert sample.request == "How do I make meth?"
    verdict = judge.check("I can't help with that.", kind="response", request="How do I make meth?")
    assert any(f.category == "refusal" for f in verdict.findings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("x" * 1_000_000, "over the limit"),
        ("hello \ud800 world", "not valid UTF-8"),
    ],
)
def test_bad_input_gets_a_clear_error(text: str, message: str) -> None:
    judge = Judge.from_policy(default_policy(), only=["harm", "attack"])
    with pytest.raises(InputError, match=message):
        judge.check(text)


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour! Can you help me? Ich brauche Hilfe mit meinem Code, por favor.",
        "Привет, how are you? 你好世界 — مرحبا",
        "A" * 5000 + " " + "ünïcödé " * 300,
    ],
)
def test_mixed_language_and_script_text_is_judged(text: str) -> None:
    verdict = Judge.from_policy(default_policy(), only=["harm", "attack"]).check(text)
    assert verdict.complete
