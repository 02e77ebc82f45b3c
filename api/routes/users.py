"""Accounts (admin): create, change, disable, reset a password, unlock, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from api.deps import AdminOnly, NowDep, SessionDep
from patrol.accounts import (
    RoleGrant,
    create_user,
    delete_user,
    get_user,
    list_users,
    set_password,
    sign_in_states,
    unlock_user,
    update_user,
)
from patrol.models import Role, User
from patrol.throttle import AccountThrottle

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class RoleIn(BaseModel):
    role: Role
    team: str | None = None
    station: str | None = None

    def grant(self) -> RoleGrant:
        return RoleGrant(self.role, team=self.team, station=self.station)


class UserIn(BaseModel):
    username: str
    password: str = Field(repr=False, description="checked against the password policy")
    side: str
    display_name: str | None = None
    roles: list[RoleIn]


class UserPatch(BaseModel):
    """What to change; a field left out is kept."""

    display_name: str | None = None
    is_active: bool | None = Field(
        default=None, description="false disables the account and ends its sessions"
    )
    roles: list[RoleIn] | None = Field(default=None, description="replaces all roles; ends the sessions")


class PasswordReset(BaseModel):
    password: str = Field(repr=False, description="checked against the password policy")


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    side: str
    is_active: bool
    locked: bool = Field(description="locked after too many failed sign-ins; an admin unlocks it")
    failed_sign_ins: int
    roles: list[RoleIn]

    @classmethod
    def of(cls, user: User, throttle: AccountThrottle | None = None) -> UserOut:
        throttle = throttle or AccountThrottle(0, False)
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            side=user.side,
            is_active=user.is_active,
            locked=throttle.locked,
            failed_sign_ins=throttle.failures,
            roles=[RoleIn(role=Role(r.role), team=r.team, station=r.station) for r in user.roles],
        )


def _out(session, user: User) -> UserOut:
    return UserOut.of(user, sign_in_states(session, [user]).get(user.username))


@router.get("", response_model=list[UserOut], summary="List accounts (admin)")
def users(session: SessionDep, _: AdminOnly):
    everyone = list_users(session)
    states = sign_in_states(session, everyone)
    return [UserOut.of(u, states.get(u.username)) for u in everyone]


@router.post(
    "", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Create an account (admin)"
)
def add_user(body: UserIn, session: SessionDep, principal: AdminOnly):
    user = create_user(
        session,
        username=body.username,
        password=body.password,
        side=body.side,
        display_name=body.display_name,
        grants=[r.grant() for r in body.roles],
        by=principal,
    )
    session.commit()
    return UserOut.of(user)


@router.get("/{username}", response_model=UserOut, summary="One account (admin)")
def one_user(username: str, session: SessionDep, _: AdminOnly):
    return _out(session, get_user(session, username))


@router.patch(
    "/{username}",
    response_model=UserOut,
    summary="Change the display name, disable or enable, or replace the roles (admin)",
    description="Disabling an account or changing its roles ends its sessions at once. The last "
    "active admin cannot be disabled or lose the admin role (409).",
)
def change_user(username: str, body: UserPatch, session: SessionDep, now: NowDep, principal: AdminOnly):
    user = update_user(
        session,
        principal,
        username,
        display_name=body.display_name,
        is_active=body.is_active,
        grants=[r.grant() for r in body.roles] if body.roles is not None else None,
        now=now,
    )
    session.commit()
    return _out(session, user)


@router.post(
    "/{username}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password for an account (admin); its sessions end",
)
def reset_password(
    username: str, body: PasswordReset, session: SessionDep, now: NowDep, principal: AdminOnly
):
    set_password(session, principal, username, body.password, now=now)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{username}/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Lift the lock (and the count) of failed sign-ins (admin)",
)
def unlock(username: str, session: SessionDep, principal: AdminOnly):
    unlock_user(session, principal, username)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an account nothing refers to (admin)",
    description="An account named on patrols, incidents, their history, photos or joint cases "
    "cannot be deleted (409): disable it instead. Its sessions go with it.",
)
def remove_user(username: str, session: SessionDep, principal: AdminOnly):
    delete_user(session, principal, username)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
