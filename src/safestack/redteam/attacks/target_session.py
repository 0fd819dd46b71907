"""What every attack shares while it runs a probe: the campaign's converter chain, and one
conversation with the target that keeps the transcript and what it cost.
"""

from __future__ import annotations

from safestack.records import Message, Role, Usage
from safestack.redteam.attacks.attack import (
    AttackContext,
    Transcript,
)


async def apply_converters(text: str, ctx: AttackContext) -> str:
    """`text` through the campaign's converter chain, in the order the campaign lists it."""
    for converter in ctx.converters:
        text = await converter.convert(text, ctx.rng)
    return text


class TargetSession:
    """One conversation with the target: the messages it saw, its answers, and what they cost."""

    def __init__(self, ctx: AttackContext, system_prompt: str | None = None) -> None:
        self.ctx = ctx
        self.messages: list[Message] = []
        if system_prompt is not None:
            self.messages.append(Message(role=Role.SYSTEM, content=system_prompt))
        self.usage = Usage()
        self.response: str | None = None

    def add(self, message: Message) -> None:
        self.messages.append(message)

    async def ask(self, content: str | None = None) -> str:
        """Send the conversation (plus a user turn `content`, if given); the answer joins it."""
        if content is not None:
            self.messages.append(Message(role=Role.USER, content=content))
        completion = await self.ctx.target.complete(list(self.messages), self.ctx.settings)
        self.usage = Usage(
            requests=self.usage.requests + 1,
            prompt_tokens=self.usage.prompt_tokens + completion.prompt_tokens,
            completion_tokens=self.usage.completion_tokens + completion.completion_tokens,
        )
        self.messages.append(Message(role=Role.ASSISTANT, content=completion.text))
        self.response = completion.text
        return completion.text

    def transcript(self) -> Transcript:
        return Transcript(messages=list(self.messages), response=self.response, usage=self.usage)
