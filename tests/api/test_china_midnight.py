"""A China day is midnight to midnight China time (UTC+8) on both backends. SQLite keeps times as
text: a bound written in China time and compared with the UTC text it stores was eight hours off,
and the replay of a team's day answered 404 for days that had patrols. Times a few minutes either
side of China midnight decide it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from utils.factories import add_users, auth, sign_in
from utils.tracks import crossing, gpx

pytestmark = pytest.mark.backend

# (name, first fix in UTC): China time 00:30 and 23:50 on 2 March, and 00:10 on 3 March.
WALKS = {
    "early": datetime(2026, 3, 1, 16, 30, tzinfo=UTC),
    "late": datetime(2026, 3, 2, 15, 50, tzinfo=UTC),
    "next-day": datetime(2026, 3, 2, 16, 10, tzinfo=UTC),
}


@pytest.fixture
def patrols(client, sessions):
    add_users(sessions, "member", "manager")
    headers = auth(client, "member")
    lon, lat, times, _ = crossing("LJ-GQ-03", interval=5.0)
    made = {}
    for name, start in WALKS.items():
        shifted = [start + (t - times[0]) for t in times][:60]  # five minutes
        data = gpx(lon[:60], lat[:60], shifted, name=name)
        response = client.post("/api/v1/patrols", files={"file": (f"{name}.gpx", data)}, headers=headers)
        assert response.status_code == 201, response.text
        made[name] = response.json()["id"]
    return made


def test_the_patrol_list_takes_a_date_as_the_china_day(client, patrols):
    headers = auth(client, "member")
    found = client.get("/api/v1/patrols", params={"datetime": "2026-03-02"}, headers=headers).json()
    assert sorted(f["id"] for f in found["features"]) == sorted([patrols["early"], patrols["late"]])
    found = client.get("/api/v1/patrols", params={"datetime": "2026-03-03"}, headers=headers).json()
    assert [f["id"] for f in found["features"]] == [patrols["next-day"]]


def test_a_teams_day_replays_the_patrols_of_that_china_day(client, patrols):
    sign_in(client, "manager")
    day = client.get("/maps/replay/team/LJ-T-GQ/2026-03-02")
    assert day.status_code == 200, day.text[:300]
    assert f"#{patrols['early']} " in day.text and f"#{patrols['late']} " in day.text
    assert f"#{patrols['next-day']} " not in day.text
    assert client.get("/maps/replay/team/LJ-T-GQ/2026-03-03").status_code == 200
    assert client.get("/maps/replay/team/LJ-T-GQ/2026-03-01").status_code == 404


def test_incidents_seen_either_side_of_china_midnight(client, sessions):
    add_users(sessions, "member")
    headers = auth(client, "member")
    ids = {}
    for name, seen in (("before", "2026-03-01T23:50:00+08:00"), ("after", "2026-03-02T00:10:00+08:00")):
        body = {"category": "cutting", "lon": 109.7735, "lat": 21.5655, "observed_at": seen}
        ids[name] = client.post("/api/v1/incidents", json=body, headers=headers).json()["id"]
    day = client.get("/api/v1/incidents", params={"datetime": "2026-03-02"}, headers=headers).json()
    assert [f["id"] for f in day["features"]] == [ids["after"]]
    instant = (datetime(2026, 3, 2, tzinfo=UTC) - timedelta(hours=8)).isoformat()  # China midnight, in UTC
    from_midnight = client.get(
        "/api/v1/incidents", params={"datetime": f"{instant}/.."}, headers=headers
    ).json()
    assert [f["id"] for f in from_midnight["features"]] == [ids["after"]]
