"""OAuth2 password flow: a phone app posts username and password, gets a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import Public, SessionDep, SettingsDep, SignedIn, token_ttl
from patrol.accounts import authenticate, issue_token

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


@router.post("/token", response_model=Token, summary="Exchange username and password for a bearer token")
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    _: Public,
) -> Token:
    user = authenticate(session, form.username, form.password)
    session.commit()  # a rehashed password is kept
    ttl = token_ttl(settings)
    access_token, expires = issue_token(user, settings.secret_key(), ttl)
    return Token(
        access_token=access_token, expires_in=int(ttl.total_seconds()), expires_at=expires.isoformat()
    )


@router.get("/me", response_model=Me, summary="Who the token or session belongs to")
def me(principal: SignedIn) -> Me:
    return Me(
        username=principal.username,
        display_name=principal.display_name,
        side=principal.side,
        roles=sorted(r.value for r in principal.roles),
        teams=sorted(principal.teams),
        stations=sorted(principal.stations),
    )
