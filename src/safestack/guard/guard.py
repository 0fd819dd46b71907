"""The Guard: checks a conversation before it reaches the model, and the model's output after.

`check_input()` judges every message under the detectors of its scope (and the recent user turns
together), decides one action, and returns the messages to forward: untrusted content spotlighted,
personal data redacted, a canary planted in the system prompt. `check_output()` judges a complete
output and looks for system-prompt leaks; `stream()` does the same incrementally (`stream.py`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from safestack.guard.assessment import Assessment, assess
from safestack.guard.decision import (
    ForwardedMessage,
    GuardContext,
    HistoryVerdict,
    InputDecision,
    MessageVerdict,
    OutputDecision,
    Reason,
)
from safestack.guard.forward import rewrite
from safestack.guard.hierarchy import (
    effective_trust,
    is_privileged,
    latest_turn,
    recent_user_turns,
    scope_of,
)
from safestack.guard.output import FORWARDED, OutputCheck, replacement_text
from safestack.guard.scanning import Job, Scanner
from safestack.guard.stream import OutputStream
from safestack.judge import Judge
from safestack.judge.normalise import Normalised
from safestack.policy import Policy, default_policy
from safestack.policy.model import GuardScope
from safestack.records import Action, Conversation, Message, Role, Trust, Verdict

if TYPE_CHECKING:
    from safestack.judge.builtin import BuiltinModels


@dataclass(slots=True)
class _Target:
    """What one scan job judged: a message, or the recent user turns together."""

    scope: GuardScope
    trust: Trust
    indices: list[int]
    normalised: Normalised
    latest: bool


@dataclass(slots=True)
class _Plan:
    conversation: Conversation
    locale: str | None
    jobs: list[Job] = field(default_factory=list)
    targets: list[_Target] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


class Guard:
    """The runtime pipeline under one policy. Thread-safe; share one per process.

    `judge`, when given, supplies detector instances by name (its policy is not used); detectors the
    policy's `guard.detectors` names and the judge lacks are built from the policy, on `models`
    (the owner's loaded built-in models; `judge.builtin.default_models()` when not given).
    """

    def __init__(
        self,
        policy: Policy,
        judge: Judge | None = None,
        *,
        models: BuiltinModels | None = None,
    ):
        self.policy = policy
        self.settings = policy.guard
        self._scanner = Scanner(policy, judge, models=models)
        self._output = OutputCheck(policy, self._scanner)

    @classmethod
    def default(cls, *, models: BuiltinModels | None = None) -> Guard:
        return cls(default_policy(), models=models)

    def warm_up(self) -> None:
        """Load every detector's models now rather than on the first request."""
        conversation = Conversation(
            messages=[
                Message(role=Role.SYSTEM, content="You are a helpful assistant."),
                Message(
                    role=Role.USER, content="Hello, my email is a@example.com. Where do I vote?"
                ),
                Message(role=Role.TOOL, content="Result: 42 rows."),
                Message(role=Role.USER, content="Thanks!"),
            ]
        )
        decision = self.check_input(conversation)
        self.check_output(conversation, "Hello! Glad to help.", decision.context)

    # -- input -------------------------------------------------------------------------------
    def check_input(
        self, conversation: Conversation, *, locale: str | None = None
    ) -> InputDecision:
        """Judge the conversation; say whether to forward it, and what to forward."""
        plan = self._plan(conversation, locale)
        return self._decide_input(plan, self._scanner.run(plan.jobs))

    async def acheck_input(
        self, conversation: Conversation, *, locale: str | None = None
    ) -> InputDecision:
        plan = self._plan(conversation, locale)
        return self._decide_input(plan, await self._scanner.arun(plan.jobs))

    def _plan(self, conversation: Conversation, locale: str | None) -> _Plan:
        plan = _Plan(conversation, locale or conversation.metadata.get("locale"))
        messages = conversation.messages
        latest = latest_turn(messages)
        for index, message in enumerate(messages):
            scope = scope_of(message)
            sample = self._scanner.prepare(
                scope, message.content, field=f"messages[{index}].content"
            )
            if sample is None:
                continue
            plan.jobs.append(Job(scope, sample))
            plan.targets.append(
                _Target(
                    scope,
                    effective_trust(message),
                    [index],
                    sample.normalised,
                    latest is None or index >= latest,
                )
            )
        turns = recent_user_turns(messages, self.settings.history_turns)
        if len(turns) >= 2:
            limit = self.policy.judge.max_input_chars
            joined = " ".join(messages[i].content.strip() for i in turns)[-limit:]
            sample = self._scanner.prepare("history", joined, field="messages")
            if sample is not None:
                plan.jobs.append(Job("history", sample))
                plan.targets.append(_Target("history", Trust.USER, turns, sample.normalised, False))
        return plan

    def _decide_input(self, plan: _Plan, verdicts: list[Verdict]) -> InputDecision:
        messages = plan.conversation.messages
        action = Action.ALLOW
        reasons: list[Reason] = []
        per_message: list[MessageVerdict] = []
        history: HistoryVerdict | None = None
        assessed: dict[int, tuple[Assessment, Verdict]] = {}
        redirect_category: str | None = None
        for target, verdict in zip(plan.targets, verdicts, strict=True):
            history_turn = target.scope == "history"
            result = assess(
                verdict,
                self.policy,
                scope=target.scope,
                trust=target.trust,
                texts=[target.normalised],
                index=None if history_turn else target.indices[0],
                latest=target.latest,
            )
            if history_turn:
                result.reasons = _new_in_history(result.reasons, reasons, target.indices)
                result.action = max(
                    (r.action for r in result.reasons), key=lambda a: a.rank, default=Action.ALLOW
                )
                history = HistoryVerdict(
                    indices=target.indices, action=result.action, verdict=verdict
                )
            else:
                index = target.indices[0]
                assessed[index] = (result, verdict)
                per_message.append(
                    MessageVerdict(
                        index=index,
                        role=messages[index].role,
                        trust=target.trust,
                        scope=target.scope,
                        action=result.action,
                        verdict=verdict,
                    )
                )
            reasons.extend(result.reasons)
            if result.action.rank > action.rank:
                action = result.action
            if result.action is Action.REDIRECT and redirect_category is None:
                redirect_category = result.redirect_category
        context = GuardContext(locale=plan.locale, request=last_request(messages))
        forwarded: list[ForwardedMessage] = []
        response = None
        if action in FORWARDED:
            forwarded, context = rewrite(messages, assessed, self.policy, context)
        else:
            response = replacement_text(self.settings, action, redirect_category, plan.locale)
        return InputDecision(
            request_id=context.request_id,
            policy=self.policy.ref,
            action=action,
            forward=action in FORWARDED,
            messages=forwarded,
            verdicts=per_message,
            history=history,
            reasons=reasons,
            response=response,
            latency_ms=round((time.perf_counter() - plan.started) * 1000, 3),
            context=context,
        )

    # -- output ------------------------------------------------------------------------------
    def context_for(self, conversation: Conversation, *, locale: str | None = None) -> GuardContext:
        """A context for checking an output without `check_input()` (no canary was planted)."""
        return GuardContext(
            locale=locale or conversation.metadata.get("locale"),
            protected=tuple(m.content for m in conversation.messages if is_privileged(m)),
            request=last_request(conversation.messages),
        )

    def check_output(
        self, conversation: Conversation, output_text: str, context: GuardContext | None = None
    ) -> OutputDecision:
        """Judge a complete output; say what to send the client."""
        if context is None:
            context = self.context_for(conversation)
        return self._output.check(context, output_text)

    async def acheck_output(
        self, conversation: Conversation, output_text: str, context: GuardContext | None = None
    ) -> OutputDecision:
        if context is None:
            context = self.context_for(conversation)
        return await self._output.acheck(context, output_text)

    def stream(
        self, context: GuardContext | None = None, conversation: Conversation | None = None
    ) -> OutputStream:
        """A streaming checker for one response: `feed(chunk) -> str`, then `finish() -> StreamEnd`."""
        if context is None:
            context = self.context_for(conversation) if conversation is not None else GuardContext()
        return OutputStream(self._output, context)


def last_request(messages: Sequence[Message]) -> str | None:
    """The last user message: what the model's answer will be judged against."""
    for message in reversed(messages):
        if message.role is Role.USER and message.content.strip():
            return message.content
    return None


def _new_in_history(found: list[Reason], earlier: list[Reason], indices: list[int]) -> list[Reason]:
    """Reasons from the turns read together that no single one of those turns already gave."""
    strongest: dict[str, int] = {}
    for reason in earlier:
        if reason.index in indices and reason.category is not None:
            strongest[reason.category] = max(strongest.get(reason.category, -1), reason.action.rank)
    return [
        r
        for r in found
        if r.check != "moderation"
        or r.category is None
        or r.action.rank > strongest.get(r.category, -1)
    ]
