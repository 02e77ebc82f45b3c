"""Test factories: users with roles, and the headers that sign them in."""

from __future__ import annotations

import re

from patrol.accounts import RoleGrant, create_user
from patrol.models import Role

PASSWORD = "correct horse battery"

# username -> (side, grants)
STANDARD_USERS = {
    "admin": ("GD-LJ", [RoleGrant(Role.ADMIN)]),
    "member": ("GD-LJ", [RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")]),
    "member-2": ("GD-LJ", [RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")]),
    "member-yz": ("GD-LJ", [RoleGrant(Role.PATROL_MEMBER, team="LJ-T-YZ")]),
    "member-hp": ("GX-HP", [RoleGrant(Role.PATROL_MEMBER, team="HP-T-SK")]),
    "manager": ("GD-LJ", [RoleGrant(Role.STATION_MANAGER, station="LJ-S-GQ")]),
    "officer-lj": ("GD-LJ", [RoleGrant(Role.ENFORCEMENT_OFFICER)]),
    "officer-hp": ("GX-HP", [RoleGrant(Role.ENFORCEMENT_OFFICER)]),
}


def add_users(sessions, *names: str) -> None:
    with sessions() as session:
        for name in names or STANDARD_USERS:
            side, grants = STANDARD_USERS[name]
            create_user(session, username=name, password=PASSWORD, side=side, grants=grants)
        session.commit()


def token(client, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def auth(client, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client, username)}"}


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login page, as a browser does (session cookie and CSRF token)."""
    token = CSRF.search(client.get("/login").text).group(1)
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
