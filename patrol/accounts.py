"""Accounts, roles and sides; sign-in sessions; managing accounts.

Passwords are hashed with Argon2id and must pass the policy in ``patrol.passwords``. Signing in
(``sign_in``) goes through the login throttle (``patrol.throttle``) and opens a server-side session
(``AuthSession``): the API's bearer token and the pages' cookie are random secrets naming one.
Ending sessions is the one way access is withdrawn: sign-out ends one; a password change, disabling
an account or changing its roles ends all of the account's sessions, so a copied token or cookie
stops working on its next request.

Every account write records exactly one audit entry in the caller's transaction: ``user.create``,
``user.update``, ``user.password``, ``user.delete``, ``user.unlock``, ``user.lock`` (the throttle
locked an account), ``auth.sign_in`` and ``auth.sign_out``. Failed sign-ins are not audited (see
``patrol.throttle``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from patrol import throttle
from patrol.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Problem,
)
from patrol.models import AuthSession, Base, GridImport, Role, Side, Station, Team, User, UserRole
from patrol.passwords import (
    check_password,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)
from patrol.settings import AuthSettings

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")
DISPLAY_NAME_MAX = 128
SESSION_KINDS = ("token", "page")
# A session's last use is written at most this often: a write per request would put every read
# behind SQLite's single writer and cost PostgreSQL a row update per request, for a time nobody
# needs to the second.
TOUCH_EVERY = timedelta(minutes=5)
MAX_SECRET_LENGTH = 256  # ours are 43 characters; anything far longer is not one of them


@dataclass(frozen=True)
class RoleGrant:
    role: Role
    team: str | None = None
    station: str | None = None

    def label(self) -> str:
        scope = self.team or self.station
        return f"{self.role.value}:{scope}" if scope else self.role.value


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
    # The public id of the sign-in session the request came with (None: the command line).
    session_id: str | None = None

    def has(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @classmethod
    def of(
        cls, user: User, *, channel: str = "api", address: str | None = None, session_id: str | None = None
    ) -> Principal:
        return cls._build(
            user.id,
            user.username,
            user.display_name,
            user.side,
            [(r.role, r.team, r.station) for r in user.roles],
            channel=channel,
            address=address,
            session_id=session_id,
        )

    @classmethod
    def _build(cls, user_id, username, display_name, side, roles, **where) -> Principal:
        return cls(
            user_id=user_id,
            username=username,
            display_name=display_name,
            side=side,
            roles=frozenset(Role(role) for role, _, _ in roles),
            teams=frozenset(team for _, team, _ in roles if team),
            stations=frozenset(station for _, _, station in roles if station),
            **where,
        )


def utc(value: datetime | None = None) -> datetime:
    """``value`` (default: now) as an aware UTC datetime; SQLite hands back naive UTC values."""
    if value is None:
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(session: Session, principal: Principal | None, action: str, object_type: str, object_id, changes):
    # Imported here: patrol.audit imports Principal from this module.
    from patrol import audit

    audit.record(session, principal, action, object_type, object_id, changes)


def _audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    from patrol import audit

    return audit.changes(before, after) or None


# --- checks ----------------------------------------------------------------------------------------


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


def _check_display_name(display_name: str) -> list[Problem]:
    if not display_name.strip():
        return [Problem("bad-display-name", "the display name must not be empty")]
    if len(display_name) > DISPLAY_NAME_MAX:
        return [
            Problem(
                "bad-display-name",
                f"the display name must be at most {DISPLAY_NAME_MAX} characters, got {len(display_name)}",
            )
        ]
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in display_name):
        return [Problem("bad-display-name", "the display name must not contain control characters")]
    return []


def _refuse(problems: list[Problem]) -> None:
    if problems:
        raise InvalidRequest("; ".join(p.message for p in problems), problems)


def role_labels(user: User) -> list[str]:
    """The user's roles as ``role[:team or station]``, sorted (as the CLI takes them)."""
    return sorted(r.role + (f":{r.team or r.station}" if (r.team or r.station) else "") for r in user.roles)


