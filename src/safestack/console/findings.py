"""Findings: flag an assistant turn (category, severity 0-7 on the policy's bands, technique,
language, note, ideal answer) with the built-in judges' verdict kept beside the expert's; edit it
(who, when, why; a stale edit is refused with both versions shown); review it (agree, adjust,
reject, with a reason). Every change rewrites the finding's red-team Attempt.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from safestack.console.attempts import finding_attempt, path_to, record_attempt, run_id
from safestack.console.engagements import check_open, policy_of, store_of, visible_engagement
from safestack.console.rendering import render
from safestack.console.session import User, principal
from safestack.errors import InputError
from safestack.judge import Judge
from safestack.policy.model import MAX_SEVERITY
from safestack.store.console import DECISIONS, EditConflict, Engagement, ExpertFinding, Turn

TECHNIQUES = (
    "direct request",
    "role-play",
    "hypothetical",
    "many-shot",
    "multi-turn escalation",
    "obfuscation",
    "translation",
    "prompt injection",
    "system-prompt extraction",
    "refusal suppression",
)


def judge_verdict(request: Request, answer: str, question: str) -> dict[str, Any]:
    """The built-in judges' reading of the answer, as stored beside the finding; a judge that
    fails gives {'error': ...}, never a verdict of 'safe'."""
    judge: Judge | None = request.app.state.judge
    if judge is None:
        return {}
    try:
        verdict = judge.check(answer, kind="response", request=question or None)
    except Exception as exc:  # shown as the judge's error beside the finding
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "policy": verdict.policy,
        "flagged": verdict.flagged,
        "severity": verdict.severity,
        "flagged_categories": verdict.flagged_categories,
        "category_severities": verdict.category_severities,
        "detectors": verdict.detectors,
        "failures": [f"{f.detector}: {f.message}" for f in verdict.failures],
    }


def flagged_turn(request: Request, turn_id: str) -> tuple[Engagement, Turn, list[Turn], str]:
    """The assistant turn to flag, its engagement, the path to it and the system prompt."""
    from safestack.console.chat import visible_conversation

    store = store_of(request)
    turn = store.console.turn(turn_id)
    if turn is None or turn.role != "assistant":
        raise HTTPException(404, "no such answer to flag")
    conversation = visible_conversation(request, turn.conversation_id)
    engagement = visible_engagement(request, conversation.engagement_id)
    path = path_to(store.console.turns(conversation.id), turn.id)
    system = next((t.system_prompt for t in reversed(path) if t.system_prompt), None)
    return engagement, turn, path, system if system is not None else conversation.system_prompt


def visible_finding(request: Request, finding_id: str) -> tuple[ExpertFinding, Engagement]:
    user = principal(request)
    item = store_of(request).console.finding(finding_id)
    if item is None:
        raise HTTPException(404, "no such finding")
    engagement = visible_engagement(request, item.engagement_id)
    if item.expert != user.id and not user.is_lead:
        raise HTTPException(404, "no such finding")
    return item, engagement


def sync_attempt(request: Request, item: ExpertFinding) -> None:
    """Rewrite the finding's Attempt from the finding as stored and its reviews."""
    store = store_of(request)
    _, _, path, system = flagged_turn(request, item.turn_id)
    run = store.runs.get(run_id(item.engagement_id))
    if run is None:
        raise InputError(f"engagement {item.engagement_id} has no red-team run; recreate it")
    reviews = [r for r in store.console.reviews(item.engagement_id) if r.finding_id == item.id]
    record_attempt(store, finding_attempt(item, path, system, run, reviews))


def _check(engagement: Engagement, category: str, severity: int, language: str) -> None:
    if category not in engagement.categories:
        raise InputError(
            f"category: '{category}' is not in this engagement's scope "
            f"({', '.join(engagement.categories)})",
            field="category",
        )
    if not 0 <= severity <= MAX_SEVERITY:
        raise InputError(f"severity: {severity} is outside 0-{MAX_SEVERITY}", field="severity")
    if language not in engagement.languages:
        raise InputError(
            f"language: '{language}' is not in this engagement's languages "
            f"({', '.join(engagement.languages)})",
            field="language",
        )


