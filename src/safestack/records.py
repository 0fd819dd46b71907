"""The records every stage shares: what a detector found, what the judge decided, what was said.

All are pydantic models that round-trip through JSON and carry a `schema_version`, so stored rows
and files written by one release can be read by the next.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1


Kind = Literal["prompt", "response"]
"""What a judged text is: a user's input, or a model's output."""


class Action(StrEnum):
    """What to do with judged content, in increasing order of strictness."""

    ALLOW = "allow"
    FLAG = "flag"
    REDACT = "redact"
    REDIRECT = "redirect"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return list(Action).index(self)


class Role(StrEnum):
    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Trust(StrEnum):
    """Instruction hierarchy levels: privileged instructions > user requests > untrusted data."""

    PRIVILEGED = "privileged"
    USER = "user"
    UNTRUSTED = "untrusted"


DEFAULT_TRUST: dict[Role, Trust] = {
    Role.SYSTEM: Trust.PRIVILEGED,
    Role.DEVELOPER: Trust.PRIVILEGED,
    Role.USER: Trust.USER,
    # The model's own words can repeat injected text, so they are not privileged.
    Role.ASSISTANT: Trust.USER,
    Role.TOOL: Trust.UNTRUSTED,
}


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int = SCHEMA_VERSION


class Span(BaseModel):
    """Half-open character range `[start, end)` in the text the detector was given."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Finding(_Record):
    """One detector's opinion about one category in one piece of text."""

    category: str
    score: float = Field(ge=0.0, le=1.0, description="Probability-like confidence in [0, 1].")
    severity: int = Field(ge=0, le=7, description="0-7 on the policy's severity scale.")
    detector: str
    detector_version: str
    source: str = Field(
        default="text",
        description="Which view of the input: 'text', or the decoding that exposed it ('base64', ...).",
    )
    span: Span | None = Field(default=None, description="Where in the original input, when known.")
    evidence: str | None = Field(
        default=None, description="The matched words or the model's reason."
    )
    label: str | None = Field(default=None, description="The detector's own label before mapping.")


class DetectorFailure(_Record):
    """A detector that could not give an opinion; never read as 'safe'."""

    detector: str
    message: str


class Verdict(_Record):
    """The judge's decision on one input under one policy, with its evidence."""

    flagged: bool
    action: Action
    severity: int = Field(ge=0, le=7, description="Highest severity among flagged categories.")
    flagged_categories: list[str] = Field(default_factory=list)
    category_scores: dict[str, float] = Field(default_factory=dict)
    category_severities: dict[str, int] = Field(default_factory=dict)
    findings: list[Finding] = Field(default_factory=list)
    normalisations: list[str] = Field(default_factory=list)
    failures: list[DetectorFailure] = Field(default_factory=list)
    policy: str = Field(description="Policy name and version, 'name@version'.")
    detectors: list[str] = Field(
        default_factory=list, description="'name@version' of each detector run."
    )

    @property
    def complete(self) -> bool:
        """True when every configured detector gave an opinion."""
        return not self.failures


class Message(_Record):
    """One turn of a conversation, with its place in the instruction hierarchy."""

    role: Role
    content: str
    trust: Trust | None = None
    name: str | None = None
    source: Literal["chat", "tool", "retrieval"] | None = Field(
        default=None, description="Where untrusted content came from, when it is not plain chat."
    )

    @model_validator(mode="after")
    def _default_trust(self) -> Message:
        if self.trust is None:
            object.__setattr__(self, "trust", DEFAULT_TRUST[self.role])
        return self


