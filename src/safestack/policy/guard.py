"""The policy's `guard` section: what the runtime pipeline (`safestack.guard`) checks, where, and
what it answers. Every default lives here (docs/guard.md); default.yaml does not repeat them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


GuardScope = Literal[
    "system", "developer", "user", "assistant", "tool", "retrieval", "history", "output"
]
"""Where the guard runs detectors: a message role, retrieved documents, the recent user turns read
together (`history`), or the model's output."""

# Which detectors run where (LlamaFirewall-style role -> scanners).
_DEFAULT_GUARD_DETECTORS: dict[GuardScope, list[str]] = {
    "system": [],
    "developer": [],
    "user": ["rules", "attack", "harm", "pii", "elections"],
    "assistant": ["rules", "harm"],
    "tool": ["rules", "attack", "indirect-injection"],
    "retrieval": ["rules", "attack", "indirect-injection"],
    "history": ["rules", "attack", "harm"],
    # `harm`, not `response-harm`: judged with its request, response-harm flags 28% of harmless
    # held-out answers (docs/models/response-harm.md), too many to block on; the red-team
    # `harm-severity` scorer uses it. A policy can put it here (it reads GuardContext.request).
    "output": ["rules", "harm", "pii", "elections"],
}


class SpotlightSettings(_Strict):
    # Hines et al. 2024, "Defending Against Indirect Prompt Injection Attacks With Spotlighting".
    # 'delimit' wraps untrusted content in tags with a random per-request id, 'datamark' puts a
    # random marker between its words, 'off' forwards it as it is.
    mode: Literal["delimit", "datamark", "off"] = "delimit"


class OverlapSettings(_Strict):
    """An output holding `threshold` of the system prompt's word n-grams is a leak, if at least
    `min_ngrams` of them match."""

    threshold: float = Field(default=0.3, gt=0.0, le=1.0)
    ngram: int = Field(default=5, ge=2, le=12)
    min_ngrams: int = Field(default=3, ge=1)


class StreamSettings(_Strict):
    """Streamed text is released once `hold_back_chars` are held back behind it, in steps; each
    step is judged with `context_chars` of already released text."""

    # At least the longest canary spelling looked for whole (spaced out: 39 characters).
    hold_back_chars: int = Field(default=64, ge=48, le=4096)
    release_step_chars: int = Field(default=32, ge=1, le=4096)
    # Steps double after each release up to this, so a long answer costs few checks while the
    # first text still leaves after hold_back_chars + release_step_chars.
    max_release_step_chars: int = Field(default=128, ge=1, le=16_384)
    context_chars: int = Field(default=256, ge=0, le=16_384)

    @model_validator(mode="after")
    def _steps_ordered(self) -> StreamSettings:
        if self.max_release_step_chars < self.release_step_chars:
            raise ValueError("max_release_step_chars must be at least release_step_chars")
        return self


class Redirect(_Strict):
    message: str = Field(min_length=1)
    url: str | None = None


def _default_redirects() -> dict[str, Redirect]:
    return {
        "default": Redirect(
            message="Voting rules differ by country and region. For where, when and how to "
            "register or vote, please check your official election authority."
        ),
        "US": Redirect(
            message="For accurate, up-to-date information on registering, ID requirements, "
            "deadlines, mail-in ballots and where to vote, see CanIVote.org from the National "
            "Association of Secretaries of State, or contact your state or local election office.",
            url="https://www.canivote.org/",
        ),
        "EU": Redirect(
            message="For how, when and where to vote in European elections in your country, see "
            "the European Parliament's elections site, or your national election authority.",
            url="https://elections.europa.eu/",
        ),
        "GB": Redirect(
            message="For registering and voting in the UK (where, when, ID and postal votes), see "
            "the Electoral Commission or your local council's electoral services.",
            url="https://www.electoralcommission.org.uk/",
        ),
        "CA": Redirect(
            message="For registering and voting in Canada (where, when, ID and voting by mail), "
            "see Elections Canada.",
            url="https://www.elections.ca/",
        ),
    }


class ElectionSettings(_Strict):
    """Questions about voting procedures are answered with a pointer to official sources. Locale
    lookup: exact tag (pt-BR), region (en-US, es-US -> US), EU member state (de-DE -> EU),
    language (en), then default."""

    redirects: dict[str, Redirect] = Field(default_factory=_default_redirects)

    @field_validator("redirects")
    @classmethod
    def _has_default(cls, redirects: dict[str, Redirect]) -> dict[str, Redirect]:
        if "default" not in redirects:
            raise ValueError("redirects needs a 'default' entry, used when no locale matches")
        return redirects


class GuardMessages(_Strict):
    block: str = "Sorry, I can't help with that request."
    redirect: str = "This topic is best answered by an authoritative source."
    stream_stopped: str = "[The rest of this response was withheld by the content policy.]"
    quarantined: str = (
        "[Content removed by the guard: it contained instructions aimed at the assistant.]"
    )


class GuardSettings(_Strict):
    # What a detector error does: 'block' (fail closed) or 'allow-with-flag' (let it through,
    # flagged, with the failure in the reasons). Never read as "safe" either way.
    on_error: Literal["block", "allow-with-flag"] = "block"
    spotlighting: SpotlightSettings = Field(default_factory=SpotlightSettings)
    # A random per-request canary token planted in the system prompt; an output that contains it
    # (in any spelling or encoding) is a system-prompt leak.
    canary: bool = True
    overlap: OverlapSettings = Field(default_factory=OverlapSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    # The last N user turns are also judged together (an attack split over turns); 0 or 1: off.
    history_turns: int = Field(default=3, ge=0, le=50)
    # Attack findings acted on only when the text has the attack's shape (it addresses the
    # assistant, or refers to its own instructions); otherwise flagged for review, not blocked.
    corroborate: list[str] = Field(
        default_factory=lambda: ["jailbreak", "prompt-injection", "system-prompt-extraction"]
    )
    # Categories acted on in untrusted content; others found there are recorded but do not act
    # (the output check judges what the model makes of them).
    untrusted_categories: list[str] = Field(
        default_factory=lambda: [
            "jailbreak",
            "prompt-injection",
            "system-prompt-extraction",
            "sexual/minors",
        ]
    )
    # An attack in untrusted content: 'block' the request, or 'quarantine' (replace that content).
    on_untrusted_attack: Literal["block", "quarantine"] = "block"
    # Remove Unicode tag characters ("ASCII smuggling") from non-privileged content.
    strip_tag_characters: bool = True
    detectors: dict[GuardScope, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in _DEFAULT_GUARD_DETECTORS.items()}
    )
    elections: ElectionSettings = Field(default_factory=ElectionSettings)
    messages: GuardMessages = Field(default_factory=GuardMessages)

    def detectors_for(self, scope: GuardScope) -> list[str]:
        return list(self.detectors.get(scope, _DEFAULT_GUARD_DETECTORS[scope]))
