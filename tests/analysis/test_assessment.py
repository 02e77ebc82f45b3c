"""The monthly assessment (考核) on a small month built by hand: November 2026, China time.

- member (LJ-T-GQ) walks LJ-GQ-03 on 10 Nov with member-2, and again at 23:30 on 30 Nov (China
  time: 15:30 UTC, still November); a third walk at 00:10 on 1 Dec belongs to December;
- member-yz (LJ-T-YZ) walks LJ-YZ-02 on 5 Nov;
- member reports two incidents observed in November (one accepted after 2 h and resolved after
  24 h, one never answered) and one at 00:05 on 1 Dec; member-yz reports one in November.
Quotas: LJ-GQ-03 2 patrols and a little less than the two walks' km inside it; LJ-YZ-02 1 patrol.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from utils.accounts import Clock
from utils.factories import add_users, auth
from utils.places import inside
from utils.tracks import crossing, gpx

from api.cli import main as cli
from geodata.cleaning import Transport
from patrol.accounts import Principal
from patrol.analysis.assessment import RANKING, assessment, month_range
from patrol.analysis.quotas import set_quota
from patrol.errors import InvalidRequest, PermissionDenied
from patrol.incident_stats import incident_stats
from patrol.incidents import IncidentQuery, IncidentReport, report_incident, transition
from patrol.models import User
from patrol.patrols import UploadOptions, upload_patrol
from patrol.settings import PatrolSettings

NOW = datetime(2026, 12, 15, 4, tzinfo=UTC)
CHINA = timedelta(hours=8)


def china(*args) -> datetime:
    """A China-time wall-clock time as a UTC instant."""
    return datetime(*args, tzinfo=UTC) - CHINA


def who(session, username: str) -> Principal:
    return Principal.of(session.scalar(select(User).where(User.username == username)))


def walk(session, tmp_path, username, grid, start, members=()):
    lon, lat, times, expected = crossing(grid, interval=5)
    times = [t + (start - times[0]) for t in times]
    path = tmp_path / f"{username}-{start:%Y%m%d%H%M}.gpx"
    path.write_bytes(gpx(lon, lat, times))
    upload_patrol(
        session, path, filename=path.name, principal=who(session, username),
        options=UploadOptions(transport=Transport.FOOT, members=tuple(members)), settings=PatrolSettings(),
    )  # fmt: skip
    session.commit()
    return expected


def report(session, settings, username, grid, observed, reported):
    lon, lat = inside(grid)
    incident = report_incident(
        session, who(session, username), IncidentReport("rubbish", lon, lat, observed_at=observed),
        settings.incidents, now=reported,
    )  # fmt: skip
    session.commit()
    return incident


@pytest.fixture
def month(sessions, settings, tmp_path):
    """The November above; returns the walks' expected numbers."""
    add_users(sessions)
    with sessions() as session:
        a = walk(session, tmp_path, "member", "LJ-GQ-03", china(2026, 11, 10, 8, 30), ("member", "member-2"))
        b = walk(session, tmp_path, "member", "LJ-GQ-03", china(2026, 11, 30, 23, 30))
        walk(session, tmp_path, "member", "LJ-GQ-03", china(2026, 12, 1, 0, 10))
        d = walk(session, tmp_path, "member-yz", "LJ-YZ-02", china(2026, 11, 5, 9, 0))
        admin = who(session, "admin")
        set_quota(session, admin, "LJ-GQ-03", 2, round(0.95 * (a["inside_m"] + b["inside_m"]) / 1000, 2))
        set_quota(session, admin, "LJ-YZ-02", 1, 0.1)
        session.commit()

        reported = china(2026, 11, 12, 11, 0)
        one = report(session, settings, "member", "LJ-GQ-03", china(2026, 11, 12, 10, 0), reported)
        manager = who(session, "manager")
        transition(session, manager, one.id, "accept", settings.incidents, version=one.version,
                   now=reported + timedelta(hours=2))  # fmt: skip
        session.commit()
        transition(session, manager, one.id, "resolve", settings.incidents, version=one.version,
                   now=reported + timedelta(hours=24))  # fmt: skip
        session.commit()
        report(session, settings, "member", "LJ-GQ-04", china(2026, 11, 30, 23, 50), china(2026, 12, 1, 0, 0))
        report(session, settings, "member", "LJ-GQ-04", china(2026, 12, 1, 0, 5), china(2026, 12, 1, 0, 6))
        report(
            session, settings, "member-yz", "LJ-YZ-02", china(2026, 11, 5, 10, 0), china(2026, 11, 5, 10, 5)
        )
    return {"a": a, "b": b, "d": d}


