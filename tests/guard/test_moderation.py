"""Moderation of inputs and outputs under the policy: redact, block, and fail closed on errors."""

from __future__ import annotations

from typing import ClassVar

import pytest
from guard_harness import PATTERN_DETECTORS, chat, policy_with

from safestack.errors import DetectorError, PolicyError
from safestack.guard import Guard
from safestack.guard.redact import Redaction, apply, redactions
from safestack.judge import Detector, Judge, Sample
from safestack.policy import default_policy, parse_policy
from safestack.records import Action, Finding, Span, Verdict


def test_personal_data_in_a_request_is_replaced_by_typed_placeholders(pattern_guard: Guard) -> None:
    text = (
        "Please email my landlord at john.smith@example.com about the leak; "
        "my SSN is 123-45-6789 and my card is 4111 1111 1111 1111."
    )
    decision = pattern_guard.check_input(chat(text))
    assert decision.action is Action.REDACT and decision.forward
    forwarded = {m.origin: m for m in decision.messages}[1]
    assert "redacted" in forwarded.changes
    content = forwarded.message.content
    for raw in ("john.smith@example.com", "123-45-6789", "4111 1111 1111 1111"):
        assert raw not in content
    assert content == (
        "Please email my landlord at [EMAIL_ADDRESS] about the leak; "
        "my SSN is [US_SSN] and my card is [CREDIT_CARD]."
    )
    reason = next(r for r in decision.reasons if r.category == "privacy")
    assert reason.action is Action.REDACT and reason.index == 1


def test_personal_data_in_an_output_is_redacted(pattern_guard: Guard) -> None:
    decision = pattern_guard.check_output(
        chat("Who do I contact?"), "Write to maria.garcia@example.org or call 415-555-0134."
    )
    assert decision.action is Action.REDACT
    assert decision.text == "Write to [EMAIL_ADDRESS] or call [PHONE_NUMBER]."


def test_overlapping_spans_merge_under_the_most_confident_label() -> None:
    def privacy(start: int, end: int, score: float, label: str) -> Finding:
        return Finding(
            category="privacy",
            score=score,
            severity=3,
            detector="test",
            detector_version="0",
            span=Span(start=start, end=end),
            label=label,
        )

    verdict = Verdict(
        flagged=True,
        action=Action.REDACT,
        severity=3,
        findings=[
            privacy(4, 15, 0.75, "PHONE_NUMBER"),
            privacy(4, 15, 0.95, "US_SSN"),
            privacy(20, 24, 0.3, "PERSON"),  # under the threshold: kept
        ],
        policy="test@0",
    )
    spans = redactions(verdict, default_policy())
    assert spans == [Redaction(4, 15, "US_SSN")]
    assert apply("SSN 123-45-6789 for Anna", spans) == "SSN [US_SSN] for Anna"


def test_a_harmful_output_is_blocked_by_the_default_guard(guard: Guard) -> None:
    decision = guard.check_output(chat("Tell me something."), "I will kill you and your family.")
    assert decision.action is Action.BLOCK
    assert decision.text == guard.settings.messages.block
    assert "harassment/threatening" in decision.flagged_categories


def test_an_ordinary_exchange_passes_the_default_guard(guard: Guard) -> None:
    conversation = chat("How do I reset my Acme router to factory settings?")
    decision = guard.check_input(conversation)
    assert decision.action is Action.ALLOW and decision.forward
    output = "Hold the reset button on the back for thirty seconds until the light blinks."
    result = guard.check_output(conversation, output, decision.context)
    assert result.action is Action.ALLOW and result.text == output


def test_attack_text_in_a_response_is_reported_not_blocked(pattern_guard: Guard) -> None:
    output = "Attackers often write 'ignore all previous instructions' in web pages."
    decision = pattern_guard.check_output(chat("What is prompt injection?"), output)
    assert decision.action is Action.FLAG and decision.text == output
    reason = next(r for r in decision.reasons if r.category == "prompt-injection")
    assert "reported, not acted on" in reason.detail


# -- detector errors: fail closed -------------------------------------------------------------
class Broken(Detector):
    name: ClassVar[str] = "broken"
    version: ClassVar[str] = "0"

    def detect(self, sample: Sample) -> list[Finding]:
        raise DetectorError(self.name, "model server unreachable")


class Buggy(Broken):
    name: ClassVar[str] = "buggy"

    def detect(self, sample: Sample) -> list[Finding]:
        raise RuntimeError("a bug, not a verdict")


def guard_with_broken(on_error: str = "block") -> Guard:
    detectors = dict(PATTERN_DETECTORS, user=["broken", "rules"], output=["broken", "rules"])
    policy = policy_with(on_error=on_error, detectors=detectors)
    return Guard(policy, Judge(policy, [Broken(policy)]))


def test_a_detector_error_blocks_the_request_by_default() -> None:
    decision = guard_with_broken().check_input(chat("How do I reset my router?"))
    assert decision.action is Action.BLOCK and not decision.forward and not decision.messages
    reason = next(r for r in decision.reasons if r.check == "detector-error")
    assert reason.detector == "broken@0" and "model server unreachable" in reason.detail
    assert reason.action is Action.BLOCK and reason.index == 1
    assert not decision.verdicts[0].verdict.complete


def test_allow_with_flag_lets_the_request_through_flagged() -> None:
    decision = guard_with_broken("allow-with-flag").check_input(chat("How do I reset my router?"))
    assert decision.action is Action.FLAG and decision.forward
    assert any(r.check == "detector-error" and r.action is Action.FLAG for r in decision.reasons)


def test_a_detector_error_blocks_outputs_and_streams() -> None:
    guard = guard_with_broken()
    decision = guard.check_output(chat("Hi"), "Hello! How can I help?")
    assert decision.action is Action.BLOCK and decision.text == guard.settings.messages.block
    stream = guard.stream()
    released = "".join(stream.feed(c) for c in ["Hello there, this is a long answer. "] * 6)
    end = stream.finish()
    assert released == "" and end.finish_reason == "content_filter"
    assert any(r.check == "detector-error" for r in end.reasons)


def test_an_unexpected_exception_is_raised_never_read_as_safe() -> None:
    detectors = dict(PATTERN_DETECTORS, user=["buggy"])
    policy = policy_with(detectors=detectors)
    guard = Guard(policy, Judge(policy, [Buggy(policy)]))
    with pytest.raises(RuntimeError, match="a bug"):
        guard.check_input(chat("Hello"))


def test_policy_errors_name_the_guard_field() -> None:
    with pytest.raises(PolicyError, match=r"guard.detectors.user\[1\]: unknown detector 'nope'"):
        Guard(policy_with(detectors=dict(PATTERN_DETECTORS, user=["rules", "nope"])))
    data = default_policy().model_dump(mode="json")
    data["guard"]["corroborate"] = ["jailbrake"]
    with pytest.raises(PolicyError, match=r"guard\.corroborate names unknown categories"):
        parse_policy(data)
    data = default_policy().model_dump(mode="json")
    data["guard"]["elections"]["redirects"].pop("default")
    with pytest.raises(PolicyError, match="needs a 'default' entry"):
        parse_policy(data)


def test_a_policy_without_a_guard_section_still_loads() -> None:
    data = default_policy().model_dump(mode="json")
    del data["guard"]
    policy = parse_policy(data)
    assert policy.guard.on_error == "block"
    assert policy.guard.detectors_for("user") == ["rules", "attack", "harm", "pii", "elections"]
