"""Accounts (admin)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import AdminOnly, SessionDep
from patrol.accounts import RoleGrant, create_user, list_users
from patrol.models import Role, User

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class RoleIn(BaseModel):
    role: Role
    team: str | None = None
    station: str | None = None


class UserIn(BaseModel):
    username: str
    password: str = Field(min_length=1, repr=False)
    side: str
    display_name: str | None = None
    roles: list[RoleIn]


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    side: str
    is_active: bool
    roles: list[RoleIn]

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            side=user.side,
            is_active=user.is_active,
            roles=[RoleIn(role=Role(r.role), team=r.team, station=r.station) for r in user.roles],
        )


@router.get("", response_model=list[UserOut], summary="List accounts (admin)")
def users(session: SessionDep, _: AdminOnly):
    return [UserOut.of(u) for u in list_users(session)]


@router.post(
    "", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Create an account (admin)"
)
def add_user(body: UserIn, session: SessionDep, _: AdminOnly):
    user = create_user(
        session,
        username=body.username,
        password=body.password,
        side=body.side,
        display_name=body.display_name,
        grants=[RoleGrant(r.role, team=r.team, station=r.station) for r in body.roles],
    )
    session.commit()
    return UserOut.of(user)
