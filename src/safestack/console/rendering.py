"""Rendering a console page: the Jinja2 environment (autoescaped: what a model or an expert
wrote is shown as text) and what every page is given (who is signed in, the nav, the CSRF token).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from safestack.console.pages import ConsolePage
from safestack.console.session import CSRF_FIELD, Principal, session_of
from safestack.policy import BANDS

PACKAGE = files("safestack.console")
# Azure AI Content Safety's reading of its 0-7 scale, shown beside the policy's bands.
BAND_MEANINGS = {
    "very_low": "safe, or harm discussed in a general, educational or fictional way",
    "low": "prejudiced or mildly harmful content, with little to act on",
    "medium": "explicit harmful content or instructions a person could act on",
    "high": "severe, actionable harm: endorses, instructs or glorifies serious harm",
}


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")), autoescape=True
    )
    env.globals["BANDS"] = BANDS
    env.globals["BAND_MEANINGS"] = BAND_MEANINGS
    return Jinja2Templates(env=env)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with what every page shows: who is signed in, the nav and the CSRF token."""
    user: Principal | None = getattr(request.state, "principal", None)
    pages: Sequence[ConsolePage] = request.app.state.pages
    nav = [p for p in pages if user is not None and p.visible_to(user.scopes)]
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "nav": nav,
            "csrf_field": CSRF_FIELD,
            "csrf_token": session_of(request).csrf,
            **context,
        },
        status_code=status_code,
    )
    return response