def test_team_figures_against_hand_computed_numbers(sessions, settings, month):
    a, b, d = month["a"], month["b"], month["d"]
    with sessions() as session:
        rows = assessment(session, who(session, "admin"), settings, "2026-11", now=NOW)
        stats = incident_stats(
            session, who(session, "admin"),
            IncidentQuery(start=china(2026, 11, 1), end=china(2026, 12, 1), grids=("LJ-GQ-03", "LJ-GQ-04")),
            settings.incidents, by="side", now=NOW,
        )  # fmt: skip
    teams = {r["team"]: r for r in rows}
    assert len(rows) == 6 and [r["rank"] for r in rows] == [1, 2, 3, 4, 5, 6]
    gq, yz = teams["LJ-T-GQ"], teams["LJ-T-YZ"]
    assert gq["name_zh"] == "高桥镇党员护林先锋队"
    # The 23:30 walk on 30 Nov counts in November; the 00:10 walk on 1 Dec does not.
    assert (gq["patrols"], gq["patrol_days"]) == (2, 2)
    assert gq["km"] == pytest.approx((a["total_m"] + b["total_m"]) / 1000, rel=0.01)
    assert gq["hours"] == pytest.approx((a["total_m"] + b["total_m"]) / 3600, rel=0.01)  # 1 m/s
    assert (gq["grids_assigned"], gq["grids_meeting_quota"], gq["quota_compliance"]) == (8, 1, 0.125)
    gq03 = next(g for g in gq["grids"] if g["grid"] == "LJ-GQ-03")
    assert gq03["patrols"] == 2 and gq03["met"] and gq03["quota_source"] == "grid"
    assert gq03["km"] == pytest.approx((a["inside_m"] + b["inside_m"]) / 1000, rel=0.01)
    assert all(
        not g["met"] and g["quota_source"] == "default" for g in gq["grids"] if g["grid"] != "LJ-GQ-03"
    )
    # Incidents: two observed in November (the 00:05 one on 1 Dec is December's).
    assert gq["incidents_found"] == 2
    assert (gq["response_rate"], gq["on_time_response_rate"]) == (0.5, 0.5)  # the second is past due
    assert (gq["resolution_rate"], gq["on_time_resolution_rate"]) == (0.5, 0.5)
    assert (gq["median_hours_to_accept"], gq["median_hours_to_resolve"]) == (2.0, 24.0)
    assert gq["open_overdue"] == 1
    # The same definitions as the incident statistics (the two incidents are all of side GD-LJ there).
    [same] = [s for s in stats if s["side"] == "GD-LJ"]
    for field in ("response_rate", "on_time_response_rate", "resolution_rate", "on_time_resolution_rate",
                  "median_hours_to_accept", "median_hours_to_resolve", "open_overdue"):  # fmt: skip
        assert gq[field] == same[field], field
    assert (yz["patrols"], yz["grids_meeting_quota"], yz["quota_compliance"]) == (1, 1, round(1 / 7, 4))
    assert yz["km"] == pytest.approx(d["total_m"] / 1000, rel=0.01) and yz["incidents_found"] == 1
    # Ranked by compliance first: Yingzi (1 of 7) before Gaoqiao (1 of 8) though it walked less.
    assert [r["team"] for r in rows[:2]] == ["LJ-T-YZ", "LJ-T-GQ"]
    assert teams["LJ-T-AP"]["patrols"] == 0 and teams["LJ-T-AP"]["quota_compliance"] == 0
    assert teams["HP-T-SK"]["incidents_found"] == 0 and teams["HP-T-SK"]["response_rate"] is None

    # December: the 00:10 walk and the 00:05 incident.
    with sessions() as session:
        december = {
            r["team"]: r for r in assessment(session, who(session, "admin"), settings, "2026-12", now=NOW)
        }
    assert (december["LJ-T-GQ"]["patrols"], december["LJ-T-GQ"]["incidents_found"]) == (1, 1)


