"""How the guard's decisions reach the client: the `safestack` field of answers, and the error a
refused request gets (400 `policy_violation` with code `blocked:<category>`, or 503 when a
detector failed and the request could not be judged: fail closed, never "safe").
"""

from __future__ import annotations

from typing import Any

from safestack.guard import InputDecision, Reason
from safestack.records import Action, Verdict
from safestack.server.calls import Call
from safestack.server.errors import ApiError


def summary(call: Call, reasons: list[Reason]) -> dict[str, Any]:
    """The verdict summary added to answers under `safestack` (no secrets: reasons never hold the
    canary or the system prompt)."""
    return {
        "request_id": call.id,
        "policy": call.policy,
        "action": call.action.value if call.action is not None else None,
        "categories": sorted(call.categories),
        "reasons": [r.model_dump(mode="json", exclude={"schema_version"}) for r in reasons],
    }


def input_scores(decision: InputDecision) -> dict[str, float]:
    """Highest score per category over the judged messages and the history."""
    verdicts = [v.verdict for v in decision.verdicts]
    if decision.history is not None:
        verdicts.append(decision.history.verdict)
    scores: dict[str, float] = {}
    for verdict in verdicts:
        for category, score in verdict.category_scores.items():
            scores[category] = max(score, scores.get(category, 0.0))
    return scores


def refusal(call: Call, decision: InputDecision) -> ApiError:
    """The error for a request the guard will not forward (and does not redirect)."""
    extra = {"safestack": summary(call, decision.reasons)}
    blocking = [r for r in decision.reasons if r.action is Action.BLOCK]
    if blocking and all(r.check == "detector-error" for r in blocking):
        return ApiError(
            503,
            "a detector failed, so the request could not be judged and is refused "
            f"(fail closed; guard.on_error): {blocking[0].detail}",
            type="service_unavailable",
            code="detector_error",
            extra=extra,
        )
    category = next((r.category for r in blocking if r.category), None) or "policy"
    categories = ", ".join(sorted(call.categories)) or category
    return ApiError(
        400,
        f"{decision.response or 'The request was blocked.'} "
        f"(blocked by policy {call.policy}: {categories})",
        type="policy_violation",
        code=f"blocked:{category}",
        extra=extra,
    )


def image_refusal(call: Call, verdict: Verdict, reasons: list[Reason]) -> ApiError:
    """The error for an image the policy's image detectors refused (or, failing, could not judge
    under `on_detector_error: block`)."""
    extra = {"safestack": summary(call, reasons)}
    if verdict.failures and not verdict.flagged_categories:
        return ApiError(
            503,
            "an image detector failed, so the image could not be judged and is refused "
            f"(fail closed; judge.on_detector_error): {verdict.failures[0].message}",
            type="service_unavailable",
            code="detector_error",
            extra=extra,
        )
    category = verdict.flagged_categories[0] if verdict.flagged_categories else "policy"
    return ApiError(
        400,
        f"An image in the request was refused (blocked by policy {call.policy}: "
        f"{', '.join(verdict.flagged_categories) or category})",
        type="policy_violation",
        code=f"blocked:{category}",
        extra=extra,
    )
