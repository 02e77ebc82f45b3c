"""Accounts in the domain: validated roles per side, Argon2id hashes, tokens tied to credentials."""

from datetime import timedelta

import pytest

from patrol.accounts import (
    Principal,
    RoleGrant,
    authenticate,
    create_user,
    issue_token,
    user_for_token,
)
from patrol.errors import AuthenticationFailed, Conflict, InvalidRequest
from patrol.models import Role

SECRET = "a test signing key of at least thirty-two bytes"


def _member(session, username="member-01"):
    return create_user(
        session,
        username=username,
        password="long enough pw",
        side="GD-LJ",
        grants=[RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")],
    )


def test_passwords_are_hashed_with_argon2id(session):
    user = _member(session)
    assert user.password_hash.startswith("$argon2id$") and "long enough pw" not in user.password_hash
    assert authenticate(session, "member-01", "long enough pw").id == user.id
    with pytest.raises(AuthenticationFailed):
        authenticate(session, "member-01", "wrong")
    with pytest.raises(AuthenticationFailed):
        authenticate(session, "nobody", "long enough pw")


def test_principal_carries_side_roles_and_scope(session):
    user = create_user(
        session,
        username="multi",
        password="long enough pw",
        side="GD-LJ",
        grants=[RoleGrant(Role.STATION_MANAGER, station="LJ-S-GQ"), RoleGrant(Role.ENFORCEMENT_OFFICER)],
    )
    principal = Principal.of(user)
    assert principal.side == "GD-LJ" and principal.stations == {"LJ-S-GQ"}
    assert principal.has(Role.ENFORCEMENT_OFFICER) and not principal.has(Role.ADMIN)


def test_roles_must_fit_the_side(session):
    with pytest.raises(InvalidRequest) as refused:
        create_user(
            session,
            username="hp-member",
            password="long enough pw",
            side="GX-HP",
            grants=[RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")],
        )
    assert "LJ-T-GQ" in refused.value.message


def test_usernames_are_unique(session):
    _member(session)
    with pytest.raises(Conflict):
        _member(session)


def test_tokens_expire(session):
    user = _member(session)
    token, _ = issue_token(user, SECRET, timedelta(seconds=-1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        user_for_token(session, token, SECRET)
    token, _ = issue_token(user, SECRET, timedelta(minutes=5))
    assert user_for_token(session, token, SECRET).id == user.id
    with pytest.raises(AuthenticationFailed):
        user_for_token(session, token, "another secret, also long enough for HS256")
