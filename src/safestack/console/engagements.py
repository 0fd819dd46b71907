"""Engagement pages: the list (and, for an admin, the form that creates one), one engagement's
page (scope, coverage, conversations, findings, agreement, exports), its report, and the review
queue. An expert sees only the engagements they are invited to; `review` and `admin` see all.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated

import yaml
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from safestack.align.regression import campaign_yaml
from safestack.console.agreement import agreement
from safestack.console.attempts import (
    breakfix_rows,
    engagement_campaign,
    open_run,
    run_id,
)
from safestack.console.pages import CONSOLE_SCOPES, ConsolePage
from safestack.console.rendering import render
from safestack.console.report import by_band, coverage, report_html
from safestack.console.session import LEAD_SCOPES, Principal, User, principal
from safestack.console.targets import ConsoleTargets, public_spec
from safestack.errors import InputError
from safestack.policy import Policy
from safestack.store import Store
from safestack.store.console import Engagement

LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def policy_of(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


def can_see(user: Principal, engagement: Engagement) -> bool:
    return user.is_lead or user.id in engagement.experts


def visible_engagement(request: Request, engagement_id: str) -> Engagement:
    """The engagement if this key may see it; 404 otherwise (whether or not it exists)."""
    user = principal(request)
    engagement = store_of(request).console.engagement(engagement_id)
    if engagement is None or not can_see(user, engagement):
        raise HTTPException(404, "no such engagement, or you are not invited to it")
    return engagement


def check_open(engagement: Engagement, user: Principal) -> None:
    """Experts chat and flag only between the engagement's dates (both days included)."""
    if user.is_lead:
        return
    today = datetime.now(UTC).date()
    if engagement.starts_on is not None and today < engagement.starts_on.date():
        raise HTTPException(403, f"this engagement starts on {engagement.starts_on.date()}")
    if engagement.ends_on is not None and today > engagement.ends_on.date():
        raise HTTPException(403, f"this engagement ended on {engagement.ends_on.date()}")


def require_lead(user: Principal) -> None:
    if not user.is_lead:
        raise HTTPException(403, "this needs a key with the review or admin scope")


