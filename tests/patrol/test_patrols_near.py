"""Who was near here, when: ``GET /api/v1/patrols/near`` and ``mangrove patrols near``.

The answer is checked against a brute force computed in the test from the fixes it uploaded:
every line between consecutive fixes sampled every few centimetres, each sample's geodesic distance
to the point (pyproj's Geod), the nearest sample's distance and time. The service must agree to 1 m
and 1 s, whoever asks, and see only the patrols the asker may see."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from utils.factories import add_users, auth
from utils.nearby import GEOD, T0, near, upload, wander

from patrol.models import PatrolSegment
from patrol.segments import SEGMENT_FIXES, segment_rows


def brute_force(lon, lat, times, point, start: datetime, end: datetime):
    """(distance m, time) of the closest approach of the polyline within [start, end], or None."""
    t = np.array([(x - T0).total_seconds() for x in times])
    t0, t1 = (start - T0).total_seconds(), (end - T0).total_seconds()
    best = (np.inf, None)
    for i in range(len(t) - 1):
        a, b = max(t[i], t0), min(t[i + 1], t1)
        if a > b:
            continue
        samples = np.linspace(a, b, max(int((b - a) / (t[i + 1] - t[i]) * 200), 2))
        f = (samples - t[i]) / (t[i + 1] - t[i])
        slon, slat = lon[i] + f * (lon[i + 1] - lon[i]), lat[i] + f * (lat[i + 1] - lat[i])
        _, _, dist = GEOD.inv(np.full_like(slon, point[0]), np.full_like(slat, point[1]), slon, slat)
        k = int(np.argmin(dist))
        if dist[k] < best[0]:
            best = (float(dist[k]), T0 + timedelta(seconds=float(samples[k])))
    return None if best[1] is None else best


@pytest.fixture
def walks(client, sessions):
    """Three Lianjiang walks in one grid at overlapping times (two teams) and one in Hepu."""
    add_users(sessions, "admin", "member", "member-yz", "member-hp", "officer-lj", "officer-hp")
    tracks = {
        "gq-1": ("member", wander(1, grid="LJ-GQ-03", minutes=40, start=T0)),
        "gq-2": ("member", wander(2, grid="LJ-GQ-03", minutes=30, start=T0 + timedelta(minutes=20))),
        "yz-1": ("member-yz", wander(3, grid="LJ-GQ-03", minutes=35, start=T0 + timedelta(minutes=5))),
        "hp-1": ("member-hp", wander(4, grid="HP-SK-01", minutes=30, start=T0)),
    }
    ids = {name: upload(client, auth(client, who), *track, name) for name, (who, track) in tracks.items()}
    return {name: (ids[name], tracks[name][1]) for name in tracks}


def test_closest_approach_agrees_with_brute_force_to_a_metre_and_a_second(client, walks):
    admin = auth(client, "admin")
    rng = np.random.default_rng(7)
    lon0, lat0, _ = walks["gq-1"][1]
    checked = 0
    for trial in range(12):
        # A point near some fix of the first walk, and an interval cutting the walks.
        k = int(rng.integers(0, len(lon0)))
        point = (float(lon0[k] + rng.normal(0, 0.0008)), float(lat0[k] + rng.normal(0, 0.0008)))
        start = T0 + timedelta(minutes=float(rng.uniform(0, 20)))
        end = start + timedelta(minutes=float(rng.uniform(5, 40)))
        radius = float(rng.choice([50, 150, 400]))
        response = near(client, admin, *point, radius, start, end)
        assert response.status_code == 200, response.text
        got = {f["properties"]["patrol_id"]: f["properties"] for f in response.json()["features"]}
        expected = {}
        for pid, (lon, lat, times) in walks.values():
            answer = brute_force(lon, lat, times, point, start, end)
            if answer and answer[0] <= radius:
                expected[pid] = answer
        # A patrol within a metre of the edge may fall either way.
        borderline = {pid for pid, (d, _) in expected.items() if d > radius - 1}
        assert set(got) - borderline == set(expected) - borderline, (trial, point, radius)
        for pid in set(got) & set(expected):
            distance, at = expected[pid]
            assert got[pid]["distance_m"] == pytest.approx(distance, abs=1.0)
            seen = datetime.fromisoformat(got[pid]["closest_at"])
            assert abs((seen - at).total_seconds()) <= 1.0, (pid, seen, at)
            checked += 1
        distances = [p["distance_m"] for p in got.values()]
        assert distances == sorted(distances)
    assert checked >= 10  # the trials did compare something


def test_the_interval_cuts_the_track(client, walks):
    """Asked for an interval that ends mid-walk, the approach is the closest before its end."""
    pid, (lon, lat, times) = walks["gq-1"]
    point = (float(lon[-1]), float(lat[-1]))  # where the walk ended, 40 minutes in
    end = T0 + timedelta(minutes=10)
    expected = brute_force(lon, lat, times, point, T0, end)
    response = near(client, auth(client, "admin"), *point, 5000, T0, end)
    props = next(f["properties"] for f in response.json()["features"] if f["id"] == pid)
    assert props["distance_m"] == pytest.approx(expected[0], abs=1.0)
    assert datetime.fromisoformat(props["closest_at"]) <= end
    # After the walk, nothing.
    later = near(
        client, auth(client, "admin"), *point, 5000, T0 + timedelta(hours=2), T0 + timedelta(hours=3)
    )
    assert later.json()["features"] == []


@pytest.mark.parametrize(
    "who, sees",
    [
        ("admin", {"gq-1", "gq-2", "yz-1", "hp-1"}),
        ("officer-lj", {"gq-1", "gq-2", "yz-1"}),
        ("member", {"gq-1", "gq-2"}),
        ("member-yz", {"yz-1"}),
        ("officer-hp", {"hp-1"}),
    ],
)
def test_only_patrols_the_asker_may_see_are_listed(client, walks, who, sees):
    headers = auth(client, who)
    found = set()
    for name in ("gq-1", "hp-1"):
        _, (lon, lat, _) = walks[name]
        response = near(client, headers, float(lon[0]), float(lat[0]), 5000, T0, T0 + timedelta(hours=2))
        assert response.status_code == 200, response.text
        found |= {f["id"] for f in response.json()["features"]}
    ids = {pid: name for name, (pid, _) in walks.items()}
    assert {ids[i] for i in found} == sees


def test_each_feature_is_the_closest_point_with_the_patrol_named(client, walks):
    pid, (lon, lat, times) = walks["yz-1"]
    response = near(
        client, auth(client, "officer-lj"), float(lon[10]), float(lat[10]), 30, T0, T0 + timedelta(hours=1)
    )
    body = response.json()
    assert response.headers["content-type"].startswith("application/geo+json")
    feature = next(f for f in body["features"] if f["id"] == pid)
    props = feature["properties"]
    assert feature["geometry"]["type"] == "Point"
    assert props["team"] == "LJ-T-YZ" and props["members"] == ["member-yz"]
    # The walk passed through the point itself at its 11th fix.
    assert props["distance_m"] <= 0.5
    assert abs((datetime.fromisoformat(props["closest_at"]) - times[10]).total_seconds()) <= 1
    _, _, back = GEOD.inv(lon[10], lat[10], *feature["geometry"]["coordinates"])
    assert back <= 0.5


def test_a_flagged_spike_is_not_where_the_patrol_was(client, sessions):
    """A fix 2 km off (a GPS spike, flagged by the speed rule) does not bring the patrol near."""
    add_users(sessions, "member")
    lon, lat, times = wander(9, grid="LJ-GQ-03", minutes=10, start=T0)
    spike_lon, spike_lat = lon.copy(), lat.copy()
    spike_lon[50] += 0.02
    upload(client, auth(client, "member"), spike_lon, spike_lat, times, "spiky")
    response = near(
        client, auth(client, "member"), float(spike_lon[50]), float(lat[50]), 200, T0, T0 + timedelta(hours=1)
    )
    assert response.json()["features"] == []


def test_a_deleted_patrol_takes_its_pieces_with_it(client, sessions, walks):
    pid, (lon, lat, _) = walks["gq-2"]
    with sessions() as session:
        assert session.scalar(select(func.count()).where(PatrolSegment.patrol_id == pid)) > 0
    assert client.delete(f"/api/v1/patrols/{pid}", headers=auth(client, "admin")).status_code == 204
    with sessions() as session:
        assert session.scalar(select(func.count()).where(PatrolSegment.patrol_id == pid)) == 0
    response = near(
        client, auth(client, "admin"), float(lon[0]), float(lat[0]), 5000, T0, T0 + timedelta(hours=2)
    )
    assert pid not in {f["id"] for f in response.json()["features"]}


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"radius_m": 0}, "radius_m"),
        ({"radius_m": -5}, "radius_m"),
        ({"radius_m": 5001}, "radius_m"),
        ({"radius_m": "nan"}, "radius_m"),
        ({"lon": 200}, "lon"),
        ({"lat": -91}, "lat"),
        ({"lat": "north"}, "lat"),
        ({"datetime": "2026-01-01/2026-03-01"}, "datetime"),
        ({"datetime": "2026-03-01/.."}, "datetime"),
        ({"datetime": "2026-03-01"}, None),  # one day: fine
        ({"datetime": "yesterday"}, "datetime"),
    ],
)
def test_bad_questions_are_refused_naming_the_parameter(client, sessions, params, parameter):
    add_users(sessions, "member")
    query = {
        "lon": 109.7,
        "lat": 21.5,
        "radius_m": 300,
        "datetime": "2026-03-01T06:00/2026-03-01T18:00",
    } | params
    response = client.get("/api/v1/patrols/near", params=query, headers=auth(client, "member"))
    if parameter is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert parameter in response.text


def test_anonymous_callers_must_sign_in(client):
    response = client.get(
        "/api/v1/patrols/near", params={"lon": 109.7, "lat": 21.5, "radius_m": 300, "datetime": "2026-03-01"}
    )
    assert response.status_code == 401


def test_pieces_cover_the_track_without_gaps():
    """Cut into pieces of at most SEGMENT_FIXES fixes, sharing their boundary fixes; a run of one
    fix is a piece of its own; a gap splits the track."""
    n = 500
    seconds = np.arange(n, dtype=float) * 2
    seconds[300:] += 4000  # more than an hour without a fix
    segment = np.zeros(n, dtype=int)
    segment[450:] = 1
    segment[499] = 2  # a lone fix
    lon = 109.7 + np.arange(n) * 1e-5
    lat = np.full(n, 21.5)
    rows = segment_rows(lon, lat, seconds, segment)
    assert all(r["fix_count"] <= SEGMENT_FIXES for r in rows)
    assert rows[-1]["fix_count"] == 1
    # Every consecutive pair of fixes of one run lies in exactly one piece.
    pairs = 0
    for r in rows:
        pairs += max(r["fix_count"] - 1, 0)
    assert pairs == (300 - 1) + (450 - 300 - 1) + (499 - 450 - 1)


def test_the_cli_answers_the_same(client, walks, configured, capsys):
    from api.cli import main

    _, (lon, lat, _) = walks["gq-1"]
    args = ["patrols", "near", "--lon", str(lon[5]), "--lat", str(lat[5]), "--radius-m", "100",
            "--datetime", f"{T0.isoformat()}/{(T0 + timedelta(hours=1)).isoformat()}", "--json"]  # fmt: skip
    assert main(args) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    api = near(
        client, auth(client, "admin"), float(lon[5]), float(lat[5]), 100, T0, T0 + timedelta(hours=1)
    ).json()
    assert [r["patrol_id"] for r in rows] == [f["id"] for f in api["features"]]
    assert main([*args[:-1], "--as", "member-yz", "--json"]) == 0
    assert {r["team"] for r in json.loads(capsys.readouterr().out)} <= {"LJ-T-YZ"}
    assert main([*args[:7], "0", *args[8:]]) == 2
    assert "radius_m" in capsys.readouterr().err
