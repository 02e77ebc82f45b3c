"""The `mangrove` command: users, demo, database; clear messages and exit codes on bad input."""

import io
import sys

import pytest
from sqlalchemy import select

from api.cli import main as cli
from patrol.demo import DEMO_USERS
from patrol.models import Grid, Patrol, User
from patrol.settings import get_settings


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


def test_batch_upload_of_a_folder_then_list_show_and_effort(configured, sessions, capsys, tmp_path):
    from utils.factories import add_users
    from utils.tracks import crossing, gpx

    add_users(sessions, "member")
    lon, lat, times, _ = crossing("LJ-GQ-03")
    folder = tmp_path / "phone-export"
    folder.mkdir()
    (folder / "monday.gpx").write_bytes(gpx(lon, lat, times))
    (folder / "tuesday.gpx").write_bytes(gpx(lon[::2], lat[::2], times[::2]))
    (folder / "broken.gpx").write_bytes(b"<gpx><trk><trkseg><trkpt lat='21.6'")
    assert run(["patrols", "upload", str(folder), "--as", "member"]) == 2
    captured = capsys.readouterr()
    assert "2 uploaded, 1 refused" in captured.out and "broken.gpx" in captured.err
    with sessions() as session:
        ids = sorted(session.scalars(select(Patrol.id)))
    assert len(ids) == 2

    assert run(["patrols", "list", "--grid", "LJ-GQ-03"]) == 0
    assert "2 of 2 patrols" in capsys.readouterr().out
    assert run(["patrols", "show", str(ids[0])]) == 0
    assert '"LJ-GQ-03"' in capsys.readouterr().out
    assert run(["patrols", "show", "999999"]) != 0
    assert "no patrol 999999" in capsys.readouterr().err
    assert run(["effort", "--town", "GQ", "--datetime", "2026-03-02"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("LJ-GQ-03"))
    assert line.split()[1:3] == ["2", "1"]  # two patrols on one local day


def test_incidents_from_the_command_line(configured, sessions, capsys):
    from utils.factories import add_users
    from utils.places import inside

    add_users(sessions, "member", "manager")
    lon, lat = inside("LJ-GQ-03")
    args = [
        "incidents",
        "report",
        "--as",
        "member",
        "--lon",
        str(lon),
        "--lat",
        str(lat),
        "--category",
        "cordgrass",
    ]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "in LJ-GQ-03, GD-LJ" in out and "answer by" in out
    incident_id = out.split()[1].rstrip(":")
    assert run(["incidents", "act", incident_id, "resolve", "--as", "manager"]) == 2
    assert "accept it first" in capsys.readouterr().err
    assert run(["incidents", "act", incident_id, "accept", "--as", "manager"]) == 0
    assert "now accepted" in capsys.readouterr().out
    assert run(["incidents", "list", "--grid", "LJ-GQ-03", "--as", "manager"]) == 0
    assert "cordgrass" in capsys.readouterr().out
    assert run(["incidents", "stats", "--by", "town"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("GQ")
    assert (
        run(
            ["incidents", "report", "--as", "member", "--lon", "116.4", "--lat", "39.9", "--category", "fire"]
        )
        == 2
    )
    assert "far outside" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("MANGROVE_PATROL_MAX_FIXES", "abc", "MANGROVE_PATROL_MAX_FIXES: Input should be a valid integer"),
        ("MANGROVE_MAP_DEFAULT_BASEMAP", "bing", "MANGROVE_MAP_DEFAULT_BASEMAP must be one of none, osm"),
        ("MANGROVE_MAP_DEFAULT_BASEMAP", "tianditu", "needs a key: set MANGROVE_MAP_TIANDITU_KEY"),
        ("MANGROVE_DATABASE_URL", "mysql://x", "MANGROVE_DATABASE_URL must be a sqlite"),
    ],
)
def test_a_bad_setting_is_named_without_a_traceback(monkeypatch, capsys, variable, value, words):
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        assert cli(["grids", "list"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("mangrove: error: bad setting: ") and words in err and "Traceback" not in err