def findings_router() -> APIRouter:
    router = APIRouter()

    @router.get("/f/new", response_class=HTMLResponse)
    def new(request: Request, turn: str, user: User) -> Response:
        engagement, answer, path, system = flagged_turn(request, turn)
        question = next((t.content for t in reversed(path) if t.role == "user"), "")
        return render(
            request,
            "finding_new.html",
            engagement=engagement,
            answer=answer,
            path=path,
            system_prompt=system,
            judge=judge_verdict(request, answer.content, question),
            policy=policy_of(request),
            techniques=TECHNIQUES,
        )

    @router.post("/f")
    def create(
        request: Request,
        user: User,
        turn_id: str = Form(...),
        category: str = Form(...),
        severity: int = Form(...),
        technique: str = Form("", max_length=100),
        language: str = Form(...),
        note: str = Form("", max_length=20_000),
        ideal_answer: str = Form("", max_length=50_000),
    ) -> Response:
        engagement, answer, path, _ = flagged_turn(request, turn_id)
        check_open(engagement, user)
        _check(engagement, category, severity, language)
        question = next((t.content for t in reversed(path) if t.role == "user"), "")
        store = store_of(request)
        item = store.console.create_finding(
            engagement_id=engagement.id,
            turn_id=answer.id,
            expert=user.id,
            target=answer.target or "unknown",
            category=category,
            severity=severity,
            technique=technique.strip() or "unspecified",
            language=language,
            note=note,
            ideal_answer=ideal_answer,
            judge=judge_verdict(request, answer.content, question),
        )
        sync_attempt(request, item)
        return RedirectResponse(f"/f/{item.id}", status_code=303)

    @router.get("/f/{finding_id}", response_class=HTMLResponse)
    def view(request: Request, finding_id: str, user: User) -> Response:
        item, engagement = visible_finding(request, finding_id)
        _, _, path, system = flagged_turn(request, item.turn_id)
        store = store_of(request)
        reviews = [r for r in store.console.reviews(engagement.id) if r.finding_id == item.id]
        return render(
            request,
            "finding.html",
            item=item,
            engagement=engagement,
            path=path,
            system_prompt=system,
            edits=store.console.edits(item.id),
            reviews=reviews,
            policy=policy_of(request),
            techniques=TECHNIQUES,
            can_edit=item.expert == user.id or user.is_lead,
            can_review=user.is_lead and item.expert != user.id,
            decisions=DECISIONS,
            conflict=None,
        )

    @router.post("/f/{finding_id}/edit")
    def edit(
        request: Request,
        finding_id: str,
        user: User,
        version: int = Form(...),
        category: str = Form(...),
        severity: int = Form(...),
        technique: str = Form("", max_length=100),
        language: str = Form(...),
        note: str = Form("", max_length=20_000),
        ideal_answer: str = Form("", max_length=50_000),
        reason: str = Form("", max_length=2_000),
    ) -> Response:
        item, engagement = visible_finding(request, finding_id)
        if item.expert != user.id and not user.is_lead:
            raise HTTPException(403, "only the finding's expert or a lead edits it")
        _check(engagement, category, severity, language)
        mine = {
            "category": category,
            "severity": severity,
            "technique": technique.strip() or "unspecified",
            "language": language,
            "note": note,
            "ideal_answer": ideal_answer,
        }
        changes = {k: v for k, v in mine.items() if v != getattr(item, k)}
        store = store_of(request)
        try:
            updated = store.console.edit_finding(
                item.id, version, changes, editor=user.id, reason=reason
            )
        except EditConflict as conflict:
            return render(
                request,
                "conflict.html",
                409,
                item=conflict.current,
                mine=mine,
                base=version,
                reason=reason,
                engagement=engagement,
                techniques=TECHNIQUES,
                policy=policy_of(request),
            )
        sync_attempt(request, updated)
        return RedirectResponse(f"/f/{item.id}", status_code=303)

    @router.post("/f/{finding_id}/review")
    def review(
        request: Request,
        finding_id: str,
        user: User,
        decision: str = Form(...),
        reason: str = Form("", max_length=2_000),
        category: str = Form(""),
        severity: int | None = Form(None),
    ) -> Response:
        item, engagement = visible_finding(request, finding_id)
        if not user.is_lead:
            raise HTTPException(403, "reviewing needs a key with the review or admin scope")
        if item.expert == user.id:
            raise HTTPException(403, "a second person reviews a finding, not its expert")
        if decision not in DECISIONS:
            raise InputError(f"decision: one of {', '.join(DECISIONS)}", field="decision")
        if decision == "adjust":
            _check(
                engagement,
                category or item.category,
                item.severity if severity is None else severity,
                item.language,
            )
        store = store_of(request)
        _, updated = store.console.review(
            item,
            user.id,
            decision,
            reason,
            category=category or None,
            severity=severity,
        )
        sync_attempt(request, updated)
        return RedirectResponse(f"/f/{item.id}", status_code=303)

    return router
