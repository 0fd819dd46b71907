"""A red-team target behind the guard, in process: the same model with safestack's mitigations.

`kind: guarded` wraps any chat model: the conversation goes through `Guard.check_input` (blocked
requests are answered by the guard, forwarded ones carry the instruction hierarchy's rewrites),
and the model's answer through `Guard.check_output`. Comparing a target with its guarded twin is
the pre- vs post-mitigation comparison; `kind: openai` against `safestack serve` measures the same
over HTTP. Registered on the models axis as a plugin (the `safestack.models` entry point
`guarded`, and on importing `safestack.guard`): models sit below the guard and never import it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from safestack.errors import RegistryError
from safestack.guard.guard import Guard
from safestack.judge.builtin import BuiltinModels
from safestack.models.base import (
    ChatModel,
    Completion,
    GenerationSettings,
    ModelOptions,
    create_model,
    model,
)
from safestack.policy import load_policy
from safestack.records import Action, Conversation, Message


class GuardedOptions(ModelOptions):
    target: dict[str, Any] = Field(description="The wrapped model: {kind: ..., options: {...}}.")
    policy: str | None = Field(default=None, description="Policy file (default: the built-in one).")


@model("guarded")
class GuardedModel(ChatModel):
    """The guard's detectors run on `models`, the red-team run's built-in models when it passes
    them (`judge.builtin.default_models()` otherwise)."""

    Options = GuardedOptions
    options: GuardedOptions
    uses_builtin_models = True

    def __init__(
        self, options: GuardedOptions | None = None, *, models: BuiltinModels | None = None
    ) -> None:
        super().__init__(options)
        spec = dict(self.options.target)
        kind = spec.pop("kind", None)
        if not isinstance(kind, str):
            raise RegistryError("options.target.kind: required (the wrapped model's kind)")
        self.inner = create_model(
            kind, spec.pop("options", {}), where="options.target", models=models
        )
        self.capabilities = self.inner.capabilities
        self.guard = Guard(load_policy(self.options.policy), models=models)

    @property
    def model_id(self) -> str:
        return f"guarded({self.inner.model_id})@{self.guard.policy.ref}"

    async def complete(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> Completion:
        started = time.perf_counter()
        conversation = Conversation(messages=list(messages))
        decision = await self.guard.acheck_input(conversation)
        if not decision.forward:
            return Completion(
                text=decision.response or "",
                model=self.model_id,
                finish_reason="content_filter",
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        answer = await self.inner.complete(decision.forward_messages, settings)
        checked = await self.guard.acheck_output(conversation, answer.text, decision.context)
        blocked = checked.action in (Action.BLOCK, Action.REDIRECT)
        return answer.model_copy(
            update={
                "text": checked.text,
                "model": self.model_id,
                "finish_reason": "content_filter" if blocked else answer.finish_reason,
                "latency_ms": (time.perf_counter() - started) * 1000,
            }
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