def _snapshot(user: User) -> dict[str, Any]:
    """What the audit trail shows of an account (never its password hash)."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "side": user.side,
        "is_active": user.is_active,
        "roles": role_labels(user),
    }


def _is_admin(user: User) -> bool:
    return any(r.role == Role.ADMIN.value for r in user.roles)


def _guard_last_admin(session: Session, user: User, doing: str) -> None:
    """Conflict if ``user`` is the only active admin left (nobody could manage accounts after)."""
    if not (user.is_active and _is_admin(user)):
        return
    others = session.scalar(
        select(func.count(func.distinct(User.id)))
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.ADMIN.value, User.is_active.is_(True), User.id != user.id)
    )
    if not others:
        raise Conflict(
            f"{user.username} is the last active admin: {doing} would leave nobody to manage accounts; "
            "make another account admin first"
        )


# --- managing accounts ------------------------------------------------------------------------------


def get_user(session: Session, username: str) -> User:
    """The account of this name, or NotFound (names that cannot exist are not looked up)."""
    user = (
        session.scalar(select(User).where(User.username == username))
        if USERNAME_PATTERN.match(username)
        else None
    )
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    side: str,
    grants: list[RoleGrant],
    display_name: str | None = None,
    by: Principal | None = None,
) -> User:
    """Create a user with roles (audited as ``user.create`` by ``by``; None: the service itself,
    e.g. the demo). Raises InvalidRequest / Conflict; flushes, does not commit."""
    grants = list(dict.fromkeys(grants))
    problems: list[Problem] = []
    if not USERNAME_PATTERN.match(username):
        problems.append(
            Problem(
                "bad-username",
                "username must be 3–64 characters of a–z, 0–9, '.', '_' or '-' "
                f"(lower case, starting and ending with a letter or digit), got {username[:80]!r}",
            )
        )
    if display_name:  # none or empty: the username
        problems += _check_display_name(display_name)
    problems += password_problems(password, username)
    problems += _check_grants(session, side, grants)
    _refuse(problems)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"a user named {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        side=side,
        password_hash=hash_password(password),
        is_active=True,
        roles=[UserRole(role=g.role.value, team=g.team, station=g.station) for g in grants],
    )
    session.add(user)
    throttle.unlock(session, username)  # a new account does not inherit failures against its name
    session.flush()
    _record(session, by, "user.create", "user", user.username, _audit_changes({}, _snapshot(user)))
    return user


def update_user(
    session: Session,
    by: Principal | None,
    username: str,
    *,
    display_name: str | None = None,
    is_active: bool | None = None,
    grants: list[RoleGrant] | None = None,
    now: datetime | None = None,
) -> User:
    """Change an account's display name, enable or disable it, or replace its roles (None: keep).
    Disabling it or changing its roles ends its sessions at once. Audited as ``user.update``."""
    now = utc(now)
    user = get_user(session, username)
    problems = _check_display_name(display_name) if display_name is not None else []
    if grants is not None:
        grants = list(dict.fromkeys(grants))
        problems += _check_grants(session, user.side, grants)
    _refuse(problems)
    before = _snapshot(user)
    new_roles = sorted(g.label() for g in grants) if grants is not None else before["roles"]
    if is_active is False and user.is_active:
        _guard_last_admin(session, user, "disabling it")
    elif Role.ADMIN.value not in new_roles:
        _guard_last_admin(session, user, "removing its admin role")
    if display_name is not None:
        user.display_name = display_name
    if grants is not None and new_roles != before["roles"]:
        user.roles.clear()
        session.flush()  # the old rows go before the new ones (one of them may be the same grant)
        user.roles.extend(UserRole(role=g.role.value, team=g.team, station=g.station) for g in grants)
    if is_active is not None:
        user.is_active = is_active
    session.flush()
    after = _snapshot(user)
    if (before["is_active"] and not after["is_active"]) or before["roles"] != after["roles"]:
        end_sessions(session, user.id, now=now)
    _record(session, by, "user.update", "user", user.username, _audit_changes(before, after))
    return user


def set_password(
    session: Session, by: Principal | None, username: str, password: str, *, now: datetime | None = None
) -> int:
    """An admin sets a new password (checked against the policy); every session of the account
    ends. Audited as ``user.password`` (no secret in it). Returns the number of sessions ended."""
    user = get_user(session, username)
    check_password(password, user.username)
    user.password_hash = hash_password(password)
    ended = end_sessions(session, user.id, now=utc(now))
    _record(session, by, "user.password", "user", user.username, {"sessions_ended": [None, ended]})
    return ended


def change_own_password(
    session: Session,
    principal: Principal,
    current: str,
    new: str,
    *,
    settings: AuthSettings,
    now: datetime | None = None,
) -> int:
    """A user changes their own password, proving the current one (throttled like a sign-in).
    Their other sessions end; the one asking stays signed in. Commits, because a wrong current
    password must be counted even though the request fails. Returns the sessions ended."""
    now = utc(now)
    user = session.get(User, principal.user_id)
    if user is None:
        raise AuthenticationFailed("the account no longer exists")
    check_password(new, user.username)
    attempt = throttle.Attempt(user.username, principal.address)
    if not _password_attempt(session, attempt, user, current, settings, now, principal.channel):
        raise PermissionDenied("the current password is not correct")
    user.password_hash = hash_password(new)
    ended = end_sessions(session, user.id, now=now, keep=principal.session_id)
    _record(session, principal, "user.password", "user", user.username, {"sessions_ended": [None, ended]})
    session.commit()
    return ended


# Everything that may refer to an account, for the message when it cannot be deleted. Tables
# added later are found by their foreign keys and named by their table.
_REFERENCES = {
    "patrols": "patrols uploaded",
    "patrol_members": "patrols walked",
    "incidents": "incidents reported",
    "incident_events": "incident history entries",
    "incident_photos": "photos",
    "joint_cases": "joint cases opened",
    "joint_case_participants": "joint case participations",
    "joint_case_actions": "joint case actions",
}


def _references(session: Session, user: User) -> list[str]:
    """What refers to the account, e.g. ``3 patrols uploaded`` (empty: it may be deleted). Rows
    that belong to the account alone (roles, sessions: ON DELETE CASCADE) do not count."""
    found = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name != "users" or (fk.ondelete or "").upper() == "CASCADE":
                continue
            count = session.scalar(select(func.count()).select_from(table).where(fk.parent == user.id))
            if count:
                found.append(f"{count} {_REFERENCES.get(table.name, table.name)}")
    imports = session.scalar(select(func.count(GridImport.id)).where(GridImport.imported_by == user.username))
    if imports:
        found.append(f"{imports} grid imports")
    return found


def delete_user(session: Session, by: Principal | None, username: str) -> None:
    """Delete an account that nothing refers to, with its roles and sessions; Conflict otherwise
    (disable it instead: its name stays on what it did). Audited as ``user.delete``."""
    user = get_user(session, username)
    _guard_last_admin(session, user, "deleting it")
    references = _references(session, user)
    if references:
        raise Conflict(
            f"{user.username} cannot be deleted: referred to by {', '.join(references)}; "
            "disable the account instead"
        )
    before = _snapshot(user)
    session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
    throttle.unlock(session, user.username)
    session.delete(user)
    session.flush()
    _record(session, by, "user.delete", "user", username, _audit_changes(before, {}))


def unlock_user(session: Session, by: Principal | None, username: str) -> throttle.AccountThrottle:
    """Lift the sign-in lock and failure count of an account. Audited as ``user.unlock``."""
    user = get_user(session, username)
    was = throttle.unlock(session, user.username)
    changes = {"locked": [was.locked, False], "failed_sign_ins": [was.failures, 0]}
    _record(session, by, "user.unlock", "user", user.username, changes)
    return was


def display_names(session: Session, usernames) -> dict[str, str]:
    """The display names of the given usernames (a username without an account maps to itself)."""
    names = {name: name for name in usernames if name}
    if names:
        rows = session.execute(select(User.username, User.display_name).where(User.username.in_(names)))
        names.update({username: shown for username, shown in rows})
    return names


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def sign_in_states(session: Session, users: list[User]) -> dict[str, throttle.AccountThrottle]:
    """Failure counts and locks of these accounts (absent: none)."""
    return throttle.account_states(session, [u.username for u in users])


# --- signing in and out -------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SignIn:
    secret: str  # give it to the client once; only its hash is kept
    session_id: str
    expires_at: datetime
    principal: Principal


def _password_attempt(
    session: Session,
    attempt: throttle.Attempt,
    user: User | None,
    password: str,
    settings: AuthSettings,
    now: datetime,
    channel: str,
) -> bool:
    """Check a password under the throttle: refused at once while slowed down or locked; counted
    (and committed) before the hash is checked; a failure that reaches the lock threshold locks
    the account (audited) and answers AccountLocked. True: the password is right."""
    throttle.check(session, attempt, settings, now)
    throttle.reserve(session, attempt, settings, now)
    session.commit()
    if verify_password(user.password_hash if user else None, password) and user.is_active:
        throttle.succeeded(session, attempt, settings)
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return True
    if throttle.failed(session, attempt, settings, now):
        if user is not None:
            anonymous = Principal(
                0, "anonymous", "", "", frozenset(), channel=channel, address=attempt.address
            )
            changes = {"locked": [False, True], "failed_sign_ins": [None, settings.lock_after_failures]}
            _record(session, anonymous, "user.lock", "user", user.username, changes)
        session.commit()
        raise throttle.locked_error(settings)
    session.commit()
    return False


def sign_in(
    session: Session,
    username: str,
    password: str,
    *,
    kind: str,
    address: str | None,
    settings: AuthSettings,
    now: datetime | None = None,
    replaces: str | None = None,
) -> SignIn:
    """Check the credentials under the login throttle and open a session of ``kind`` ("token":
    the API's bearer token; "page": the pages' cookie). A wrong name and a wrong password get the
    same answer after the same work. ``replaces``: the id of the page session the browser held
    before, ended with this sign-in. Commits (a failure must be counted though the request fails).

    Raises AuthenticationFailed, TooManyAttempts (with the wait) or AccountLocked."""
    if kind not in SESSION_KINDS:
        raise ValueError(f"unknown session kind {kind!r}")
    now = utc(now)
    channel = "api" if kind == "token" else "page"
    name = username.strip().lower()
    attempt = throttle.Attempt(name, address)
    user = session.scalar(select(User).where(User.username == name)) if USERNAME_PATTERN.match(name) else None
    if not _password_attempt(session, attempt, user, password, settings, now, channel):
        raise AuthenticationFailed("incorrect username or password")
    # Now and then: what has expired goes (indexed deletes, once per sign-in, not per request).
    session.execute(delete(AuthSession).where(AuthSession.expires_at < now))
    throttle.purge(session, settings, now)
    ttl = settings.token_ttl_minutes if kind == "token" else settings.session_ttl_minutes
    secret = secrets.token_urlsafe(32)
    row = AuthSession(
        id=secrets.token_hex(16),
        secret_hash=_digest(secret),
        user_id=user.id,
        kind=kind,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(minutes=ttl),
        channel=channel,
        address=address[:64] if address else None,
    )
    session.add(row)
    principal = Principal.of(user, channel=channel, address=address, session_id=row.id)
    changes = {"kind": [None, kind], "expires_at": [None, row.expires_at]}
    if replaces is not None:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == replaces, AuthSession.kind == "page", AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        changes["replaces"] = [replaces, None]
    _record(session, principal, "auth.sign_in", "auth", row.id, changes)
    session.commit()
    return SignIn(secret, row.id, row.expires_at, principal)


# Who a secret signs in: the session, its account and the account's roles in one query. Built once:
# on every request, constructing the statement cost more than running it (SpatiaLite, in process);
# run on the session's connection, the rows come back without the ORM's result machinery.
_PRINCIPAL_QUERY = (
    select(
        AuthSession.id,
        AuthSession.kind,
        AuthSession.expires_at,
        AuthSession.revoked_at,
        AuthSession.last_used_at,
        User.id.label("user_id"),
        User.username,
        User.display_name,
        User.side,
        User.is_active,
        UserRole.role,
        UserRole.team,
        UserRole.station,
    )
    .join(User, User.id == AuthSession.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(AuthSession.secret_hash == bindparam("digest"))
)


def principal_for_secret(
    session: Session,
    secret: str,
    *,
    kind: str,
    channel: str,
    address: str | None,
    now: datetime | None = None,
) -> Principal:
    """Who a bearer token (``kind`` "token") or page cookie ("page") signs in, read in one query
    (session, account and roles joined). AuthenticationFailed if it is unknown, ended, expired or
    its account disabled. Writes (and commits) the session's last use every TOUCH_EVERY at most."""
    now = utc(now)
    invalid = "the access token is not valid" if kind == "token" else "the browser session is not valid"
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        raise AuthenticationFailed(invalid)
    rows = session.connection().execute(_PRINCIPAL_QUERY, {"digest": _digest(secret)}).all()
    if not rows or rows[0].kind != kind:
        raise AuthenticationFailed(f"{invalid}; sign in again")
    first = rows[0]
    if first.revoked_at is not None:
        raise AuthenticationFailed(
            "this session has ended (signed out, password changed, roles changed or account disabled); "
            "sign in again"
        )
    if utc(first.expires_at) <= now:
        raise AuthenticationFailed("the session has expired; sign in again")
    if not first.is_active:
        raise AuthenticationFailed("the account is disabled")
    if utc(first.last_used_at) < now - TOUCH_EVERY:
        session.execute(update(AuthSession).where(AuthSession.id == first.id).values(last_used_at=now))
        session.commit()
    roles = [(r.role, r.team, r.station) for r in rows if r.role is not None]
    return Principal._build(
        first.user_id,
        first.username,
        first.display_name,
        first.side,
        roles,
        channel=channel,
        address=address,
        session_id=first.id,
    )


