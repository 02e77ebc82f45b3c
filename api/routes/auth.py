"""Signing in and out: the OAuth2 password flow gives an app a bearer token naming a server-side
session; signing out ends it. A user changes their own password here too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.deps import (
    PAGE_SESSION_KEY,
    NowDep,
    Public,
    SessionDep,
    SettingsDep,
    SignedIn,
    client_address,
)
from patrol.accounts import change_own_password, renew_token, sign_in, sign_out

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    expires_at: str


class Me(BaseModel):
    username: str
    display_name: str
    side: str
    roles: list[str]
    teams: list[str]
    stations: list[str]


class PasswordChange(BaseModel):
    current_password: str = Field(repr=False)
    new_password: str = Field(repr=False, description="checked against the password policy")


def _problem(description: str) -> dict:
    return {"description": description, "content": {"application/problem+json": {}}}


@router.post(
    "/token",
    response_model=Token,
    summary="Exchange username and password for a bearer token",
    description="Throttled per account name and per client address: after a few failures the "
    "answer is 429 with `Retry-After`; after many, 423 until an admin unlocks the account. "
    "A name that does not exist is answered exactly as a wrong password.",
    responses={
        401: _problem("incorrect username or password"),
        423: _problem("the account is locked after too many failed sign-ins; an admin unlocks it"),
        429: _problem("too many failed sign-ins: wait `Retry-After` seconds (also in `retry_after`)"),
    },
)
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    _: Public,
) -> Token:
    signed_in = sign_in(
        session,
        form.username,
        form.password,
        kind="token",
        address=client_address(request),
        settings=settings.auth,
        now=now,
    )
    return Token(
        access_token=signed_in.secret,
        expires_in=int((signed_in.expires_at - now).total_seconds()),
        expires_at=signed_in.expires_at.isoformat(),
    )


@router.post(
    "/renew",
    response_model=Token,
    summary="A fresh bearer token for this one, which ends (a field app renews while online)",
    description="Only a token that still works is renewed; an expired or ended one answers 401.",
)
def renew(session: SessionDep, settings: SettingsDep, now: NowDep, principal: SignedIn) -> Token:
    renewed = renew_token(session, principal, settings=settings.auth, now=now)
    session.commit()
    return Token(
        access_token=renewed.secret,
        expires_in=int((renewed.expires_at - now).total_seconds()),
        expires_at=renewed.expires_at.isoformat(),
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out: end the session of this token (or browser session)",
)
def logout(request: Request, session: SessionDep, now: NowDep, principal: SignedIn) -> Response:
    sign_out(session, principal, now=now)
    session.commit()
    request.session.pop(PAGE_SESSION_KEY, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your own password (the current one is needed); your other sessions end",
)
def change_password(
    body: PasswordChange, session: SessionDep, settings: SettingsDep, now: NowDep, principal: SignedIn
) -> Response:
    change_own_password(
        session, principal, body.current_password, body.new_password, settings=settings.auth, now=now
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=Me, summary="Who the token or session belongs to")
async def me(principal: SignedIn) -> Me:  # no I/O: runs on the event loop, no worker-thread hop
    return Me(
        username=principal.username,
        display_name=principal.display_name,
        side=principal.side,
        roles=sorted(r.value for r in principal.roles),
        teams=sorted(principal.teams),
        stations=sorted(principal.stations),
    )
