"""Uploading patrol tracks: what the patrol summary says, who may upload and see what, and that
every refused upload leaves the database exactly as it was."""

import csv
import io
import re
import zipfile
from datetime import timedelta

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select, update
from utils.factories import add_users, auth
from utils.tracks import START, crossing, csv_chinese, geojson_points, gpx, grid_metric, kml, kmz

from geodata import reference
from geodata.assign import GridIndex
from geodata.crs import METRIC, WGS84, transformer
from geodata.datum import wgs84_to_gcj02
from patrol.models import Patrol, PatrolFixes, PatrolMember, PatrolVisit
from patrol.patrols import SIMPLIFIED_MAX_VERTICES, gcj02_suspected

GRID = "LJ-GQ-03"


def upload(client, headers, content: bytes, filename="track.gpx", **form):
    return client.post("/api/v1/patrols", files={"file": (filename, content)}, data=form, headers=headers)


def counts(sessions) -> tuple[int, ...]:
    with sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (Patrol, PatrolMember, PatrolFixes, PatrolVisit)
        )


def grid_row(body, code):
    return next(g for g in body["grids"] if g["grid"] == code)


def test_a_walk_across_a_grid_gives_its_distance_and_time_inside(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, expected = crossing(GRID, speed=1.2, interval=2)
    response = upload(client, auth(client, "member"), gpx(lon, lat, times))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] and response.headers["location"] == f"/api/v1/patrols/{body['id']}"
    assert body["team"] == "LJ-T-GQ" and body["members"] == ["member"]
    assert body["distance_km"] == pytest.approx(expected["total_m"] / 1000, rel=1e-3)
    assert body["duration_min"] == pytest.approx((times[-1] - times[0]).total_seconds() / 60, abs=0.1)
    inside = grid_row(body, GRID)
    assert inside["km"] == pytest.approx(expected["inside_m"] / 1000, rel=0.01)
    assert inside["minutes"] == pytest.approx(expected["inside_s"] / 60, rel=0.01)
    assert body["outside_grids_km"] == pytest.approx(expected["outside_m"] / 1000, rel=0.02)
    assert {g["grid"] for g in body["grids"]} - {None} == expected["touched"]
    # Entered about 300 m (250 s at 1.2 m/s) after the start.
    assert inside["entered_at"].startswith(START.strftime("%Y-%m-%dT%H:3"))
    assert body["flagged_fixes"] == 0 and body["warnings"] == []


def test_the_same_file_twice_is_one_patrol(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID)
    headers = auth(client, "member")
    first = upload(client, headers, gpx(lon, lat, times))
    before = counts(sessions)
    again = upload(client, headers, gpx(lon, lat, times), filename="renamed.gpx")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert counts(sessions) == before


def test_a_gcj02_track_declared_as_such_lands_where_the_wgs84_one_does(client, sessions):
    add_users(sessions, "member")
    headers = auth(client, "member")
    lon, lat, times, expected = crossing(GRID)
    glon, glat = wgs84_to_gcj02(lon, lat)
    body = upload(client, headers, gpx(glon, glat, times), datum="gcj02").json()
    assert body["datum"] == "gcj02" and body["warnings"] == []
    assert grid_row(body, GRID)["km"] == pytest.approx(expected["inside_m"] / 1000, rel=0.01)


def test_a_shifted_track_declared_wgs84_is_stored_with_a_warning(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID, margin=20)
    glon, glat = wgs84_to_gcj02(lon, lat)
    body = upload(client, auth(client, "member"), gpx(glon, glat, times), datum="wgs84").json()
    assert [w["kind"] for w in body["warnings"]] == ["looks-gcj02"]


