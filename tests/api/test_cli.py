"""The `mangrove` command: users, demo, database; clear messages and exit codes on bad input."""

import io
import sys

import pytest
from sqlalchemy import select

from api.cli import main as cli
from patrol.demo import DEMO_USERS
from patrol.models import Grid, Patrol, User
from patrol.settings import get_settings


@pytest.fixture
def configured(settings, monkeypatch):
    """Point the command line at the test database."""
    monkeypatch.setenv("MANGROVE_DATABASE_URL", settings.storage.resolved_database_url())
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(args, stdin="", monkeypatch=None):
    """Exit code of `mangrove ARGS`, whether it returns it or argparse exits with it."""
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        return cli(args)
    except SystemExit as exc:
        return exc.code


def test_users_add_and_list(configured, sessions, capsys, monkeypatch):
    args = [
        "users",
        "add",
        "gq-member-01",
        "--side",
        "GD-LJ",
        "--role",
        "patrol_member:LJ-T-GQ",
        "--display-name",
        "队员 01",
        "--password-stdin",
    ]
    assert run(args, "a long password\n", monkeypatch) == 0
    assert "created user gq-member-01" in capsys.readouterr().out
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "gq-member-01"))
        assert user.display_name == "队员 01" and user.roles[0].team == "LJ-T-GQ"
    assert cli(["users", "list"]) == 0
    assert "gq-member-01" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, says",
    [
        (["--role", "patrol_member:NO-TEAM"], "NO-TEAM"),
        (["--role", "patrol_member"], "team"),
        (["--role", "ruler"], "unknown role"),
        (["--role", "admin:LJ-T-GQ"], "takes no scope"),
    ],
)
def test_users_add_refuses_bad_roles(configured, sessions, capsys, monkeypatch, args, says):
    base = ["users", "add", "someone", "--side", "GD-LJ", "--password-stdin"]
    assert run(base + args, "a long password\n", monkeypatch) == 2
    assert says in capsys.readouterr().err
    with sessions() as session:
        assert session.scalar(select(User).where(User.username == "someone")) is None


def test_short_password_is_refused(configured, capsys, monkeypatch):
    args = ["users", "add", "someone", "--side", "GD-LJ", "--role", "admin", "--password-stdin"]
    assert run(args, "short\n", monkeypatch) == 2
    assert "at least 10 characters" in capsys.readouterr().err


def test_demo_is_idempotent(configured, sessions, capsys):
    assert cli(["demo", "--patrol-days", "7"]) == 0
    first = capsys.readouterr().out
    assert cli(["demo", "--patrol-days", "7"]) == 0
    out = capsys.readouterr().out
    assert "mangrove-demo" in out and "0 new demo users" in out and "0 new patrols" in out
    assert " 0 new patrols" not in first  # the first run made a week of patrols
    with sessions() as session:
        assert len(session.scalars(select(User)).all()) == len(DEMO_USERS)
        assert len(session.scalars(select(Grid).where(Grid.side == "GD-LJ")).all()) == 26
        teams = set(session.scalars(select(Patrol.team)))
    assert teams == {"LJ-T-GQ", "LJ-T-YZ", "LJ-T-CB", "LJ-T-AP", "LJ-T-LD", "HP-T-SK"}


def test_unreachable_database_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("MANGROVE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        assert cli(["db", "current"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "cannot use the database" in err and "Traceback" not in err