class Conversation(_Record):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    messages: list[Message] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)

    def last(self, role: Role) -> Message | None:
        for message in reversed(self.messages):
            if message.role == role:
                return message
        return None


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A sha256 digest as 64 lower-case hex digits."""


class AuditEvent(_Record):
    """One request the guard handled: who, what, the decision and how long it took.

    Content is kept as digests (sha256 hex of the input and output) unless the policy asks for
    the full text in `content`; a retention period then purges old events from the store.
    """

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=64)
    created_at: AwareDatetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the request arrived, UTC."
    )
    key_id: str | None = Field(default=None, description="The API key's public id, if any.")
    endpoint: str = Field(description="The route, e.g. '/v1/chat/completions'.")
    model: str | None = Field(default=None, description="The model the client asked for.")
    action: Action | None = Field(
        default=None, description="The guard's action; None when no decision was reached."
    )
    status_code: int | None = Field(
        default=None,
        ge=100,
        le=599,
        description="The HTTP status sent to the client; None while the request is not completed.",
    )
    completed: bool = Field(
        default=True,
        description="False for the record written when a request is accepted, before it is "
        "forwarded or answered; its completion replaces it. One left False means the gateway "
        "stopped (crashed) before recording the outcome.",
    )
    latency_ms: float = Field(ge=0.0, allow_inf_nan=False)
    categories: list[str] = Field(default_factory=list, description="The flagged categories.")
    scores: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict, description="Score per category, as the judge calibrated it."
    )
    policy: str | None = Field(default=None, description="The policy applied, 'name@version'.")
    input_digest: Sha256Hex | None = None
    output_digest: Sha256Hex | None = None
    content: dict[str, Any] | None = Field(
        default=None, description="The full request and response, only when the policy says so."
    )
    error: str | None = Field(default=None, description="What failed, when something did.")
    stream: bool = False
    end_user: Sha256Hex | None = Field(
        default=None,
        description="The end user the request was for: HMAC-SHA256 (hex) of its "
        "`safety_identifier` (else `user`) field under the deployment's secret, never the raw "
        "value; None when the request named none (and in events from before it was recorded).",
    )
    enforcement: str | None = Field(
        default=None,
        max_length=1000,
        description="The enforcement measures applied to the request, e.g. 'warn:dec_...' or "
        "'suspend:dec_...' (docs/monitor-enforcement.md); None when none was.",
    )

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _completed_has_a_status(self) -> AuditEvent:
        if self.completed and self.status_code is None:
            raise ValueError("a completed audit event needs the status_code sent to the client")
        return self


class EnforcementAction(StrEnum):
    """A rung of the strike ladder, or its reversal (docs/monitor-enforcement.md)."""

    WARN = "warn"
    THROTTLE = "throttle"
    SUSPEND = "suspend"
    LIFT = "lift"

    @property
    def rank(self) -> int:
        """How strict a measure is: lift 0, warn 1, throttle 2, suspend 3."""
        return _ENFORCEMENT_RANK[self]


_ENFORCEMENT_RANK = {
    EnforcementAction.LIFT: 0,
    EnforcementAction.WARN: 1,
    EnforcementAction.THROTTLE: 2,
    EnforcementAction.SUSPEND: 3,
}

# `key:<key id>` or `user:<key id>:<end user>`, the end user as AuditEvent.end_user has it.
ACCOUNT_PATTERN = r"^(key:[A-Za-z0-9_.-]{1,64}|user:[A-Za-z0-9_.-]{1,64}:[0-9a-f]{64})$"


class EnforcementDecision(_Record):
    """One enforcement decision on an account: who or which rule made it, why, when, and whether
    it is enforced or only recorded (shadow). Append-only: a decision is reversed by a later
    `lift`, never edited; a measure lapses at `expires_at` (its rung's decay)."""

    id: str = Field(default_factory=lambda: "dec_" + uuid.uuid4().hex[:16], max_length=64)
    created_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    account: str = Field(
        pattern=ACCOUNT_PATTERN,
        description="`key:<key id>`, or `user:<key id>:<end user>` for one end user of a key.",
    )
    action: EnforcementAction
    actor: str = Field(
        min_length=1, max_length=200, description="`rule:<rule name>` or the person who decided."
    )
    reason: str = Field(min_length=1, max_length=2000)
    rule: str | None = Field(default=None, max_length=200, description="The rule that fired.")
    shadow: bool = Field(
        default=False, description="Recorded to show what would have happened; never enforced."
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the measure lapses (its decay); None: until lifted."
    )
    rate_per_minute: int | None = Field(
        default=None, gt=0, description="A throttle's request rate for the account."
    )
    burst: int | None = Field(default=None, gt=0, description="A throttle's bucket size.")

    @field_validator("created_at", "expires_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    @property
    def key_id(self) -> str:
        """The key the account belongs to."""
        return self.account.split(":")[1]

    def active(self, now: datetime) -> bool:
        """Whether this measure is in force at `now`, lifts aside (shadow ones never are)."""
        if self.shadow or self.action is EnforcementAction.LIFT:
            return False
        return self.expires_at is None or now < self.expires_at


class AttemptStatus(StrEnum):
    """Whether a red-team interaction produced something to judge. Errors are never 'safe'."""

    COMPLETE = "complete"
    ERROR = "error"
    SKIPPED = "skipped"


class Score(_Record):
    """One scorer's reading of one Attempt.

    `value` is on the scorer's own scale (refusal 0/1, severity 0–7, ungroundedness 0–4, leak 0/1);
    `success` says whether the attack achieved its objective by this scorer's account, when the
    scorer can tell. A scorer that could not judge sets `error` and leaves `value` None.
    """

    scorer: str
    version: str
    value: float | None = Field(default=None, allow_inf_nan=False)
    label: str | None = None
    success: bool | None = None
    evidence: str | None = None
    error: str | None = None


class Usage(_Record):
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Attempt(_Record):
    """One red-team interaction: what was asked, how, of which target, what came back, the scores.

    Stored the moment it completes; `probe_id` + `target` + `sample` identify it within a run, which
    is what lets a re-run skip it and `rescore` judge it again without calling the target.
    """

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    run_id: str
    campaign_hash: str
    target: str
    target_model: str = Field(description="What answered: model name, file digest or URL.")
    probe_id: str
    sample: int = Field(default=0, ge=0)
    attack: str = Field(description="'name@version' of the delivery strategy.")
    converters: list[str] = Field(default_factory=list)
    behaviour_id: str | None = None
    behaviour_source: str | None = None
    category: str = Field(description="Policy category of the objective, or 'benign'.")
    benign: bool = Field(
        default=False, description="A benign look-alike: refusing it is over-refusal."
    )
    objective: str
    canary: str | None = None
    grounding: str | None = None
    conversation: list[Message] = Field(default_factory=list)
    response: str | None = Field(default=None, description="The target's last answer.")
    status: AttemptStatus
    error: str | None = None
    scores: list[Score] = Field(default_factory=list)
    generation: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    started_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    latency_ms: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)

    def score(self, scorer: str) -> Score | None:
        """The score from the scorer called `scorer` (name without version), if any."""
        for score in self.scores:
            if score.scorer == scorer:
                return score
        return None
