"""The analyses through the API, on both backends: who may ask, what a bad request is told, and
numbers that can be worked out by hand from walks and reports made in the test."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from utils.analysis import GRID, MARCH, march_of_walks_and_reports, report, who
from utils.factories import add_users, auth
from utils.places import inside
from utils.tracks import START


@pytest.fixture
def march(sessions, tmp_path):
    return march_of_walks_and_reports(sessions, tmp_path)


def test_encounter_rate_is_incidents_per_10_km_walked_with_an_exact_poisson_interval(client, march):
    km = sum(w["inside_m"] for w in march) / 1000
    hours = sum(w["inside_s"] for w in march) / 3600
    response = client.get("/api/v1/analysis/rates", params={"datetime": MARCH, "grid": GRID},
                          headers=auth(client, "manager"))  # fmt: skip
    assert response.status_code == 200, response.text
    rows = {(r["grid"], r["category"]): r for r in response.json()["rates"]}
    rubbish = rows[(GRID, "rubbish")]
    assert rubbish["incidents"] == 3
    assert rubbish["km"] == pytest.approx(km, rel=0.01)
    assert rubbish["per_10km"] == pytest.approx(3 / km * 10, rel=0.01)
    assert rubbish["per_100h"] == pytest.approx(3 / hours * 100, rel=0.01)
    # Exact 95 % interval for a count of 3: 0.619 … 8.767 (Garwood), scaled by the effort.
    assert rubbish["per_10km_low"] == pytest.approx(0.6186 / km * 10, rel=0.01)
    assert rubbish["per_10km_high"] == pytest.approx(8.7673 / km * 10, rel=0.01)
    assert rows[(GRID, "all")]["incidents"] == 3
    # A walk of a kilometre or two is too little effort to say much: flagged, not hidden.
    assert rubbish["too_little_effort"] is (km < 5)


def test_rates_as_csv(client, march):
    response = client.get("/api/v1/analysis/rates", params={"datetime": MARCH, "grid": GRID, "format": "csv"},
                          headers=auth(client, "officer-lj"))  # fmt: skip
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    header, *lines = response.text.splitlines()
    assert "per_10km_low" in header and any(line.startswith(f"{GRID},") for line in lines)


def test_a_planted_cluster_is_a_significant_hot_spot(client, sessions):
    add_users(sessions)
    lon, lat = inside(GRID)
    with sessions() as session:
        # 25 reports on a 5 × 5 lattice 100 m apart: several neighbouring cells, each busy (Gi*
        # asks whether a cell *and its neighbours* are high, so one crowded cell alone is not it).
        for i in range(25):
            dx, dy = (i % 5 - 2) * 100, (i // 5 - 2) * 100
            report(session, at=START + timedelta(hours=i), lonlat=(lon + dx / 103_600, lat + dy / 110_700))
        for code in ("LJ-AP-01", "LJ-CB-02", "LJ-YZ-01", "LJ-GQ-06"):
            report(session, code, at=START + timedelta(days=1))
    response = client.get("/api/v1/analysis/hotspots", params={"datetime": MARCH, "side": "GD-LJ"},
                          headers=auth(client, "officer-lj"))  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["incidents"] == 29 and body["cell_m"] == 250 and "Gi*" in body["method"]
    hot = [f for f in body["features"] if f["properties"]["kind"] == "hot"]
    assert hot, body["method"]
    assert GRID in {f["properties"]["grid"] for f in hot}
    assert all(f["properties"]["p_adjusted"] <= 0.05 for f in hot)
    # Every hot cell is in the planted cluster (within 400 m of its centre), not at a lone report.
    for f in hot:
        cx, cy = np.mean(f["geometry"]["coordinates"][0][:-1], axis=0)
        assert abs(cx - lon) * 103_600 < 400 and abs(cy - lat) * 110_700 < 400


def test_priorities_rank_grids_and_say_why(client, march):
    response = client.get("/api/v1/analysis/priorities", params={"side": "GD-LJ"},
                          headers=auth(client, "manager"))  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    grids = body["grids"]
    assert len(grids) == 26 and [g["rank"] for g in grids] == list(range(1, 27))
    assert [g["score"] for g in grids] == sorted((g["score"] for g in grids), reverse=True)
    assert set(body["weights"]) == {"recent", "rate", "hot", "unpatrolled", "shortfall"}
    # Nothing was patrolled in the last 90 days (the walks were in March): every grid says so.
    assert all(any("not patrolled" in reason for reason in g["reasons"]) for g in grids)


@pytest.mark.parametrize(
    "path, params, status, parameter, says",
    [
        ("rates", {"datetime": "2026-03-31/2026-03-01"}, 422, None, "reversed"),
        ("rates", {"datetime": "2024-01-01/2026-03-01"}, 422, "datetime", "at most 400 days"),
        ("rates", {"datetime": "2099-01"}, 422, "datetime", "future"),
        ("rates", {"side": "XX"}, 422, "side", "unknown side"),
        ("rates", {"side": "GX-HP"}, 403, None, "GD-LJ"),
        ("rates", {"town": "ZZ"}, 422, "town", "unknown town"),
        ("rates", {"grid": "LJ-XX-01"}, 422, "grid", "LJ-XX-01"),
        ("rates", {"category": "whales"}, 422, "category", "whales"),
        ("hotspots", {"cell_m": "0"}, 422, "cell_m", "cell"),
        ("hotspots", {"cell_m": "-5"}, 422, "cell_m", "cell"),
        ("hotspots", {"cell_m": "900000"}, 422, "cell_m", "cell"),
        ("hotspots", {"shape": "circle"}, 422, None, "shape"),
        ("recurring", {"distance_m": "0"}, 422, "distance_m", "distance"),
        ("recurring", {"min_months": "1"}, 422, "min_months", "min_months"),
    ],
)
def test_bad_requests_are_refused_naming_the_parameter(
    client, sessions, path, params, status, parameter, says
):
    add_users(sessions, "officer-lj")
    response = client.get(f"/api/v1/analysis/{path}", params=params, headers=auth(client, "officer-lj"))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in response.json()["detail"]
    if parameter:
        assert response.json()["parameter"] == parameter


def test_patrol_members_and_strangers_get_no_analyses(client, sessions):
    add_users(sessions, "member")
    assert client.get("/api/v1/analysis/rates").status_code == 401
    response = client.get("/api/v1/analysis/hotspots", headers=auth(client, "member"))
    assert response.status_code == 403
    assert "managers" in response.json()["detail"]


def test_an_officer_counts_nothing_of_the_other_side_beyond_what_the_list_shows(client, sessions):
    add_users(sessions)
    with sessions() as session:
        report(session, _hepu_grid(session), by="member-hp",
               at=datetime.now(UTC) - timedelta(days=3))  # fmt: skip
        report(session, at=datetime.now(UTC) - timedelta(days=2))
    listed = client.get("/api/v1/incidents", headers=auth(client, "officer-lj")).json()
    hot = client.get("/api/v1/analysis/hotspots", params={"all_cells": "true"},
                     headers=auth(client, "officer-lj")).json()  # fmt: skip
    assert hot["incidents"] == sum(1 for f in listed["features"] if f["properties"]["side"] == "GD-LJ") == 1
    # An admin analysing Hepu sees its report; the officer cannot ask for Hepu at all.
    hepu = client.get(
        "/api/v1/analysis/rates", params={"side": "GX-HP"}, headers=auth(client, "admin")
    ).json()
    assert sum(r["incidents"] for r in hepu["rates"] if r["category"] == "all") == 1


def _hepu_grid(session) -> str:
    from sqlalchemy import select

    from patrol.models import Grid

    # A Hepu zone far from the border: the Guangdong side never sees its incidents.
    return session.scalars(select(Grid.code).where(Grid.side == "GX-HP").order_by(Grid.code)).first()


def test_the_priority_score_is_the_stated_weighted_sum(sessions, march):
    """A week after the second walk: LJ-GQ-03 has 3 incidents in 30 days, the only non-zero rate,
    was patrolled 3 days ago and made 2 of its 8 patrols and some of its 20 km."""
    from patrol.analysis.priorities import priorities_report
    from patrol.analysis.scope import Scope
    from patrol.settings import Settings

    as_of = START + timedelta(days=10)
    with sessions() as session:
        officer = who(session, "officer-lj")
        table = priorities_report(
            session, officer, Settings(), Scope(as_of, as_of, side="GD-LJ"), as_of=as_of
        )
    row = table.set_index("grid").loc[GRID]
    km = sum(w["inside_m"] for w in march) / 1000
    last_walk_end = START + timedelta(days=7, seconds=march[1]["total_m"])  # 1 m/s
    days = (as_of - last_walk_end).total_seconds() / 86400
    expected = 100 * (
        0.25 * 3 / 5  # recent incidents, 5 count fully
        + 0.15 * 1.0  # the highest rate lower bound of all grids
        + 0.15 * min(row["hot_cells"] / 3, 1)
        + 0.25 * days / 30
        + 0.20 * ((8 - 2) / 8 + (20 - km) / 20) / 2
    )
    assert row["score"] == pytest.approx(expected, abs=0.2)
    assert table.iloc[0]["grid"] == GRID and table.iloc[0]["rank"] == 1
    # The reasons, largest part first: the quota (16 points) before the incidents (15).
    assert row["reasons"][0].startswith("未达配额：近30天 2/8 次") and row["reasons"][1].startswith(
        "近30天 3 起事件"
    )
    # Grids never patrolled and with nothing reported: unpatrolled and behind quota, 45 points.
    untouched = table[(table.recent_incidents == 0) & table.days_since_patrol.isna()]
    assert len(untouched) and (untouched.score == 45.0).all()