def test_spikes_are_flagged_and_visible_not_deleted(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, expected = crossing(GRID)
    lon = lon.copy()
    lon[100] += 0.01  # one fix ~1 km east for one second
    body = upload(client, auth(client, "member"), gpx(lon, lat, times)).json()
    assert body["fixes"] == len(lon) and body["flagged_fixes"] == 1
    assert grid_row(body, GRID)["km"] == pytest.approx(expected["inside_m"] / 1000, rel=0.01)
    fixes = client.get(f"/api/v1/patrols/{body['id']}/fixes", headers=auth(client, "member"))
    rows = list(csv.DictReader(io.StringIO(fixes.text)))
    assert len(rows) == len(lon)
    flagged = [r for r in rows if r["flags"]]
    assert [r["fix"] for r in flagged] == ["101"] and "speed" in flagged[0]["flags"].lower()
    assert float(rows[100]["raw_lon"]) == pytest.approx(lon[100], abs=1e-8)  # raw kept


def test_tracks_without_times_have_distance_but_no_duration(client, sessions):
    add_users(sessions, "member")
    lon, lat, _, expected = crossing(GRID)
    body = upload(client, auth(client, "member"), gpx(lon, lat)).json()
    assert body["duration_min"] is None and body["started_at"] is None
    row = grid_row(body, GRID)
    assert row["minutes"] is None and row["km"] == pytest.approx(expected["inside_m"] / 1000, rel=0.01)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>&lol3;</name><trkseg>
<trkpt lat="21.5" lon="109.8"/><trkpt lat="21.51" lon="109.81"/></trkseg></trk></gpx>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>&xxe;</name><trkseg>
<trkpt lat="21.5" lon="109.8"/><trkpt lat="21.51" lon="109.81"/></trkseg></trk></gpx>"""


def _points(pairs):
    return gpx([p[0] for p in pairs], [p[1] for p in pairs])


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


_KML = (
    b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><LineString><coordinates>'
    b"109.80,21.50 109.81,21.51</coordinates></LineString></Placemark></kml>"
)


BAD_UPLOADS = {
    "malformed XML": ("t.gpx", b'<?xml version="1.0"?><gpx><trk><trkseg><trkpt lat="21.5"', 422),
    "billion laughs": ("t.gpx", BILLION_LAUGHS, 422),
    "external entity": ("t.gpx", EXTERNAL_ENTITY, 422),
    "empty file": ("t.gpx", b"", 422),
    "waypoints only": (
        "t.gpx",
        b'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><wpt lat="21.5" lon="109.8"/></gpx>',
        422,
    ),
    "KMZ zip bomb": (
        "t.kmz",
        _zip({"doc.kml": _KML.replace(b"<Placemark>", b" " * 30_000_000 + b"<Placemark>")}),
        422,
    ),
    "KMZ with ../ path": ("t.kmz", _zip({"doc.kml": _KML, "../../evil.kml": _KML}), 422),
    "unknown format": ("t.docx", b"PK\x05\x06" + b"\x00" * 18, 415),
    "latitude beyond 90": ("t.gpx", _points([(109.8, 21.5), (109.81, 95.0)]), 422),
    "lon/lat swapped": ("t.gpx", _points([(21.50, 109.80), (21.51, 109.81), (21.52, 109.82)]), 422),
    "not a number": ("t.gpx", _points([(109.8, 21.5), (float("nan"), 21.5)]), 422),
    "non-UTF-8 CSV": (
        "t.csv",
        "lon,lat,time\n109.8,21.5,\xff\xfe\n".encode("latin-1") + b"\x81\x30\xff",
        422,
    ),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_are_refused_with_the_problem_named_and_nothing_stored(client, sessions, case):
    add_users(sessions, "member")
    filename, content, status = BAD_UPLOADS[case]
    before = counts(sessions)
    response = upload(client, auth(client, "member"), content, filename=filename)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"]
    assert counts(sessions) == before


def test_oversized_upload_is_refused(client, sessions, settings):
    add_users(sessions, "member")
    before = counts(sessions)
    content = b" " * (settings.imports.max_upload_bytes + 1)
    response = upload(client, auth(client, "member"), content)
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert counts(sessions) == before


def test_bad_options_are_refused(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID)
    headers = auth(client, "member")
    for form, says in [
        ({"datum": "mars-2"}, "gcj02"),
        ({"transport": "helicopter"}, "foot"),
        ({"team": "LJ-T-XX"}, "LJ-T-XX"),
    ]:
        response = upload(client, headers, gpx(lon, lat, times), **form)
        assert response.status_code == 422 and says in response.text, (form, response.text)
    assert counts(sessions) == (0, 0, 0, 0)


def test_who_may_upload_for_whom(client, sessions):
    add_users(sessions, "member", "member-2", "member-yz", "manager", "officer-lj")
    lon, lat, times, _ = crossing(GRID)
    track = gpx(lon, lat, times)
    assert upload(client, {}, track).status_code == 401
    assert upload(client, auth(client, "officer-lj"), track).status_code == 422  # not a patrol member
    # A member cannot upload a patrol they were not on, nor credit another team.
    assert upload(client, auth(client, "member"), track, members="member-yz").status_code == 403
    assert upload(client, auth(client, "member"), track, team="LJ-T-YZ").status_code == 422
    assert counts(sessions)[0] == 0
    # The Gaoqiao station manager uploads for two Gaoqiao members.
    response = client.post(
        "/api/v1/patrols",
        files={"file": ("t.gpx", track)},
        data={"members": ["member", "member-2"]},
        headers=auth(client, "manager"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["members"] == ["member", "member-2"]


def test_patrols_are_seen_by_their_side_only(client, sessions):
    add_users(sessions, "member", "member-yz", "manager", "officer-lj", "officer-hp", "member-hp")
    lon, lat, times, _ = crossing(GRID)
    patrol_id = upload(client, auth(client, "member"), gpx(lon, lat, times)).json()["id"]
    for user, visible in [("member", True), ("manager", True), ("officer-lj", True), ("member-yz", False),
                          ("officer-hp", False), ("member-hp", False)]:  # fmt: skip
        headers = auth(client, user)
        one = client.get(f"/api/v1/patrols/{patrol_id}", headers=headers)
        listed = client.get("/api/v1/patrols", headers=headers).json()
        assert (one.status_code == 200) == visible, user
        assert (one.status_code == 404) != visible, user  # invisible answers as if it did not exist
        assert (listed["numberMatched"] == 1) == visible, user
    assert client.get("/api/v1/patrols").status_code == 401


def test_patrol_list_is_geojson_with_simplified_lines_and_paging(client, sessions):
    add_users(sessions, "member")
    headers = auth(client, "member")
    for shift in range(3):
        lon, lat, times, _ = crossing(GRID, margin=100 + 50 * shift)
        assert upload(client, headers, gpx(lon, lat, times)).status_code == 201
    page = client.get("/api/v1/patrols", params={"limit": 2}, headers=headers)
    assert page.headers["content-type"].startswith("application/geo+json")
    body = page.json()
    assert body["numberMatched"] == 3 and body["numberReturned"] == 2
    assert body["features"][0]["geometry"]["type"] == "MultiLineString"
    simplified = len(body["features"][0]["geometry"]["coordinates"][0])
    full = client.get(f"/api/v1/patrols/{body['features'][0]['id']}", headers=headers).json()
    assert simplified < len(full["geometry"]["coordinates"][0])
    rest = client.get(body["links"][0]["href"], headers=headers).json()
    assert rest["numberReturned"] == 1 and "links" not in rest
    assert client.get("/api/v1/patrols", params={"grid": GRID}, headers=headers).json()["numberMatched"] == 3
    assert (
        client.get("/api/v1/patrols", params={"grid": "LJ-YZ-01"}, headers=headers).json()["numberMatched"]
        == 0
    )
    assert (
        client.get("/api/v1/patrols", params={"datetime": "2026-03-03/.."}, headers=headers).json()[
            "numberMatched"
        ]
        == 0
    )
    assert (
        client.get(
            "/api/v1/patrols", params={"datetime": "2026-03-05/2026-03-01"}, headers=headers
        ).status_code
        == 422
    )


def test_upload_page_for_phones(client, sessions):
    add_users(sessions, "member")
    assert client.get("/patrols/upload", follow_redirects=False).headers["location"].startswith("/login")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post(
        "/login", data={"username": "member", "password": "correct horse battery", "csrf_token": token}
    )
    form = client.get("/patrols/upload")
    assert form.status_code == 200 and 'type="file"' in form.text and "gcj02" in form.text
    assert not re.search(r'(src|href)="https?://', form.text)  # no external assets
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    lon, lat, times, _ = crossing(GRID)
    files = {"file": ("walk.gpx", gpx(lon, lat, times))}
    refused = client.post("/patrols/upload", files=files, data={"csrf_token": "forged"})
    assert refused.status_code == 403
    done = client.post("/patrols/upload", files=files, data={"csrf_token": csrf, "datum": "wgs84"})
    assert done.status_code == 200 and GRID in done.text and "Saved" in done.text
    bad = client.post("/patrols/upload", files={"file": ("x.gpx", b"<gpx")}, data={"csrf_token": csrf})
    assert bad.status_code == 422 and 'class="error"' in bad.text


def test_fix_count_matches_the_file(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID, interval=5)
    body = upload(client, auth(client, "member"), gpx(lon, lat, times)).json()
    with sessions() as session:
        assert session.get(PatrolFixes, body["id"]).fix_count == len(lon) == body["fixes"]
    assert np.isclose(body["distance_km"], sum(g["km"] for g in body["grids"]), atol=0.01)


@pytest.mark.parametrize(
    "filename, write",
    [("walk.gpx", gpx), ("walk.kml", kml), ("walk.kmz", kmz), ("walk.geojson", geojson_points),
     ("轨迹.csv", csv_chinese)],
)  # fmt: skip
def test_every_format_gives_the_same_patrol(client, sessions, filename, write):
    add_users(sessions, "member")
    lon, lat, times, expected = crossing(GRID, interval=5)
    response = upload(client, auth(client, "member"), write(lon, lat, times), filename=filename)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["fixes"] == len(lon)
    assert grid_row(body, GRID)["km"] == pytest.approx(expected["inside_m"] / 1000, rel=0.01)
    assert grid_row(body, GRID)["minutes"] == pytest.approx(expected["inside_s"] / 60, rel=0.01)
    # The CSV's local (Beijing) times without a zone are read as China time: same instants.
    assert body["started_at"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_time_zone_of_naive_times_can_be_declared(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID, interval=5)
    headers = auth(client, "member")
    body = upload(client, headers, csv_chinese(lon, lat, times), filename="t.csv", time_zone="utc").json()
    assert body["started_at"] == (START.replace(hour=START.hour + 8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert any("taken as UTC" in w["message"] for w in body["warnings"])
    response = upload(client, headers, gpx(lon, lat, times), time_zone="martian")
    assert response.status_code == 422 and "utc or china" in response.json()["detail"]


def test_a_wrong_upload_can_be_deleted_and_uploaded_again(client, sessions):
    add_users(sessions, "member", "member-2", "manager", "officer-lj")
    lon, lat, times, _ = crossing(GRID, interval=5)
    track = csv_chinese(lon, lat, times)
    first = upload(client, auth(client, "member"), track, filename="t.csv", time_zone="utc").json()
    for user, status in [("member-2", 403), ("officer-lj", 403)]:  # see it, may not delete it
        assert (
            client.delete(f"/api/v1/patrols/{first['id']}", headers=auth(client, user)).status_code == status
        )
    assert client.delete(f"/api/v1/patrols/{first['id']}", headers=auth(client, "manager")).status_code == 204
    assert counts(sessions) == (0, 0, 0, 0)
    assert client.delete(f"/api/v1/patrols/{first['id']}", headers=auth(client, "manager")).status_code == 404
    again = upload(client, auth(client, "member"), track, filename="t.csv")
    assert again.status_code == 201 and again.json()["started_at"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- GCJ-02 detection ------------------------------------------------------------------------------


def edge_walk(code: str, minutes: float, *, start: float = 0.0, inset_m: float = 25.0, speed: float = 1.1):
    """A walk along the mangrove edge of grid ``code`` (its boundary, ``inset_m`` inside), a fix
    every 2 s from ``start`` (a fraction of the way round), as WGS84 lon/lat and times."""
    ring = shapely.get_exterior_ring(shapely.buffer(grid_metric(code), -inset_m))
    along = (start * ring.length + np.arange(0, minutes * 60, 2) * speed) % ring.length
    points = shapely.line_interpolate_point(ring, along)
    lon, lat = transformer(METRIC, WGS84).transform(shapely.get_x(points), shapely.get_y(points))
    return np.asarray(lon), np.asarray(lat), [START + timedelta(seconds=2 * i) for i in range(len(along))]


def test_a_30_minute_gcj02_walk_along_the_edge_declared_wgs84_is_warned(client, sessions):
    """The short walk of the issue got no warning: the grids are contiguous, so the shifted track
    still lay inside grids. Along the mangrove edge it is caught (bench/bench_gcj02_detection.py:
    ≥ 95 % of foot patrols from 15 minutes, 94 % at 10)."""
    add_users(sessions, "member")
    headers = auth(client, "member")
    lon, lat, times = edge_walk(GRID, 30, start=0.5)  # shifted, it lies wholly in grids all the same
    shifted = upload(client, headers, gpx(*wgs84_to_gcj02(lon, lat), times), datum="wgs84").json()
    warning = next(w for w in shifted["warnings"] if w["kind"] == "looks-gcj02")
    assert warning["inside_as_given"] == warning["inside_if_gcj02"] == 1.0  # all the old check saw
    assert warning["along_edge_if_gcj02"] - warning["along_edge_as_given"] > 0.9
    true = upload(client, headers, gpx(lon, lat, times), filename="true.gpx", datum="wgs84").json()
    assert true["warnings"] == []


def test_true_wgs84_walks_are_never_called_gcj02_and_shifted_ones_mostly_are():
    """20-minute walks along every grid's edge, from 4 places each, and boat runs through each
    grid: no true WGS84 track is suspected; of the same walks shifted to GCJ-02, ≥ 95 % are."""
    grids = reference.load_grids().to_crs(METRIC)
    index = GridIndex(grids.code.values, grids.geometry.values)
    caught, walks = 0, 0
    for code in grids.code:
        for start in (0.0, 0.25, 0.5, 0.75):
            lon, lat, _ = edge_walk(code, 20, start=start)
            assert not gcj02_suspected(lon, lat, index, "foot")[0], (code, start)
            caught += gcj02_suspected(*wgs84_to_gcj02(lon, lat), index, "foot")[0]
            walks += 1
        centre = grid_metric(code).representative_point()
        x = centre.x + np.linspace(-300, 300, 200)
        blon, blat = transformer(METRIC, WGS84).transform(x, np.full_like(x, centre.y))
        assert not gcj02_suspected(np.asarray(blon), np.asarray(blat), index, "boat")[0], code
    assert caught / walks >= 0.95, f"{caught} of {walks}"


# --- hostile tracks: what is stored and read back ----------------------------------------------------


def test_two_copies_of_one_flight_in_a_kml_count_once(client, sessions):
    add_users(sessions, "member")
    headers = auth(client, "member")
    lon, lat, times, _ = crossing(GRID)
    once = upload(client, headers, kml(lon, lat, times), filename="once.kml").json()
    doc = kml(lon, lat, times).decode()
    placemark = doc[doc.index("<Placemark>") : doc.index("</Placemark>") + len("</Placemark>")]
    twice = upload(
        client, headers, doc.replace(placemark, placemark * 2).encode(), filename="twice.kml"
    ).json()
    assert twice["fixes"] == 2 * once["fixes"] and twice["flags"]["repeated"] == once["fixes"]
    assert twice["distance_km"] == once["distance_km"] and twice["duration_min"] == once["duration_min"]
    assert grid_row(twice, GRID) == grid_row(once, GRID)


def test_a_track_whose_segments_each_hold_one_fix_is_refused_and_nothing_stored(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID)
    segments = "".join(
        f'<trkseg><trkpt lat="{y}" lon="{x}"><time>{t:%Y-%m-%dT%H:%M:%SZ}</time></trkpt></trkseg>'
        for x, y, t in zip(lon, lat, times)
    )
    content = f'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk>{segments}</trk></gpx>'
    before = counts(sessions)
    response = upload(client, auth(client, "member"), content.encode())
    assert response.status_code == 422
    assert (
        f"each of the {len(lon):,} segments left after cleaning holds a single fix"
        in response.json()["detail"]
    )
    assert counts(sessions) == before


def test_patrols_stored_without_a_line_still_read_back(client, sessions):
    """Uploads before the line check could store an empty or missing line: reading them must not fail."""
    add_users(sessions, "member")
    headers = auth(client, "member")
    lon, lat, times, _ = crossing(GRID)
    ids = [upload(client, headers, gpx(lon, lat, times, name=name)).json()["id"] for name in ("a", "b")]
    with sessions() as session:
        empty = func.ST_GeomFromText("MULTILINESTRING EMPTY", 4326)
        session.execute(update(Patrol).where(Patrol.id == ids[0]).values(geom=None, geom_simplified=None))
        session.execute(update(Patrol).where(Patrol.id == ids[1]).values(geom=empty, geom_simplified=empty))
        session.commit()
    listed = client.get("/api/v1/patrols", headers=headers)
    assert listed.status_code == 200
    assert [f["geometry"] for f in listed.json()["features"]] == [None, None]
    for pid in ids:
        one = client.get(f"/api/v1/patrols/{pid}", headers=headers)
        assert one.status_code == 200 and one.json()["geometry"] in (
            None,
            {"type": "MultiLineString", "coordinates": []},
        )


def test_the_simplified_line_of_a_track_that_retraces_itself_is_small(client, sessions):
    """Walking the same 1 km back and forth 40 times: the map copy keeps the turns, not every fix
    (topology-preserving simplification kept almost all of them)."""
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID, margin=0, interval=4)
    forth_and_back = np.r_[np.arange(len(lon)), np.arange(len(lon))[::-1]]
    order = np.tile(forth_and_back, 20)
    stamps = [times[0] + timedelta(seconds=4 * i) for i in range(len(order))]
    body = upload(client, auth(client, "member"), gpx(lon[order], lat[order], stamps)).json()
    listed = client.get("/api/v1/patrols", headers=auth(client, "member")).json()["features"][0]
    vertices = sum(len(part) for part in listed["geometry"]["coordinates"])
    assert body["fixes"] == len(order) > 10_000 and vertices <= 2 * 40 + 10


def test_the_simplified_line_is_bounded_however_winding_the_track(client, sessions):
    add_users(sessions, "member")
    rng = np.random.default_rng(3)
    lon, lat, times, _ = crossing(GRID, speed=0.5, interval=1)
    x, y = transformer(WGS84, METRIC).transform(lon, lat)
    x, y = np.asarray(x) + rng.normal(0, 15, len(lon)), np.asarray(y) + rng.normal(0, 15, len(lon))  # zig-zag
    wlon, wlat = transformer(METRIC, WGS84).transform(x, y)
    body = upload(client, auth(client, "member"), gpx(wlon, wlat, times), transport="boat").json()
    listed = client.get("/api/v1/patrols", headers=auth(client, "member")).json()["features"][0]
    vertices = sum(len(part) for part in listed["geometry"]["coordinates"])
    assert body["fixes"] > SIMPLIFIED_MAX_VERTICES and vertices <= SIMPLIFIED_MAX_VERTICES


def test_placeholder_times_are_stored_as_unknown_with_a_warning(client, sessions):
    add_users(sessions, "member")
    lon, lat, _, _ = crossing(GRID)
    content = gpx(lon, lat).replace(b"</trkpt>", b"<time>1901-12-13T20:45:52Z</time></trkpt>")
    body = upload(client, auth(client, "member"), content).json()
    assert body["started_at"] is None and body["duration_min"] is None and body["flagged_fixes"] == 0
    assert [w["kind"] for w in body["warnings"]] == ["placeholder-time"]


def test_the_stored_file_name_is_printable_and_bounded(client, sessions):
    add_users(sessions, "member")
    lon, lat, times, _ = crossing(GRID)
    name = "a\x1b[31mb" + "林" * 400 + ".gpx"  # an escape sequence (and a name past the column's 256)
    body = upload(client, auth(client, "member"), gpx(lon, lat, times), filename=name).json()
    assert body["source_name"] == "a\ufffd[31mb" + "林" * 248 + "…"