def sign_out(session: Session, principal: Principal, *, now: datetime | None = None) -> None:
    """End the session the principal came with. Audited as ``auth.sign_out``; flushes."""
    if principal.session_id is None:
        raise InvalidRequest("there is no sign-in session to end")
    now = utc(now)
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == principal.session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    _record(session, principal, "auth.sign_out", "auth", principal.session_id, {"revoked_at": [None, now]})


def renew_token(
    session: Session, principal: Principal, *, settings: AuthSettings, now: datetime | None = None
) -> SignIn:
    """A fresh bearer token for the one the principal came with, which ends: a field app renews
    whenever it is online, so a member who works offline for days is not signed out with work
    queued. Only a token that still works can be renewed (an expired or ended one cannot), and the
    new one lasts the usual time from now. Audited as ``auth.renew``; flushes."""
    kind = (
        session.scalar(select(AuthSession.kind).where(AuthSession.id == principal.session_id))
        if principal.session_id is not None
        else None
    )
    if kind != "token":
        raise InvalidRequest("only a bearer token can be renewed; a browser session is renewed by signing in")
    now = utc(now)
    ended = session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == principal.session_id,
            AuthSession.kind == "token",
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    ).rowcount
    if not ended:  # renewed by a concurrent request meanwhile
        raise AuthenticationFailed("this token was renewed or ended meanwhile; sign in again")
    secret = secrets.token_urlsafe(32)
    row = AuthSession(
        id=secrets.token_hex(16),
        secret_hash=_digest(secret),
        user_id=principal.user_id,
        kind="token",
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(minutes=settings.token_ttl_minutes),
        channel="api",
        address=principal.address[:64] if principal.address else None,
    )
    session.add(row)
    changes = {"replaces": [principal.session_id, None], "expires_at": [None, row.expires_at]}
    _record(session, principal, "auth.renew", "auth", row.id, changes)
    session.flush()
    return SignIn(secret, row.id, row.expires_at, principal)


def end_sessions(session: Session, user_id: int, *, now: datetime, keep: str | None = None) -> int:
    """End every session of an account not ended yet (but ``keep``); how many were ended."""
    statement = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    return session.execute(statement).rowcount or 0
