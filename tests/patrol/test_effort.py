"""Patrol effort per grid, checked against walks whose numbers can be worked out by hand."""

from datetime import UTC, datetime, timedelta

import pytest
from utils.factories import add_users
from utils.tracks import crossing, gpx, grid_metric

from geodata.cleaning import Transport
from patrol.accounts import Principal
from patrol.effort import EffortFilter, grid_effort, unpatrolled_grids
from patrol.errors import InvalidRequest
from patrol.models import User
from patrol.patrols import UploadOptions, upload_patrol
from patrol.settings import PatrolSettings

GRID = "LJ-GQ-03"
SETTINGS = PatrolSettings()


def walk(session, tmp_path, username, *, day_offset=0, members=(), margin=300.0, speed=1.0):
    lon, lat, times, expected = crossing(GRID, speed=speed, margin=margin)
    times = [t + timedelta(days=day_offset) for t in times]
    path = tmp_path / f"walk-{username}-{day_offset}-{margin}.gpx"
    path.write_bytes(gpx(lon, lat, times))
    user = session.query(User).filter_by(username=username).one()
    upload_patrol(
        session,
        path,
        filename=path.name,
        principal=Principal.of(user),
        options=UploadOptions(transport=Transport.FOOT, members=tuple(members)),
        settings=SETTINGS,
    )
    session.commit()
    return expected


def row(rows, code=GRID):
    return next(r for r in rows if r["code"] == code)


def test_effort_adds_patrols_days_distance_time_and_person_hours(sessions, tmp_path):
    add_users(sessions, "member", "member-2")
    with sessions() as session:
        one = walk(session, tmp_path, "member", members=("member", "member-2"))
        two = walk(session, tmp_path, "member", day_offset=1, margin=200)
        rows = grid_effort(session, EffortFilter(side="GD-LJ"), swath_width_m=50)
    assert len(rows) == 26
    r = row(rows)
    assert (r["patrols"], r["patrol_days"]) == (2, 2)
    assert r["km"] == pytest.approx((one["inside_m"] + two["inside_m"]) / 1000, rel=0.01)
    assert r["hours"] == pytest.approx((one["inside_s"] + two["inside_s"]) / 3600, rel=0.01)
    assert r["person_hours"] == pytest.approx((2 * one["inside_s"] + two["inside_s"]) / 3600, rel=0.01)
    assert r["last_patrolled"].startswith("2026-03-03")
    assert r["km_per_ha"] == pytest.approx(r["km"] / r["area_ha"], rel=1e-3)
    # The same line twice covers one 50 m swath across the grid.
    grid = grid_metric(GRID)
    assert r["coverage"] == pytest.approx(one["inside_m"] * 50 / grid.area, rel=0.05)
    untouched = [x for x in rows if x["code"] not in one["touched"]]
    assert all(x["patrols"] == 0 and x["km"] == 0 and x["last_patrolled"] is None for x in untouched)


def test_effort_filters_by_time_member_and_team(sessions, tmp_path):
    add_users(sessions, "member", "member-2")
    with sessions() as session:
        walk(session, tmp_path, "member")
        walk(session, tmp_path, "member-2", day_offset=10)
        march_2 = EffortFilter(
            start=datetime(2026, 3, 1, 16, tzinfo=UTC), end=datetime(2026, 3, 2, 16, tzinfo=UTC)
        )
        assert row(grid_effort(session, march_2, swath_width_m=50))["patrols"] == 1
        assert row(grid_effort(session, EffortFilter(member="member-2"), swath_width_m=50))["patrols"] == 1
        assert row(grid_effort(session, EffortFilter(team="LJ-T-YZ"), swath_width_m=50))["patrols"] == 0
        with pytest.raises(InvalidRequest, match="reversed"):
            EffortFilter(start=march_2.end, end=march_2.start)
        with pytest.raises(InvalidRequest, match="LJ-XX-01"):
            grid_effort(session, EffortFilter(grids=("LJ-XX-01",)), swath_width_m=50)


def test_grids_not_patrolled_for_n_days(sessions, tmp_path):
    add_users(sessions, "member")
    with sessions() as session:
        touched = walk(session, tmp_path, "member")["touched"]  # 2026-03-02
        as_of = datetime(2026, 3, 10, tzinfo=UTC)
        week = unpatrolled_grids(session, days=7, as_of=as_of, side="GD-LJ")
        fortnight = unpatrolled_grids(session, days=14, as_of=as_of, side="GD-LJ")
    assert (
        len(week) == 26 and week[-1]["code"] == GRID and week[-1]["days_since"] == pytest.approx(7.9, abs=0.1)
    )
    assert week[0]["last_patrolled"] is None  # never patrolled come first
    assert {g["code"] for g in fortnight} == {g["code"] for g in week} - touched


def test_effort_over_http(client, sessions, tmp_path):
    from utils.factories import auth

    add_users(sessions, "member")
    with sessions() as session:
        walk(session, tmp_path, "member")
    headers = auth(client, "member")
    body = client.get(
        "/api/v1/effort", params={"town": "GQ", "datetime": "2026-03-02"}, headers=headers
    ).json()
    assert len(body["grids"]) == 8 and row(body["grids"])["patrols"] == 1
    assert client.get("/api/v1/effort", params={"datetime": "yesterday"}, headers=headers).status_code == 422
    unpatrolled = client.get("/api/v1/effort/unpatrolled", params={"days": 3650}, headers=headers).json()
    assert GRID not in {g["code"] for g in unpatrolled["grids"]}
    assert client.get("/api/v1/effort").status_code == 401


def test_totals_of_all_grids_in_one_pass_match_by_hand():
    """The grouped totals: two grids, a visit without times (hours unknown, no patrol-day), a
    patrol crossing a grid twice (one patrol), local days in China time (23:30 UTC is the next day)."""
    import pandas as pd

    from patrol.effort import _totals_by_grid, _visit_totals

    t = lambda h: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=h)  # noqa: E731
    visits = pd.DataFrame(
        [
            (1, 10, t(2), t(3), 1500.0, 3600.0, 2),
            (1, 10, t(5), t(5.5), 500.0, 1800.0, 2),
            (1, 11, t(23.5), t(24), 250.0, 1800.0, 1),
            (2, 12, None, None, 800.0, None, 3),
        ],
        columns=["grid_id", "patrol_id", "entered_at", "exited_at", "distance_m", "duration_s", "crew"],
    )
    totals = _totals_by_grid(visits)
    assert _visit_totals(totals[1], 25.0) == {
        "patrols": 2, "patrol_days": 2, "km": 2.25, "hours": 1.5 + 0.5, "person_hours": 3.0 + 0.5,
        "km_per_ha": 0.09, "last_patrolled": t(24).isoformat(),
    }  # fmt: skip
    assert _visit_totals(totals[2], 25.0) == {
        "patrols": 1, "patrol_days": 0, "km": 0.8, "hours": None, "person_hours": None,
        "km_per_ha": 0.032, "last_patrolled": None,
    }  # fmt: skip
    assert _visit_totals(totals.get(3), None)["patrols"] == 0
    assert _totals_by_grid(visits.iloc[:0]) == {}
