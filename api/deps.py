"""Request dependencies as annotated aliases: the database session and who is calling.

Every route declares who may call it with exactly one :class:`Access` dependency: ``Public``,
``SignedIn``, or ``Allow(Role…)``. A test walks all routes and fails if one has none.

Callers authenticate with a bearer token (apps, scripts) or with the browser session the login
page sets; both name a server-side session (``patrol.accounts``), so signing out, a password
change or disabling the account ends them at once. A session-authenticated write must also carry
the session's CSRF token.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from patrol.accounts import Principal, principal_for_secret
from patrol.errors import AuthenticationFailed, PermissionDenied
from patrol.models import Role
from patrol.settings import Settings

TOKEN_URL = "/api/v1/auth/token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


# FastAPI runs a plain ``def`` dependency in a worker thread, a hop costing ~0.15 ms here (a no-op
# request had six). Dependencies that do no I/O are ``async def`` and run on the event loop; those
# that touch the database stay off it.


async def get_session(request: Request) -> AsyncIterator[Session]:
    # Opening a session does no I/O (it connects on first use); closing it does (a rollback, the
    # connection back to the pool), so that part runs in a worker thread.
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def request_now(request: Request) -> datetime:
    """The time now, from ``app.state.clock`` when one is set (tests move it instead of sleeping)."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


async def get_now(request: Request) -> datetime:
    return request_now(request)


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]

# The key in the pages' signed cookie that holds the secret of their server-side session.
PAGE_SESSION_KEY = "sid"


def csrf_token(request: Request) -> str:
    """The browser session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not submitted or not secrets.compare_digest(expected, submitted):
        raise PermissionDenied(
            "页面已过期, 请刷新后重试 This page has expired (missing or wrong CSRF token): reload it and try again"
        )


def request_channel(request: Request) -> str:
    """Where a request comes from, for the audit trail: the JSON API or the service's own pages."""
    return "api" if request.url.path.startswith("/api/") else "page"


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def principal_from_request(
    request: Request,
    session: Session,
    token: str | None,
    *,
    header_csrf: bool = True,
    public: bool = False,
    now: datetime | None = None,
) -> Principal | None:
    """Who the request's bearer token or page session signs in (None: neither). A page session
    that has ended is dropped from the cookie: public pages then see an anonymous visitor (and
    send them to sign in), everything else answers 401."""
    where = {"channel": request_channel(request), "address": client_address(request)}
    now = now or request_now(request)
    if token:
        return principal_for_secret(session, token, kind="token", now=now, **where)
    secret = request.session.get(PAGE_SESSION_KEY)
    if not secret:
        return None
    try:
        principal = principal_for_secret(session, secret, kind="page", now=now, **where)
    except AuthenticationFailed:
        request.session.pop(PAGE_SESSION_KEY, None)
        if public:
            return None
        raise
    if header_csrf and request.method not in SAFE_METHODS:
        check_csrf(request, request.headers.get(CSRF_HEADER))
    return principal


class Access:
    """Who may call a route: anyone, any signed-in user, or holders of some roles (admin always)."""

    def __init__(self, *roles: Role, public: bool = False, form_csrf: bool = False):
        self.roles = frozenset(roles)
        self.public = public
        # HTML form routes check the CSRF token from the form body themselves, not from a header.
        self.form_csrf = form_csrf

    def __repr__(self) -> str:
        if self.public:
            return "Access(public)"
        return f"Access({', '.join(sorted(r.value for r in self.roles)) or 'signed-in'})"

    def __call__(
        self,
        request: Request,
        session: SessionDep,
        now: NowDep,
        token: Annotated[str | None, Depends(oauth2_scheme)],
    ) -> Principal | None:
        principal = principal_from_request(
            request, session, token, header_csrf=not self.form_csrf, public=self.public, now=now
        )
        if self.form_csrf:
            # These routes read their form (a track, a photo) after this, as it arrives: end the
            # transaction so that no database connection waits on a slow or stalled upload.
            session.commit()
        if self.public:
            return principal
        if principal is None:
            raise AuthenticationFailed("sign in first: this needs a bearer token or a browser session")
        if self.roles and not principal.has(*self.roles):
            needed = " or ".join(sorted(r.value for r in self.roles))
            raise PermissionDenied(f"this needs the role {needed}")
        return principal


Public = Annotated[Principal | None, Depends(Access(public=True))]
# For HTML forms that carry the CSRF token as a form field (checked by the route).
PublicForm = Annotated[Principal | None, Depends(Access(public=True, form_csrf=True))]
SignedIn = Annotated[Principal, Depends(Access())]
AdminOnly = Annotated[Principal, Depends(Access(Role.ADMIN))]