def _date(value: str, field: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
    except ValueError:
        raise InputError(f"{field}: '{value}' is not a date (YYYY-MM-DD)", field=field) from None


def _languages(value: str) -> list[str]:
    languages = [part.strip() for part in value.replace(",", " ").split() if part.strip()]
    bad = [lang for lang in languages if not re.fullmatch(LANGUAGE, lang)]
    if bad or not languages:
        raise InputError(
            f"languages: give BCP 47 codes such as 'en fr ar' (got {', '.join(bad) or 'none'})",
            field="languages",
        )
    return list(dict.fromkeys(languages))


def engagements_page() -> ConsolePage:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request, user: User) -> Response:
        store = store_of(request)
        engagements = [e for e in store.console.engagements() if can_see(user, e)]
        experts = [key for key in store.keys.all() if not CONSOLE_SCOPES.isdisjoint(key.scopes)]
        targets: ConsoleTargets = request.app.state.targets
        return render(
            request,
            "home.html",
            engagements=engagements,
            experts=experts,
            targets=targets.names,
            categories=list(policy_of(request).categories),
        )

    @router.post("/engagements")
    def create(
        request: Request,
        user: User,
        name: str = Form(..., min_length=1, max_length=200),
        description: str = Form("", max_length=10_000),
        targets: Annotated[list[str] | None, Form()] = None,
        categories: Annotated[list[str] | None, Form()] = None,
        languages: str = Form("en"),
        starts_on: str = Form(""),
        ends_on: str = Form(""),
        experts: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        if not user.is_admin:
            raise HTTPException(403, "only a key with the admin scope creates engagements")
        targets, categories, experts = targets or [], categories or [], experts or []
        known: ConsoleTargets = request.app.state.targets
        policy = policy_of(request)
        if not targets:
            raise InputError("targets: choose at least one target", field="targets")
        specs = [public_spec(known.spec(name)) for name in targets]
        unknown = [c for c in categories if c not in policy.categories]
        if unknown or not categories:
            raise InputError(
                f"categories: choose categories of policy {policy.ref} "
                f"(unknown: {', '.join(unknown) or 'none chosen'})",
                field="categories",
            )
        store = store_of(request)
        for key_id in experts:
            if store.keys.get(key_id) is None:
                raise InputError(f"experts: no key '{key_id}'", field="experts")
        engagement = store.console.create_engagement(
            name=name.strip(),
            description=description.strip(),
            targets=list(dict.fromkeys(targets)),
            policy=policy.ref,
            categories=list(dict.fromkeys(categories)),
            languages=_languages(languages),
            starts_on=_date(starts_on, "starts_on"),
            ends_on=_date(ends_on, "ends_on"),
            experts=list(dict.fromkeys(experts)),
            created_by=user.id,
        )
        open_run(store, engagement, specs)
        return RedirectResponse(f"/e/{engagement.id}", status_code=303)

    @router.get("/e/{engagement_id}", response_class=HTMLResponse)
    def engagement_view(request: Request, engagement_id: str, user: User) -> Response:
        engagement = visible_engagement(request, engagement_id)
        store = store_of(request)
        policy = policy_of(request)
        findings = store.console.findings(engagement.id)
        if not user.is_lead:
            findings = [f for f in findings if f.expert == user.id]
        reviews = store.console.reviews(engagement.id)
        conversations = store.console.conversations(
            engagement.id, None if user.is_lead else user.id
        )
        return render(
            request,
            "engagement.html",
            engagement=engagement,
            coverage=coverage(engagement, findings),
            bands=by_band(findings, reviews, policy),
            findings=findings,
            conversations=conversations,
            kappas=agreement(findings, reviews, policy) if user.is_lead else [],
            run_id=run_id(engagement.id),
        )

    @router.get("/e/{engagement_id}/report")
    def report(request: Request, engagement_id: str, user: User) -> Response:
        engagement = visible_engagement(request, engagement_id)
        require_lead(user)
        store = store_of(request)
        findings = store.console.findings(engagement.id)
        reviews = store.console.reviews(engagement.id)
        policy = policy_of(request)
        html = report_html(
            engagement, findings, reviews, agreement(findings, reviews, policy), policy
        )
        return HTMLResponse(
            html,
            headers={
                "Content-Disposition": f'attachment; filename="engagement-{engagement.id}.html"',
                # The report is one file with its own <style>: allow that, and nothing else.
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )

    @router.get("/e/{engagement_id}/export/campaign.yaml")
    def export_campaign(request: Request, engagement_id: str, user: User) -> Response:
        engagement = visible_engagement(request, engagement_id)
        require_lead(user)
        store = store_of(request)
        run = store.runs.get(run_id(engagement.id))
        attempts = store.runs.attempts(run_id(engagement.id))
        if run is None or not attempts:
            raise InputError("this engagement has no findings to export yet")
        name = f"regression-console-{engagement.id}"
        text = campaign_yaml(engagement_campaign(run, attempts, name))
        yaml.safe_load(text)  # what is served must parse
        return Response(
            text,
            media_type="application/yaml",
            headers={"Content-Disposition": f'attachment; filename="{name}.yaml"'},
        )

    @router.get("/e/{engagement_id}/export/breakfix.jsonl")
    def export_breakfix(request: Request, engagement_id: str, user: User) -> Response:
        engagement = visible_engagement(request, engagement_id)
        require_lead(user)
        store = store_of(request)
        attempts = store.runs.attempts(run_id(engagement.id))
        findings = {f.id: f for f in store.console.findings(engagement.id)}
        rows = breakfix_rows(attempts, findings, engagement.policy)
        body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return Response(
            body,
            media_type="application/x-ndjson",
            headers={
                "Content-Disposition": f'attachment; filename="breakfix-{engagement.id}.jsonl"'
            },
        )

    return ConsolePage(name="engagements", title="Engagements", nav_path="/", router=router)


def review_page() -> ConsolePage:
    """The review queue: every finding not yet reviewed, across engagements (leads only)."""
    router = APIRouter()

    @router.get("/review", response_class=HTMLResponse)
    def queue(request: Request, user: User) -> Response:
        store = store_of(request)
        waiting = [
            (engagement, item)
            for engagement in store.console.engagements()
            for item in store.console.findings(engagement.id)
            if item.status == "open" and item.expert != user.id
        ]
        return render(request, "review.html", waiting=waiting)

    return ConsolePage(
        name="review", title="Review queue", nav_path="/review", router=router, scopes=LEAD_SCOPES
    )
