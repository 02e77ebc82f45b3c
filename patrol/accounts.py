"""Accounts, roles and sides; password hashing and bearer tokens.

Passwords are hashed with Argon2id. Access tokens are short JWTs (HS256) naming the user and the
user's credentials version, so a password change or deactivation ends every token at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol.errors import AuthenticationFailed, Conflict, InvalidRequest, Problem
from patrol.models import Role, Side, Station, Team, User, UserRole

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters
# Verified when the username is unknown, so a wrong username costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")
MIN_PASSWORD_LENGTH = 10
TOKEN_ALGORITHM = "HS256"


@dataclass(frozen=True)
class RoleGrant:
    role: Role
    team: str | None = None
    station: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is asking: what the API and the domain need to decide access, without the ORM."""

    user_id: int
    username: str
    display_name: str
    side: str
    roles: frozenset[Role]
    teams: frozenset[str] = field(default_factory=frozenset)
    stations: frozenset[str] = field(default_factory=frozenset)
    # Where the request came from, for the audit trail: "api", "page" (the service's own HTML
    # pages) or "cli"; and the client's address when there is one.
    channel: str = "api"
    address: str | None = None

    def has(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @classmethod
    def of(cls, user: User, *, channel: str = "api", address: str | None = None) -> Principal:
        return cls(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            side=user.side,
            roles=frozenset(Role(r.role) for r in user.roles),
            teams=frozenset(r.team for r in user.roles if r.team),
            stations=frozenset(r.station for r in user.roles if r.station),
            channel=channel,
            address=address,
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_grants(session: Session, side: str, grants: list[RoleGrant]) -> list[Problem]:
    problems: list[Problem] = []
    if session.get(Side, side) is None:
        sides = ", ".join(session.scalars(select(Side.code)))
        problems.append(Problem("unknown-side", f"unknown side {side!r}; known sides: {sides}"))
    if not grants:
        problems.append(Problem("no-role", "a user needs at least one role"))
    for grant in grants:
        if grant.role is Role.PATROL_MEMBER:
            team = session.get(Team, grant.team) if grant.team else None
            if team is None:
                problems.append(
                    Problem("unknown-team", f"a patrol member needs a known team, got {grant.team!r}")
                )
            elif team.side != side:
                problems.append(Problem("wrong-side", f"team {team.code} is on side {team.side}"))
        if grant.role is Role.STATION_MANAGER:
            station = session.get(Station, grant.station) if grant.station else None
            if station is None:
                problems.append(
                    Problem(
                        "unknown-station",
                        f"a station manager needs a known station, got {grant.station!r}",
                    )
                )
            elif station.side != side:
                problems.append(Problem("wrong-side", f"station {station.code} is on side {station.side}"))
    return problems


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    side: str,
    grants: list[RoleGrant],
    display_name: str | None = None,
) -> User:
    """Create a user with roles. Raises InvalidRequest / Conflict; flushes, does not commit."""
    problems: list[Problem] = []
    if not USERNAME_PATTERN.match(username):
        problems.append(
            Problem(
                "bad-username",
                "username must be 3–64 characters of a–z, 0–9, '.', '_' or '-' "
                f"(lower case, starting and ending with a letter or digit), got {username!r}",
            )
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(
            Problem("weak-password", f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        )
    problems += _check_grants(session, side, grants)
    if problems:
        raise InvalidRequest("; ".join(p.message for p in problems), problems)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"a user named {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        side=side,
        password_hash=hash_password(password),
        credentials_version=1,
        is_active=True,
        roles=[UserRole(role=g.role.value, team=g.team, station=g.station) for g in grants],
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    user.credentials_version += 1
    session.flush()


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with these credentials, or AuthenticationFailed (same message either way)."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationFailed("incorrect username or password") from None
    if user is None or not user.is_active:
        raise AuthenticationFailed("incorrect username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def issue_token(user: User, secret: str, ttl: timedelta) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + ttl
    claims = {
        "sub": str(user.id),
        "cv": user.credentials_version,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM), expires


def user_for_token(session: Session, token: str, secret: str) -> User:
    try:
        claims = jwt.decode(token, secret, algorithms=[TOKEN_ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("the access token has expired; sign in again") from None
    except jwt.PyJWTError:
        raise AuthenticationFailed("the access token is not valid") from None
    if claims.get("typ") != "access":
        raise AuthenticationFailed("the access token is not valid")
    return active_user(session, claims["sub"], claims.get("cv"))


def active_user(session: Session, user_id, credentials_version) -> User:
    """The user a token or session names, if it is still active and its password unchanged."""
    try:
        user = session.get(User, int(user_id))
    except (TypeError, ValueError):
        user = None
    if user is None or not user.is_active or user.credentials_version != credentials_version:
        raise AuthenticationFailed("the credentials are no longer valid; sign in again")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))
