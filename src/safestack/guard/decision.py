"""What the guard hands back: the per-request context, decisions on inputs and outputs, reasons,
and the final event of a guarded stream.

All are pydantic records with a `schema_version`. Secrets of the request (the canary, the
spotlighting token, the protected system prompt) live only in `GuardContext` and are excluded from
every dump, so a decision can be logged or audited as it is.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.policy.model import GuardScope
from safestack.records import Action, Message, Role, Trust, Verdict

SCHEMA_VERSION = 1

Check = Literal["moderation", "canary", "overlap", "detector-error"]
"""What produced a reason: a detector verdict, the canary, the system-prompt overlap, or an error."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int = SCHEMA_VERSION


class GuardContext(_Record):
    """Per-request state shared by the input check, the output check and the stream.

    Made by `Guard.check_input()`; pass it to `check_output()` / `stream()` of the same request.
    """

    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    locale: str | None = None
    spotlighting: Literal["delimit", "datamark", "off"] = "off"
    canary: str | None = Field(default=None, exclude=True, repr=False)
    spotlight_token: str | None = Field(default=None, exclude=True, repr=False)
    protected: tuple[str, ...] = Field(
        default=(),
        exclude=True,
        repr=False,
        description="The privileged messages' original text, checked for leaks in outputs.",
    )
    request: str | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="The last user message: output detectors that judge a response given its "
        "request (`response-harm`, `refusal`) read it.",
    )


class Reason(_Record):
    """Why the guard acted: one category or check, at one place, and what it asked for."""

    check: Check
    category: str | None = None
    action: Action
    scope: GuardScope
    index: int | None = Field(default=None, description="Message index, for a message's reason.")
    detector: str | None = None
    detail: str


class MessageVerdict(_Record):
    """The verdict on one message of the conversation, and the action the guard took from it."""

    index: int
    role: Role
    trust: Trust
    scope: GuardScope
    action: Action
    verdict: Verdict


class HistoryVerdict(_Record):
    """The verdict on the recent user turns read together (an attack split over turns)."""

    indices: list[int]
    action: Action
    verdict: Verdict


class ForwardedMessage(_Record):
    """A message to send upstream; `origin` is its index in the request (None: added by the guard).

    `changes` lists what the guard did to it: 'spotlighted', 'redacted', 'quarantined',
    'tag-characters-removed', 'canary', 'notice' (the spotlighting instruction), 'added'.
    """

    origin: int | None
    message: Message
    changes: list[str] = Field(default_factory=list)


class InputDecision(_Record):
    request_id: str
    policy: str
    action: Action
    forward: bool = Field(description="Send `messages` upstream; otherwise answer with `response`.")
    # The payload, not the record: it holds the canary and the system prompt, so dumps leave it out.
    messages: list[ForwardedMessage] = Field(default_factory=list, exclude=True, repr=False)
    verdicts: list[MessageVerdict] = Field(default_factory=list)
    history: HistoryVerdict | None = None
    reasons: list[Reason] = Field(default_factory=list)
    response: str | None = Field(
        default=None, description="What to answer instead, when not forwarded (block, redirect)."
    )
    latency_ms: float
    context: GuardContext

    @property
    def forward_messages(self) -> list[Message]:
        return [m.message for m in self.messages]

    @property
    def flagged_categories(self) -> list[str]:
        return _acted_on(self.reasons)


class OutputDecision(_Record):
    request_id: str
    policy: str
    action: Action
    text: str = Field(
        description="What to send the client: the output, redacted, or a replacement."
    )
    verdict: Verdict | None = None
    reasons: list[Reason] = Field(default_factory=list)
    leaked: bool = Field(default=False, description="The output revealed the system prompt.")
    latency_ms: float

    @property
    def flagged_categories(self) -> list[str]:
        return _acted_on(self.reasons)


class StreamEnd(_Record):
    """The final event of a guarded stream: send `text`, then `message` if any, then finish."""

    request_id: str
    policy: str
    finish_reason: Literal["stop", "content_filter"]
    action: Action
    text: str = Field(description="Held-back text released at the end ('' when stopped).")
    message: str | None = Field(
        default=None, description="The policy's message for the client when the stream was stopped."
    )
    reasons: list[Reason] = Field(default_factory=list)
    category_scores: dict[str, float] = Field(
        default_factory=dict, description="Highest score per category over the checked windows."
    )
    leaked: bool = False
    released_chars: int
    withheld_chars: int = Field(description="Characters received but never released.")
    checks: int = Field(description="Moderation calls made over the stream.")
    check_ms: float = Field(description="Time spent in moderation and leak checks.")

    @property
    def flagged_categories(self) -> list[str]:
        return _acted_on(self.reasons)


def _acted_on(reasons: list[Reason]) -> list[str]:
    """Categories whose reasons asked for more than `allow`."""
    return sorted({r.category for r in reasons if r.category and r.action is not Action.ALLOW})
