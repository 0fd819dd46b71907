"""The console's FastAPI app: server-rendered pages (Jinja2, autoescaped), the sign-in, the
session cookie and CSRF check around every page, and the pages from the registry.

`create_app` takes everything built at the edge (the store, the policy, the targets, the judge,
the settings); nothing here reads the environment.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from safestack.console.pages import ConsolePage, load_pages
from safestack.console.rendering import PACKAGE, render, templates
from safestack.console.session import (
    COOKIE,
    NotSignedIn,
    Session,
    SessionCodec,
    check_csrf,
    principal,
    sign_in,
    sign_out,
)
from safestack.console.targets import ConsoleTargets
from safestack.errors import InputError, SafestackError
from safestack.judge import Judge
from safestack.policy import Policy
from safestack.settings import Settings
from safestack.store import Store
from safestack.store.console import EditConflict

log = logging.getLogger("safestack.console")


def page_access(page: ConsolePage) -> Callable[[Request], Awaitable[None]]:
    async def allowed(request: Request) -> None:
        user = principal(request)
        if not page.visible_to(user.scopes):
            raise HTTPException(403, f"your key's scopes do not open the {page.title} page")

    return allowed


def create_app(
    settings: Settings,
    *,
    store: Store,
    policy: Policy,
    targets: ConsoleTargets,
    judge: Judge | None,
    pages: Sequence[ConsolePage] = (),
    plugins: bool = True,
) -> FastAPI:
    """The console app. `judge` (None: no verdicts beside findings) judges flagged answers;
    `pages` are added after the built-in ones, then (with `plugins`) the entry points' pages."""
    from safestack.console.chat import chat_router
    from safestack.console.engagements import engagements_page, review_page
    from safestack.console.findings import findings_router
    from safestack.console.monitor import monitor_pages

    secret = (
        settings.console_secret.get_secret_value()
        if settings.console_secret
        else secrets.token_urlsafe(32)
    )
    codec = SessionCodec(
        secret, settings.console_session_hours * 3600, settings.console_secure_cookies
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await targets.aclose()

    app = FastAPI(
        title="safestack console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.policy = policy
    app.state.targets = targets
    app.state.judge = judge
    app.state.settings = settings
    app.state.templates = templates()
    engagements = engagements_page()
    engagements.router.include_router(chat_router())
    engagements.router.include_router(findings_router())
    builtin = [engagements, review_page(), *monitor_pages()]
    app.state.pages = load_pages([*builtin, *pages], plugins=plugins)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")

    @app.middleware("http")
    async def sessions(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        loaded = codec.load(request.cookies.get(COOKIE))
        request.state.session = loaded or Session.fresh()
        response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'",
        )
        session: Session = request.state.session
        if session.changed:
            codec.save(session, request, response)
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET" and "text/event-stream" not in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303)
        return render(request, "error.html", 401, message="sign in first")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html", exc.status_code, message=str(exc.detail))

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> Response:
        return render(request, "error.html", 400, message=str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:]) or 'request'}: {error['msg']}"
            for error in exc.errors()
        )
        return render(request, "error.html", 422, message=f"the form was not valid: {problems}")

    @app.exception_handler(EditConflict)
    async def edit_conflict(request: Request, exc: EditConflict) -> Response:
        return render(request, "error.html", 409, message=str(exc))

    @app.exception_handler(SafestackError)
    async def safestack_error(request: Request, exc: SafestackError) -> Response:
        log.warning("console: %s", exc)
        return render(request, "error.html", 503, message=str(exc))

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return render(request, "login.html", error=None)

    @app.post("/login", dependencies=[Depends(check_csrf)])
    def login(request: Request, key: str = Form(..., max_length=512)) -> Response:
        user = sign_in(request, store, key)
        if user is None:
            # Never echo or log the key; the message is the same for every kind of failure.
            return render(
                request,
                "login.html",
                401,
                error="that key is unknown, revoked or has no console scope "
                "(redteam, review or admin)",
            )
        log.info("console: %s (%s) signed in", user.id, user.name)
        return RedirectResponse("/", status_code=303)

    @app.post("/logout", dependencies=[Depends(check_csrf)])
    def logout(request: Request) -> Response:
        sign_out(request)
        return RedirectResponse("/login", status_code=303)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for page in app.state.pages:
        app.include_router(
            page.router, dependencies=[Depends(check_csrf), Depends(page_access(page))]
        )
    return app
