"""A scripted chat model for tests and dry runs: answers by rule, can fail on purpose.

Rules are tried in order against the last user message (a regex search, case-insensitive); the
first match answers. `fail_first` makes the first N calls raise a transient error, to exercise
retries; `garbage` makes every call fail as an unparseable reply would (transient, so retried).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from safestack.models.base import (
    Capabilities,
    ChatModel,
    Completion,
    GenerationSettings,
    ModelError,
    ModelOptions,
    model,
)
from safestack.records import Message, Role


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    match: str = Field(description="Regex searched in the last user message.")
    reply: str


class ScriptedOptions(ModelOptions):
    rules: tuple[Rule, ...] = ()
    default: str = "I can't help with that."
    echo: bool = Field(default=False, description="Answer with the last user message itself.")
    fail_first: int = Field(
        default=0, ge=0, description="Raise a transient error on the first N calls."
    )
    garbage: bool = Field(
        default=False, description="Every call fails as if the reply were unparseable."
    )
    delay_s: float = Field(default=0.0, ge=0.0, description="Wait this long before answering.")
    system_prompt: bool = True
    multi_turn: bool = True
    tools: bool = False
    model_name: str = "scripted"


@model("scripted")
class ScriptedModel(ChatModel):
    Options = ScriptedOptions
    options: ScriptedOptions

    def __init__(self, options: ScriptedOptions | None = None) -> None:
        super().__init__(options)
        self.capabilities = Capabilities(
            system_prompt=self.options.system_prompt,
            multi_turn=self.options.multi_turn,
            tools=self.options.tools,
        )
        self._rules = [(re.compile(r.match, re.IGNORECASE), r.reply) for r in self.options.rules]
        self.calls: list[list[Message]] = []

    @property
    def model_id(self) -> str:
        return self.options.model_name

    async def complete(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> Completion:
        self.calls.append(list(messages))
        if self.options.delay_s:
            await asyncio.sleep(self.options.delay_s)
        if len(self.calls) <= self.options.fail_first:
            raise ModelError(self.model_id, "scripted transient failure", transient=True)
        if self.options.garbage:
            raise ModelError(
                self.model_id, "response was not valid JSON (scripted garbage)", transient=True
            )
        last = next((m.content for m in reversed(messages) if m.role == Role.USER), "")
        text = last if self.options.echo else self._reply(last)
        return Completion(
            text=text,
            model=self.model_id,
            finish_reason="stop",
            prompt_tokens=sum(len(m.content.split()) for m in messages),
            completion_tokens=len(text.split()),
        )

    def _reply(self, last: str) -> str:
        for pattern, reply in self._rules:
            if pattern.search(last):
                return reply
        return self.options.default