def test_members_are_credited_with_the_patrols_they_walked(sessions, settings, month):
    a, b = month["a"], month["b"]
    with sessions() as session:
        rows = assessment(session, who(session, "admin"), settings, "2026-11", by="member", now=NOW)
    people = {r["username"]: r for r in rows}
    assert set(people) == {"member", "member-2", "member-yz", "member-hp"}
    assert (people["member"]["patrols"], people["member"]["patrol_days"]) == (2, 2)
    assert people["member"]["km"] == pytest.approx((a["total_m"] + b["total_m"]) / 1000, rel=0.01)
    assert people["member-2"]["patrols"] == 1
    assert people["member-2"]["km"] == pytest.approx(a["total_m"] / 1000, rel=0.01)
    assert (people["member"]["incidents_found"], people["member-2"]["incidents_found"]) == (2, 0)
    assert people["member"]["team"] == "LJ-T-GQ" and people["member"]["quota_compliance"] == 0.125
    kms = [r["km"] for r in rows]
    assert kms == sorted(kms, reverse=True) and rows[0]["username"] == "member"


def test_who_sees_what(sessions, settings, month):
    with sessions() as session:

        def names(user, by, side=None):
            rows = assessment(session, who(session, user), settings, "2026-11", by=by, side=side, now=NOW)
            return sorted(r["team"] if by == "team" else r["username"] for r in rows)

        assert names("member", "member") == ["member"]
        assert names("member", "team") == ["LJ-T-GQ"]
        assert names("manager", "team") == ["LJ-T-GQ"]
        assert names("manager", "member") == ["member", "member-2"]
        assert names("officer-lj", "team") == ["LJ-T-AP", "LJ-T-CB", "LJ-T-GQ", "LJ-T-LD", "LJ-T-YZ"]
        assert names("officer-hp", "member") == ["member-hp"]
        assert len(names("admin", "team", side="GX-HP")) == 1
        for user in ("member", "manager", "officer-lj"):
            with pytest.raises(PermissionDenied, match="GX-HP"):
                names(user, "team", side="GX-HP")
        with pytest.raises(InvalidRequest, match="side"):
            names("admin", "team", side="XX")


@pytest.mark.parametrize(
    ("month", "words"),
    [("2026-13", "YYYY-MM"), ("Nov 2026", "YYYY-MM"), ("2026-1", "YYYY-MM"), ("2027-01", "future"),
     ("2025-01", "days ago"), ("", "YYYY-MM"), ("2026-11\r\n", "YYYY-MM")],
)  # fmt: skip
def test_bad_months_are_refused_naming_month(month, words):
    with pytest.raises(InvalidRequest, match=words) as refused:
        month_range(month, now=NOW, max_days=400)
    assert refused.value.field == "month" and "month" in refused.value.message


