"""From a verdict to the guard's action on one piece of content, with a reason per category.

The policy gives each flagged category an action for its severity band; the guard then applies what
it knows about where the content sits in the instruction hierarchy:
- in untrusted content only `guard.untrusted_categories` act (the rest is recorded);
- an attack finding without the attack's shape is flagged, not acted on (`corroborate.py`);
- attack text in a model's response is reported, not acted on (it attacks nobody upstream);
- a redirect answers the question being asked now, so older turns only flag;
- an attack in untrusted content quarantines that content when the policy says so;
- a detector failure blocks, or flags when `guard.on_error` is `allow-with-flag`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from safestack.guard.corroborate import corroborated
from safestack.guard.decision import Reason
from safestack.judge.normalise import Normalised
from safestack.policy import Policy
from safestack.policy.model import GuardScope
from safestack.records import Action, Trust, Verdict


@dataclass(slots=True)
class Assessment:
    action: Action = Action.ALLOW
    reasons: list[Reason] = field(default_factory=list)
    quarantine: bool = False
    redirect_category: str | None = None


def _at_most(action: Action, cap: Action) -> Action:
    return action if action.rank <= cap.rank else cap


def assess(
    verdict: Verdict,
    policy: Policy,
    *,
    scope: GuardScope,
    trust: Trust,
    texts: Sequence[Normalised],
    index: int | None = None,
    latest: bool = True,
) -> Assessment:
    settings = policy.guard
    result = Assessment()
    for category in verdict.flagged_categories:
        severity = verdict.category_severities.get(category, verdict.severity)
        action = policy.action(category, severity)
        kind = policy.category(category).kind
        parent = policy.parent(category)
        notes: list[str] = []
        untrusted_acts = category in settings.untrusted_categories or (
            parent is not None and parent in settings.untrusted_categories
        )
        if trust is Trust.UNTRUSTED and not untrusted_acts and action is not Action.ALLOW:
            action = Action.ALLOW
            notes.append("found in untrusted content, where this category is recorded only")
        if kind == "attack" and scope == "output" and action.rank > Action.FLAG.rank:
            action = Action.FLAG
            notes.append("attack text in a response is reported, not acted on")
        elif (
            kind == "attack"
            and category in settings.corroborate
            and action.rank > Action.FLAG.rank
            and not corroborated(category, trust, texts)
        ):
            action = Action.FLAG
            notes.append(
                "flagged for review, not acted on: the text lacks the shape of this attack "
                "(see guard.corroborate)"
            )
        if action is Action.REDIRECT and not latest:
            action = Action.FLAG
            notes.append("an earlier turn; only the latest question is redirected")
        if (
            kind == "attack"
            and trust is Trust.UNTRUSTED
            and action is Action.BLOCK
            and settings.on_untrusted_attack == "quarantine"
        ):
            action = Action.FLAG
            result.quarantine = True
            notes.append("the content is quarantined (guard.on_untrusted_attack)")
        if action is Action.REDIRECT and result.redirect_category is None:
            result.redirect_category = category
        result.reasons.append(
            Reason(
                check="moderation",
                category=category,
                action=action,
                scope=scope,
                index=index,
                detector=_top_detector(verdict, category),
                detail=_detail(verdict, category, severity, trust, notes),
            )
        )
        if action.rank > result.action.rank:
            result.action = action
    for failure in verdict.failures:
        action = Action.BLOCK if settings.on_error == "block" else Action.FLAG
        result.reasons.append(
            Reason(
                check="detector-error",
                action=action,
                scope=scope,
                index=index,
                detector=failure.detector,
                detail=f"{failure.message} (guard.on_error: {settings.on_error})",
            )
        )
        if action.rank > result.action.rank:
            result.action = action
    return result


def _top_detector(verdict: Verdict, category: str) -> str | None:
    for finding in verdict.findings:  # sorted by score, highest first
        if finding.category == category or finding.category.startswith(category + "/"):
            return f"{finding.detector}@{finding.detector_version}"
    return None


def _detail(verdict: Verdict, category: str, severity: int, trust: Trust, notes: list[str]) -> str:
    score = verdict.category_scores.get(category, 0.0)
    label = next(
        (
            f.label
            for f in verdict.findings
            if f.label and (f.category == category or f.category.startswith(category + "/"))
        ),
        None,
    )
    if category == "prompt-injection":
        label = "indirect" if trust is Trust.UNTRUSTED else "direct"
    head = f"{category} score {score:.2f} severity {severity}" + (f" ({label})" if label else "")
    return "; ".join([head, *notes])
