"""Accounts in the domain: validated roles per side, Argon2id hashes and a password policy,
server-side sign-in sessions that can be ended, login throttling, and one audit entry per write."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from utils.accounts import audit_actions_since, audit_count

from patrol import audit
from patrol.accounts import (
    TOUCH_EVERY,
    Principal,
    RoleGrant,
    create_user,
    delete_user,
    principal_for_secret,
    set_password,
    sign_in,
    sign_out,
    unlock_user,
    update_user,
)
from patrol.errors import (
    AccountLocked,
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    TooManyAttempts,
)
from patrol.models import AuditEntry, AuthSession, JointCase, Role, User
from patrol.passwords import MAX_LENGTH
from patrol.settings import AuthSettings
from patrol.throttle import delay_seconds

PASSWORD = "long enough pw"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
AUTH = AuthSettings(free_attempts=3, address_free_attempts=6, lock_after_failures=6, max_delay_seconds=8)


def _member(session, username="member-01"):
    return create_user(
        session,
        username=username,
        password=PASSWORD,
        side="GD-LJ",
        grants=[RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")],
    )


def _admin(session, username="admin-01"):
    return create_user(
        session, username=username, password=PASSWORD, side="GD-LJ", grants=[RoleGrant(Role.ADMIN)]
    )


def _sign_in(session, name="member-01", password=PASSWORD, *, at=T0, address="10.0.0.1", kind="token"):
    return sign_in(session, name, password, kind=kind, address=address, settings=AUTH, now=at)


def _resolve(session, secret, *, at=T0, kind="token"):
    return principal_for_secret(session, secret, kind=kind, channel="api", address="10.0.0.1", now=at)


def test_passwords_are_hashed_with_argon2id(session):
    user = _member(session)
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_principal_carries_side_roles_and_scope(session):
    user = create_user(
        session,
        username="multi",
        password=PASSWORD,
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
            password=PASSWORD,
            side="GX-HP",
            grants=[RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")],
        )
    assert "LJ-T-GQ" in refused.value.message


def test_usernames_are_unique(session):
    _member(session)
    with pytest.raises(Conflict):
        _member(session)


# --- the password policy ----------------------------------------------------------------------------

WEAK = [
    ("short", "password-too-short", "at least 10 characters"),
    ("x" * (1024 * 1024), "password-too-long", f"at most {MAX_LENGTH} characters, got 1048576"),
    ("my-member-01-pw", "password-contains-username", "must not contain the username"),
    ("Member-01!", "password-contains-username", "must not contain the username"),
    ("zzzzzzzzzzzz", "password-one-character", "one character repeated"),
    ("Password123", "password-common", "most common passwords"),
    ("qwertyuiop", "password-common", "most common passwords"),
    ("long enough\x00pw", "password-control-character", "control characters"),
    ("long enough\npw", "password-control-character", "control characters"),
]


@pytest.mark.parametrize("password, kind, says", WEAK)
def test_the_policy_refuses_each_weak_kind_by_name(session, password, kind, says):
    with pytest.raises(InvalidRequest) as refused:
        create_user(
            session,
            username="member-01",
            password=password,
            side="GD-LJ",
            grants=[RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")],
        )
    assert kind in [p.kind for p in refused.value.problems] and says in refused.value.message
    assert session.scalar(select(User.id)) is None


@pytest.mark.parametrize("password, kind, says", WEAK)
def test_the_policy_applies_to_a_reset_too(session, password, kind, says):
    _member(session)
    with pytest.raises(InvalidRequest) as refused:
        set_password(session, None, "member-01", password)
    assert kind in [p.kind for p in refused.value.problems] and says in refused.value.message


def test_a_password_containing_the_username_is_refused_in_any_case(session):
    with pytest.raises(InvalidRequest, match="username"):
        create_user(
            session,
            username="gq-07",
            password="Secret-GQ-07-tide",
            side="GD-LJ",
            grants=[RoleGrant(Role.ADMIN)],
        )


# --- sessions ---------------------------------------------------------------------------------------


def test_a_session_names_its_user_until_it_expires(session):
    _member(session)
    signed = _sign_in(session)
    assert len(signed.secret) >= 40 and signed.expires_at == T0 + timedelta(minutes=AUTH.token_ttl_minutes)
    stored = session.get(AuthSession, signed.session_id)
    assert stored.secret_hash != signed.secret and signed.secret not in stored.secret_hash
    principal = _resolve(session, signed.secret, at=signed.expires_at - timedelta(seconds=1))
    assert principal.username == "member-01" and principal.teams == {"LJ-T-GQ"}
    assert principal.session_id == signed.session_id
    with pytest.raises(AuthenticationFailed, match="expired"):
        _resolve(session, signed.secret, at=signed.expires_at)


def test_a_token_is_not_a_page_session_nor_the_other_way(session):
    _member(session)
    token = _sign_in(session, kind="token").secret
    page = _sign_in(session, kind="page").secret
    with pytest.raises(AuthenticationFailed):
        _resolve(session, token, kind="page")
    with pytest.raises(AuthenticationFailed):
        _resolve(session, page, kind="token")


def test_sign_out_ends_that_session_only(session):
    _member(session)
    one, two = _sign_in(session), _sign_in(session)
    sign_out(session, _resolve(session, one.secret), now=T0)
    session.commit()
    with pytest.raises(AuthenticationFailed, match="ended"):
        _resolve(session, one.secret)
    assert _resolve(session, two.secret).username == "member-01"


def test_last_use_is_written_every_few_minutes_not_every_request(session):
    _member(session)
    signed = _sign_in(session)

    def last_used():
        session.expire_all()
        return session.get(AuthSession, signed.session_id).last_used_at.replace(tzinfo=UTC)

    _resolve(session, signed.secret, at=T0 + TOUCH_EVERY / 2)
    assert last_used() == T0
    _resolve(session, signed.secret, at=T0 + TOUCH_EVERY * 2)
    assert last_used() == T0 + TOUCH_EVERY * 2


@pytest.mark.parametrize(
    "change",
    [
        lambda s: set_password(s, None, "member-01", "a brand new passphrase"),
        lambda s: update_user(s, None, "member-01", is_active=False),
        lambda s: update_user(s, None, "member-01", grants=[RoleGrant(Role.PATROL_MEMBER, team="LJ-T-YZ")]),
    ],
    ids=["password", "disable", "roles"],
)
def test_password_change_disable_and_role_change_end_every_session(session, change):
    _member(session)
    token, page = _sign_in(session).secret, _sign_in(session, kind="page").secret
    change(session)
    session.commit()
    for secret, kind in ((token, "token"), (page, "page")):
        with pytest.raises(AuthenticationFailed, match="ended"):
            _resolve(session, secret, kind=kind)


def test_a_display_name_change_keeps_the_sessions(session):
    _member(session)
    token = _sign_in(session).secret
    update_user(session, None, "member-01", display_name="队员 01")
    session.commit()
    assert _resolve(session, token).display_name == "队员 01"


# --- throttling -------------------------------------------------------------------------------------


def test_back_off_doubles_after_the_free_attempts_up_to_the_cap():
    assert [delay_seconds(n, free=5, cap=300) for n in range(1, 16)] == [
        0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300,
    ]  # fmt: skip


def _fail(session, name, *, at, address="10.0.0.1"):
    with pytest.raises(AuthenticationFailed, match="incorrect username or password"):
        _sign_in(session, name, "not the password", at=at, address=address)


@pytest.mark.parametrize("name", ["member-01", "nobody-at-all"])
def test_known_and_unknown_names_are_slowed_down_alike(session, name):
    _member(session)
    session.commit()
    for _ in range(AUTH.free_attempts):
        _fail(session, name, at=T0)
    with pytest.raises(TooManyAttempts) as slowed:
        _sign_in(session, name, PASSWORD, at=T0)
    assert slowed.value.retry_after == 1 and "wait 1 second" in slowed.value.message
    _fail(session, name, at=T0 + timedelta(seconds=1))  # the wait is over: one more try, then 2 s
    with pytest.raises(TooManyAttempts) as slowed:
        _sign_in(session, name, PASSWORD, at=T0 + timedelta(seconds=2))
    assert slowed.value.retry_after == 1
    with pytest.raises(TooManyAttempts) as slowed:
        _sign_in(session, name, PASSWORD, at=T0 + timedelta(seconds=1))
    assert slowed.value.retry_after == 2


def test_a_successful_sign_in_clears_the_account_count(session):
    _member(session)
    for _ in range(AUTH.free_attempts - 1):
        _fail(session, "member-01", at=T0)
    _sign_in(session, at=T0)
    for _ in range(AUTH.free_attempts - 1):
        _fail(session, "member-01", at=T0)
    assert _sign_in(session, at=T0).principal.username == "member-01"


def test_one_address_trying_many_names_is_slowed_down(session):
    _member(session)
    for i in range(AUTH.address_free_attempts):
        _fail(session, f"guess-{i}", at=T0, address="203.0.113.9")
    with pytest.raises(TooManyAttempts, match="from this address"):
        _sign_in(session, at=T0, address="203.0.113.9")
    assert _sign_in(session, at=T0, address="198.51.100.4").principal.username == "member-01"


@pytest.mark.parametrize("name", ["member-01", "nobody-at-all"])
def test_many_failures_lock_the_name_until_an_admin_unlocks_it(session, sessions, name):
    _member(session)
    session.commit()
    at, before = T0, audit_count(sessions)
    for _ in range(AUTH.lock_after_failures - 1):
        _fail(session, name, at=at)
        at += timedelta(seconds=AUTH.max_delay_seconds)
    with pytest.raises(AccountLocked, match="ask an administrator"):
        _sign_in(session, name, "not the password", at=at)
    with pytest.raises(AccountLocked):
        _sign_in(session, name, PASSWORD, at=at + timedelta(days=30))  # waiting does not lift a lock
    # The lock of an account is audited; failed attempts are not (nor anything for unknown names).
    assert audit_actions_since(sessions, before) == (["user.lock"] if name == "member-01" else [])
    if name == "member-01":
        unlock_user(session, None, name)
        session.commit()
        at += timedelta(seconds=AUTH.max_delay_seconds)  # the address is still slowed down till then
        assert _sign_in(session, name, PASSWORD, at=at).principal.username == name


def test_a_disabled_account_cannot_sign_in_and_looks_like_a_wrong_password(session):
    _member(session)
    update_user(session, None, "member-01", is_active=False)
    session.commit()
    with pytest.raises(AuthenticationFailed, match="incorrect username or password"):
        _sign_in(session)


# --- managing accounts ------------------------------------------------------------------------------


def test_the_last_active_admin_cannot_be_disabled_demoted_or_deleted(session):
    _admin(session)
    session.commit()
    for refused in (
        lambda: update_user(session, None, "admin-01", is_active=False),
        lambda: update_user(session, None, "admin-01", grants=[RoleGrant(Role.ENFORCEMENT_OFFICER)]),
        lambda: delete_user(session, None, "admin-01"),
    ):
        with pytest.raises(Conflict, match="last active admin"):
            refused()
    _admin(session, "admin-02")
    update_user(session, None, "admin-01", is_active=False)
    with pytest.raises(Conflict, match="last active admin"):
        delete_user(session, None, "admin-02")


def test_an_account_that_opened_a_joint_case_cannot_be_deleted(session):
    user = create_user(
        session,
        username="officer-01",
        password=PASSWORD,
        side="GD-LJ",
        grants=[RoleGrant(Role.ENFORCEMENT_OFFICER)],
    )
    session.add(JointCase(title="Cordgrass at the border", opened_by=user.id))
    session.commit()
    with pytest.raises(Conflict, match="1 joint cases opened.*disable the account instead"):
        delete_user(session, None, "officer-01")


def test_deleting_an_account_removes_its_sessions(session):
    _member(session)
    signed = _sign_in(session)
    delete_user(session, None, "member-01")
    session.commit()
    assert session.scalar(select(AuthSession.id)) is None
    with pytest.raises(AuthenticationFailed):
        _resolve(session, signed.secret)


def test_each_account_write_leaves_exactly_one_audit_entry(session, sessions):
    admin = Principal(0, "cli:tester", "command line", "", frozenset({Role.ADMIN}), channel="cli")
    steps = [
        ("user.create", lambda: _member(session)),
        ("user.update", lambda: update_user(session, admin, "member-01", display_name="队员 01")),
        ("user.password", lambda: set_password(session, admin, "member-01", "a brand new passphrase")),
        ("auth.sign_in", lambda: _sign_in(session, password="a brand new passphrase")),
        ("user.unlock", lambda: unlock_user(session, admin, "member-01")),
        ("user.delete", lambda: delete_user(session, admin, "member-01")),
    ]
    for action, step in steps:
        before = audit_count(sessions)
        step()
        session.commit()
        assert audit_actions_since(sessions, before) == [action]
    assert audit.verify(session).ok


def test_refused_account_writes_leave_no_audit_entry(session, sessions):
    _member(session)
    session.commit()
    before = audit_count(sessions)
    for refused, error in (
        (lambda: update_user(session, None, "member-01", display_name=""), InvalidRequest),
        (lambda: set_password(session, None, "member-01", "short"), InvalidRequest),
        (lambda: update_user(session, None, "nobody-at-all", is_active=False), NotFound),
    ):
        with pytest.raises(error):
            refused()
        session.rollback()
    _fail(session, "member-01", at=T0)
    assert audit_count(sessions) == before


def test_audit_entries_hold_no_secret(session):
    _member(session)
    set_password(session, None, "member-01", "a brand new passphrase")
    signed = _sign_in(session, password="a brand new passphrase")
    user = session.scalar(select(User).where(User.username == "member-01"))
    stored = session.get(AuthSession, signed.session_id)
    text = repr([(e.action, e.object_id, e.changes) for e in session.scalars(select(AuditEntry))])
    assert "auth.sign_in" in text
    for secret in ("a brand new passphrase", user.password_hash, signed.secret, stored.secret_hash):
        assert secret not in text


# --- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable, value, says",
    [
        ("MANGROVE_AUTH_LOCK_AFTER_FAILURES", "3", "must be more than MANGROVE_AUTH_FREE_ATTEMPTS (5)"),
        ("MANGROVE_AUTH_FREE_ATTEMPTS", "0", "greater than or equal to 1"),
        ("MANGROVE_AUTH_MAX_DELAY_SECONDS", "soon", "valid integer"),
    ],
)
def test_throttle_settings_are_checked_at_start_up(monkeypatch, variable, value, says):
    from patrol.settings import Settings, SettingsError

    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable) as refused:
        Settings()
    assert says in str(refused.value)
