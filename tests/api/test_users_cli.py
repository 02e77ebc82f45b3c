"""`mangrove users …`: reset a password, disable, enable, unlock and delete accounts from the
server's command line; each change leaves one audit entry naming the operator, a refusal none."""

import io
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from utils.accounts import audit_actions_since, audit_count, last_audit_entry
from utils.factories import PASSWORD, add_users

from api.cli import main as cli
from patrol.accounts import principal_for_secret, sign_in
from patrol.errors import AccountLocked, AuthenticationFailed
from patrol.models import JointCase, User
from patrol.settings import AuthSettings


def run(args, monkeypatch, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        return cli(["users", *args])
    except SystemExit as exc:
        return exc.code


def _token(sessions, name="member", password=PASSWORD, settings=None):
    with sessions() as session:
        return sign_in(
            session, name, password, kind="token", address=None, settings=settings or AuthSettings()
        ).secret


def _signs_in(sessions, secret) -> bool:
    with sessions() as session:
        try:
            principal_for_secret(session, secret, kind="token", channel="api", address=None)
        except AuthenticationFailed:
            return False
        return True


def test_passwd_sets_a_password_under_the_policy_and_ends_the_sessions(
    configured, sessions, monkeypatch, capsys
):
    add_users(sessions, "member")
    secret = _token(sessions)
    before = audit_count(sessions)
    assert run(["passwd", "member", "--password-stdin"], monkeypatch, "member-member\n") == 2
    assert "must not contain the username" in capsys.readouterr().err
    assert audit_count(sessions) == before and _signs_in(sessions, secret)
    assert run(["passwd", "member", "--password-stdin"], monkeypatch, "tide comes in twice\n") == 0
    assert "1 session(s) ended" in capsys.readouterr().out
    assert not _signs_in(sessions, secret)
    assert _signs_in(sessions, _token(sessions, password="tide comes in twice"))
    assert audit_actions_since(sessions, before)[0] == "user.password"


def test_disable_and_enable(configured, sessions, monkeypatch, capsys):
    add_users(sessions, "admin", "member")
    secret = _token(sessions)
    before = audit_count(sessions)
    assert run(["disable", "member"], monkeypatch) == 0
    entry = last_audit_entry(sessions)
    assert (entry.action, entry.channel, entry.changes) == (
        "user.update",
        "cli",
        {"is_active": [True, False]},
    )
    assert entry.actor.startswith("cli:")
    assert not _signs_in(sessions, secret)
    capsys.readouterr()
    assert run(["list"], monkeypatch) == 0
    assert "(disabled)" in next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("member")
    )
    assert run(["enable", "member"], monkeypatch) == 0
    assert _signs_in(sessions, _token(sessions))
    assert audit_actions_since(sessions, before) == ["user.update", "user.update", "auth.sign_in"]


def test_the_last_admin_cannot_be_disabled(configured, sessions, monkeypatch, capsys):
    add_users(sessions, "admin")
    before = audit_count(sessions)
    assert run(["disable", "admin"], monkeypatch) == 2
    assert "last active admin" in capsys.readouterr().err
    assert audit_count(sessions) == before


def test_unlock_lifts_a_lock_shown_by_list(configured, sessions, monkeypatch, capsys):
    add_users(sessions, "member")
    strict = AuthSettings(free_attempts=1, lock_after_failures=2, max_delay_seconds=1)
    with sessions() as session:
        at = datetime.now(UTC) - timedelta(minutes=1)
        for _ in range(2):
            with pytest.raises((AuthenticationFailed, AccountLocked)):
                sign_in(
                    session, "member", "not it at all", kind="token", address=None, settings=strict, now=at
                )
            at += timedelta(seconds=2)
    assert run(["list"], monkeypatch) == 0
    assert "locked" in next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("member")
    )
    before = audit_count(sessions)
    assert run(["unlock", "member"], monkeypatch) == 0
    assert "unlocked (after 2 failed sign-ins)" in capsys.readouterr().out
    assert audit_actions_since(sessions, before) == ["user.unlock"]
    assert _signs_in(sessions, _token(sessions, settings=strict))


def test_delete_refuses_an_account_referred_to_and_removes_one_that_is_not(
    configured, sessions, monkeypatch, capsys
):
    add_users(sessions, "admin", "member", "officer-lj")
    with sessions() as session:
        officer = session.scalar(select(User).where(User.username == "officer-lj"))
        session.add(JointCase(title="Cordgrass at the border", opened_by=officer.id))
        session.commit()
    before = audit_count(sessions)
    assert run(["delete", "officer-lj"], monkeypatch) == 2
    assert "disable the account instead" in capsys.readouterr().err
    assert run(["delete", "nobody-at-all"], monkeypatch) == 2
    assert "no user named 'nobody-at-all'" in capsys.readouterr().err
    assert audit_count(sessions) == before
    assert run(["delete", "member"], monkeypatch) == 0
    assert audit_actions_since(sessions, before) == ["user.delete"]
    with sessions() as session:
        assert session.scalar(select(User).where(User.username == "member")) is None
