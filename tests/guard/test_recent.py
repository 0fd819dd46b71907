"""A chat resends its earlier turns: the guard gives them the verdicts it gave before, without
running the detectors again, when every detector of the scope is deterministic."""

from __future__ import annotations

from typing import ClassVar

from guard_harness import chat, policy_with

from safestack.guard import Guard
from safestack.judge import Judge, Sample
from safestack.judge.detectors.rules import RulesDetector
from safestack.records import Finding, Message, Role

DETECTORS = {scope: ["rules"] for scope in ("user", "assistant", "history", "output")}
EARLIER = "Please write to bob.smith@example.com about my order."


class CountingRules(RulesDetector):
    """The rules detector, counting the texts it reads."""

    seen: ClassVar[list[str]]

    def detect(self, sample: Sample) -> list[Finding]:
        type(self).seen.append(sample.normalised.original)
        return super().detect(sample)


class RemoteRules(CountingRules):
    deterministic = False  # as an HTTP judge would be


def guard_with(detector_class: type[CountingRules]) -> Guard:
    detector_class.seen = []
    policy = policy_with(detectors=DETECTORS)
    return Guard(policy, Judge(policy, [detector_class(policy)]))


def conversation(latest: str) -> list[Message | str]:
    return [EARLIER, Message(role=Role.ASSISTANT, content="Done. Anything else?"), latest]


def test_earlier_turns_get_their_verdicts_again_without_being_judged_again() -> None:
    guard = guard_with(CountingRules)
    first = guard.check_input(chat(*conversation("Thanks! (ticket 1)")))
    guard.check_output(chat(*conversation("Thanks! (ticket 1)")), "You're welcome.", first.context)
    CountingRules.seen.clear()
    second = guard.check_input(chat(*conversation("Thanks! (ticket 2)")))
    # Only the new turn and the new recent-history join are read; the earlier ones are remembered.
    assert CountingRules.seen == ["Thanks! (ticket 2)", f"{EARLIER} Thanks! (ticket 2)"]
    earlier = [r for r in first.reasons if r.scope == "user" and r.index == 1]
    assert earlier and earlier == [r for r in second.reasons if r.scope == "user" and r.index == 1]
    assert [v.model_dump() for v in second.verdicts[:2]] == [
        v.model_dump() for v in first.verdicts[:2]
    ]


def test_a_scope_with_a_detector_that_is_not_deterministic_is_judged_every_time() -> None:
    guard = guard_with(RemoteRules)
    for ticket in (1, 2):
        guard.check_input(chat(*conversation(f"Thanks! (ticket {ticket})")))
    assert RemoteRules.seen.count(EARLIER) == 2
