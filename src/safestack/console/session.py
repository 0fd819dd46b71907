"""Console sign-in, sessions and CSRF.

An expert signs in with an API key from the store (`safestack keys create NAME --scope redteam`);
the key is checked by hash (`store.keys.verify`) and never kept: the session cookie holds the
key's public id, a CSRF token and the sign-in time, signed with itsdangerous. The cookie is
HttpOnly and SameSite=Strict, and Secure when the request came over https or
`SAFESTACK_CONSOLE_SECURE_COOKIES` says so. Every visitor has a session (before sign-in too),
so the sign-in form carries a CSRF token like every other form; signing in issues a new one.
Each request re-reads the key, so a revoked key is signed out at once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from safestack.console.pages import CONSOLE_SCOPES
from safestack.store import ApiKey, Store

COOKIE = "safestack_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LEAD_SCOPES = frozenset({"review", "admin"})


@dataclass
class Session:
    csrf: str
    key_id: str | None = None
    since: float = 0.0
    changed: bool = False

    @classmethod
    def fresh(cls, key_id: str | None = None) -> Session:
        return cls(csrf=secrets.token_urlsafe(32), key_id=key_id, since=time.time(), changed=True)


class SessionCodec:
    """Signs and reads session cookies; a cookie older than `max_age_s` or tampered reads as None."""

    def __init__(self, secret: str, max_age_s: float, secure: bool | None) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="safestack-console-session")
        self.max_age_s = max_age_s
        self.secure = secure

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data: dict[str, Any] = self._serializer.loads(cookie, max_age=int(self.max_age_s))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        key_id = data.get("key")
        return Session(
            csrf=data["csrf"],
            key_id=key_id if isinstance(key_id, str) else None,
            since=float(data.get("since", 0.0)),
        )

    def save(self, session: Session, request: Request, response: Response) -> None:
        value = self._serializer.dumps(
            {"csrf": session.csrf, "key": session.key_id, "since": session.since}
        )
        secure = self.secure if self.secure is not None else request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(self.max_age_s),
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )


@dataclass(frozen=True)
class Principal:
    """The signed-in key: an expert (`redteam`) sees the engagements they are invited to; a lead
    (`review`) sees and reviews all of them; `admin` also creates them."""

    key: ApiKey

    @property
    def id(self) -> str:
        return self.key.id

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.key.scopes)

    @property
    def is_lead(self) -> bool:
        return not LEAD_SCOPES.isdisjoint(self.key.scopes)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.key.scopes


class NotSignedIn(Exception):
    """No live console key behind this request; pages redirect to the sign-in form."""


def session_of(request: Request) -> Session:
    session: Session = request.state.session
    return session


def sign_in(request: Request, store: Store, secret: str) -> Principal | None:
    """Check the presented key; on success the session is replaced (new CSRF token)."""
    key = store.keys.verify(secret.strip())
    if key is None or CONSOLE_SCOPES.isdisjoint(key.scopes):
        return None
    request.state.session = Session.fresh(key.id)
    return Principal(key)


def sign_out(request: Request) -> None:
    request.state.session = Session.fresh()


def principal(request: Request) -> Principal:
    """The signed-in key (a dependency); raises NotSignedIn when there is none or it was revoked."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    session = session_of(request)
    store: Store = request.app.state.store
    key = store.keys.get(session.key_id) if session.key_id else None
    if key is None or key.revoked or CONSOLE_SCOPES.isdisjoint(key.scopes):
        raise NotSignedIn()
    user = Principal(key)
    request.state.principal = user
    return user


async def check_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request without the session's CSRF token, sent as the form
    field `csrf_token` or the `X-CSRF-Token` header (the page's fetch calls)."""
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    expected = session_of(request).csrf
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(
            403, "this form has expired or did not come from the console: reload the page"
        )


User = Annotated[Principal, Depends(principal)]
"""A route's signed-in key: `def page(request: Request, user: User)`."""
