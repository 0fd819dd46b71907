"""What is forwarded to the model: the request's messages rewritten under the instruction hierarchy.

Personal data redacted where the guard decided so, injected content quarantined, Unicode tag
characters removed from non-privileged text, untrusted content spotlighted, and the first privileged
message given the canary and the spotlighting notice. Each message keeps its index in the request.
"""

from __future__ import annotations

from safestack.guard.assessment import Assessment
from safestack.guard.decision import ForwardedMessage, GuardContext
from safestack.guard.hierarchy import effective_trust, is_privileged
from safestack.guard.redact import apply, redactions
from safestack.guard.spotlight import Spotlight, strip_tag_characters
from safestack.judge.canary import new_canary, plant
from safestack.policy import Policy
from safestack.records import Action, Message, Role, Trust, Verdict


def rewrite(
    messages: list[Message],
    assessed: dict[int, tuple[Assessment, Verdict]],
    policy: Policy,
    context: GuardContext,
) -> tuple[list[ForwardedMessage], GuardContext]:
    """The messages to forward, and the context completed with this request's secrets."""
    settings = policy.guard
    untrusted = [m.content for m in messages if effective_trust(m) is Trust.UNTRUSTED]
    mode = settings.spotlighting.mode
    spotlight = Spotlight.new(mode, untrusted) if untrusted and mode != "off" else None
    privileged = [i for i, m in enumerate(messages) if is_privileged(m)]
    canary = new_canary() if settings.canary and privileged else None
    forwarded: list[ForwardedMessage] = []
    for index, message in enumerate(messages):
        content, changes = message.content, []
        if index in assessed:
            result, verdict = assessed[index]
            if result.action is Action.REDACT:
                content = apply(content, redactions(verdict, policy))
                changes.append("redacted")
            if result.quarantine:
                content = settings.messages.quarantined
                changes.append("quarantined")
        trust = effective_trust(message)
        if trust is not Trust.PRIVILEGED and settings.strip_tag_characters:
            stripped = strip_tag_characters(content)
            if stripped != content:
                content = stripped
                changes.append("tag-characters-removed")
        if trust is Trust.UNTRUSTED and spotlight is not None:
            content = spotlight.mark(content)
            changes.append("spotlighted")
        if privileged and index == privileged[0]:
            if canary is not None:
                content = plant(content, canary)
                changes.append("canary")
            if spotlight is not None:
                content = f"{content}\n\n{spotlight.notice()}"
                changes.append("notice")
        if changes:
            message = message.model_copy(update={"content": content})
        forwarded.append(ForwardedMessage(origin=index, message=message, changes=changes))
    if spotlight is not None and not privileged:
        notice = Message(role=Role.SYSTEM, content=spotlight.notice())
        forwarded.insert(
            0, ForwardedMessage(origin=None, message=notice, changes=["added", "notice"])
        )
    context = context.model_copy(
        update={
            "canary": canary,
            "spotlighting": spotlight.mode if spotlight else "off",
            "spotlight_token": spotlight.token if spotlight else None,
            "protected": tuple(messages[i].content for i in privileged),
        }
    )
    return forwarded, context
