"""The media case review page: the queue of images that matched a hash bank, one case's hashes,
matches and request metadata, the review form, and the report file as a download.

The console never shows a matched image, not even from the encrypted quarantine: rendering it
would copy the material to every reviewer's browser (cache, screen) and that is for the legal
process to handle (`safestack media case image`, with the quarantine key, where the law allows).
Reviewers decide on hashes, match distances and the request's metadata.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from safestack.console.pages import ConsolePage
from safestack.console.rendering import render
from safestack.console.session import LEAD_SCOPES, User
from safestack.errors import StoreError
from safestack.media.reports import Reporter, case_report, report_json, report_xml
from safestack.settings import Settings
from safestack.store import MediaCase, Store
from safestack.store.media_cases import NEXT_STATUS

STATUSES: tuple[str, ...] = tuple(NEXT_STATUS)
FORMATS = {"json": "application/json", "xml": "application/xml"}


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _case(request: Request, case_id: str) -> MediaCase:
    try:
        return _store(request).media_cases.get(case_id)
    except StoreError:
        raise HTTPException(404, f"no media case '{case_id}'") from None


def media_router() -> APIRouter:
    router = APIRouter(prefix="/media")

    @router.get("/", response_class=HTMLResponse)
    def queue(
        request: Request,
        user: User,
        status: Annotated[str, Query(max_length=20)] = "open",
    ) -> Response:
        if status not in (*STATUSES, "all"):
            raise HTTPException(400, f"status must be one of {', '.join(STATUSES)} or all")
        cases = _store(request).media_cases.find(
            status=None if status == "all" else status,  # type: ignore[arg-type]
            limit=500,
        )
        return render(
            request, "media/queue.html", cases=cases, status=status, statuses=(*STATUSES, "all")
        )

    @router.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_page(request: Request, user: User, case_id: str) -> Response:
        case = _case(request, case_id)
        settings: Settings = request.app.state.settings
        return render(
            request,
            "media/case.html",
            case=case,
            next_statuses=NEXT_STATUS[case.status],
            missing=Reporter.from_settings(settings).missing(),
        )

    @router.post("/cases/{case_id}/review")
    def review(
        request: Request,
        user: User,
        case_id: str,
        status: Annotated[str, Form()],
        note: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        case = _case(request, case_id)
        if status not in STATUSES:
            raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
        reviewer = f"{user.name} (console key {user.id})"
        try:
            _store(request).media_cases.review(
                case.id,
                status=status,  # type: ignore[arg-type]
                reviewer=reviewer,
                note=note.strip() or None,
            )
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None
        return RedirectResponse(f"/media/cases/{case.id}", status_code=303)

    @router.get("/cases/{case_id}/report.{fmt}")
    def report(request: Request, user: User, case_id: str, fmt: str) -> Response:
        if fmt not in FORMATS:
            raise HTTPException(404, "reports are report.json or report.xml")
        case = _case(request, case_id)
        settings: Settings = request.app.state.settings
        content = case_report(case, Reporter.from_settings(settings))
        text = report_xml(content) if fmt == "xml" else report_json(content)
        return Response(
            text,
            media_type=FORMATS[fmt],
            headers={
                "Content-Disposition": f'attachment; filename="case-{case.id}.{fmt}"',
                "Cache-Control": "no-store",
            },
        )

    return router


def media_page() -> ConsolePage:
    """The media case review pages (`review` and `admin` keys)."""
    return ConsolePage(
        name="media",
        title="Media cases",
        nav_path="/media/",
        router=media_router(),
        scopes=LEAD_SCOPES,
    )