def test_month_is_a_china_time_month():
    assert month_range("2026-11", now=NOW) == (
        datetime(2026, 10, 31, 16, tzinfo=UTC),
        datetime(2026, 11, 30, 16, tzinfo=UTC),
    )
    assert month_range("2026-12", now=NOW)[1] == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_api_json_csv_xlsx_and_refusals(app, client, sessions, month):
    app.state.clock = Clock(NOW)
    with sessions() as session:  # a team name a spreadsheet would run as a formula
        from patrol.models import Team

        session.get(Team, "LJ-T-LD").name_zh = '=HYPERLINK("http://x")'
        session.commit()
    admin, member = auth(client, "admin"), auth(client, "member")
    body = client.get("/api/v1/assessment", params={"month": "2026-11"}, headers=admin).json()
    assert body["ranking"] == RANKING["team"] and [r["team"] for r in body["rows"]][:2] == [
        "LJ-T-YZ",
        "LJ-T-GQ",
    ]
    mine = client.get(
        "/api/v1/assessment", params={"month": "2026-11", "by": "member"}, headers=member
    ).json()
    assert [r["username"] for r in mine["rows"]] == ["member"]

    response = client.get("/api/v1/assessment", params={"month": "2026-11", "format": "csv"}, headers=admin)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert table[0][:3] == ["排名 rank", "队伍 team", "队名 name"] and len(table) == 7
    ld = next(r for r in table if r[1] == "LJ-T-LD")
    assert ld[2].startswith("'=")  # neutralised
    gq = next(r for r in table if r[1] == "LJ-T-GQ")
    assert gq[2] == "高桥镇党员护林先锋队" and gq[table[0].index("达标率 quota compliance")] == "0.125"
    assert "LJ-GQ-03 2/2" in gq[-1]

    response = client.get("/api/v1/assessment", params={"month": "2026-11", "format": "xlsx"}, headers=admin)
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("排名 rank", "队伍 team")
    by_team = {r[1]: r for r in rows[1:]}
    assert by_team["LJ-T-GQ"][2] == "高桥镇党员护林先锋队"
    assert by_team["LJ-T-GQ"][0] == 2 and isinstance(by_team["LJ-T-GQ"][rows[0].index("里程 km")], float)
    assert by_team["LJ-T-GQ"][rows[0].index("巡护次数 patrols")] == 2
    assert by_team["LJ-T-LD"][2].startswith("'=")
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)  # no formulas
    notes = dict(book.worksheets[2].iter_rows(values_only=True))
    assert notes["排名规则 ranking"] == RANKING["team"] and notes["月份 month (China time)"] == "2026-11"
    grids = list(book.worksheets[1].iter_rows(values_only=True))
    assert ("LJ-T-GQ", "LJ-GQ-03", 2) == grids[[g[1] for g in grids].index("LJ-GQ-03")][:3]

    for bad in ("2026-13", "2027-01", "x", None):
        refused = client.get("/api/v1/assessment", params={"month": bad} if bad else {}, headers=admin)
        assert refused.status_code in (400, 422)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "month" in refused.json()["detail"]
    assert client.get("/api/v1/assessment", params={"month": "2026-11", "side": "GX-HP"},
                      headers=member).status_code == 403  # fmt: skip
    assert client.get("/api/v1/assessment", params={"month": "2026-11"}).status_code == 401


def run(args):
    try:
        return cli(args)
    except SystemExit as exc:
        return exc.code


def test_cli(configured, sessions, month, tmp_path, capsys):
    assert run(["quotas", "list"]) == 0
    assert "LJ-GQ-03" in capsys.readouterr().out
    assert run(["quotas", "set", "LJ-GQ-05", "--patrols", "3", "--km", "7.5"]) == 0
    assert run(["quotas", "set", "LJ-GQ-05", "--patrols", "2.5", "--km", "7.5"]) == 2
    assert "patrols_per_month" in capsys.readouterr().err
    assert run(["quotas", "clear", "LJ-GQ-05"]) == 0

    # The real now: November 2026 is this or last month only while the test clock's year lasts,
    # so the CLI is checked with the current China month (and the month parsing above with NOW).
    this_month = (datetime.now(UTC) + CHINA).strftime("%Y-%m")
    assert run(["assessment", "--month", this_month]) == 0
    out = capsys.readouterr().out
    assert "LJ-T-GQ" in out and "ranked by" in out
    assert run(["assessment", "--month", this_month, "--by", "member", "--as", "member"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:-1]] == ["member"]
    target = tmp_path / "out.xlsx"
    assert run(["assessment", "--month", this_month, "-o", str(target)]) == 0
    assert load_workbook(target).worksheets[0].max_row == 7
    target = tmp_path / "out.csv"
    assert run(["assessment", "--month", this_month, "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8-sig").startswith("排名 rank")

    capsys.readouterr()
    assert run(["assessment", "--month", "2026-13"]) == 2
    assert "month" in capsys.readouterr().err
    assert run(["assessment", "--month", this_month, "-o", str(tmp_path / "out.pdf")]) == 2
    assert ".csv or .xlsx" in capsys.readouterr().err
    assert run(["assessment", "--month", this_month, "--as", "nobody"]) == 2


def test_a_fixed_number_of_queries_whatever_the_number_of_teams(engine, sessions, settings, month):
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with sessions() as session:
            admin = who(session, "admin")
            for by in ("team", "member"):
                statements.clear()
                rows = assessment(session, admin, settings, "2026-11", by=by, now=NOW)
                assert len(rows) >= 4
                # teams, members, grids with quotas, patrols, visits per grid and team, incidents
                assert len(statements) <= 6, statements
    finally:
        event.remove(engine, "before_cursor_execute", count)
