"""The served maps and the exported ones: who may open what, 4xx pages that say what is wrong,
nothing loaded from outside the service, and self-contained exports."""

import json
import re
from datetime import UTC, datetime, timedelta

import folium
import pytest
from folium.plugins import Fullscreen
from sqlalchemy import select
from utils.mapdata import asset_references, controls, external, incident_rows, layer, layer_names, sign_in

from api.cli import main as cli
from maps.assets import STATIC_DIR, AssetError, to_html
from maps.base import basemap, new_map
from maps.station import NO_EFFORT
from patrol.effort import LOCAL_TIME
from patrol.models import Patrol

URL = re.compile(r"https?://", re.I)


def first_patrol(demo, team: str) -> int:
    with demo.sessions() as session:
        return session.scalar(select(Patrol.id).where(Patrol.team == team).order_by(Patrol.id).limit(1))


def test_map_pages_send_visitors_who_are_not_signed_in_to_the_login_page(demo_client):
    for path in (
        "/maps/station",
        "/maps/joint",
        "/maps/replay/patrol/1",
        "/maps/replay/team/LJ-T-GQ/2026-01-01",
    ):
        response = demo_client.get(path + "?basemap=none", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith(f"/login?next={path}")


@pytest.mark.parametrize("path", ["/maps/station", "/maps/joint", "/maps/replay/patrol/{patrol}"])
def test_a_served_map_loads_nothing_from_outside_the_service(demo, demo_client, path):
    sign_in(demo_client, "admin")
    response = demo_client.get(path.format(patrol=first_patrol(demo, "LJ-T-GQ")))
    assert response.status_code == 200, response.text
    html = response.text
    assert not URL.search(html), URL.search(html)  # not even a link: every byte comes from here
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:;" in policy
    refs = asset_references(html)
    assert refs and not external(refs)
    for ref in refs:
        if ref.startswith("/static/maps/"):
            served = demo_client.get(ref)
            assert served.status_code == 200 and len(served.content) > 500, ref
    assert "/static/maps/vendor/leaflet/leaflet.js" in refs and "/static/maps/mangrove-maps.js" in refs


def test_a_chosen_online_basemap_is_the_only_thing_fetched_from_outside(demo_client):
    sign_in(demo_client, "admin")
    response = demo_client.get("/maps/station?basemap=osm")
    assert response.status_code == 200
    assert set(URL.findall(response.text)) == {"https://"}
    assert external(asset_references(response.text)) == ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"]
    assert (
        "img-src 'self' data: https://tile.openstreetmap.org" in response.headers["content-security-policy"]
    )


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/maps/station?station=LJ-S-XX", 404, "no station &#39;LJ-S-XX&#39;"),
        ("/maps/station?grid=LJ-GQ-01&grid=NOPE", 404, "no grid NOPE"),
        ("/maps/station?from=2026-05-02&to=2026-05-01", 422, "empty or reversed"),
        ("/maps/station?from=2026-13-01", 422, "is not an RFC 3339 date"),
        ("/maps/station?basemap=tianditu", 422, "needs a key: set MANGROVE_MAP_TIANDITU_KEY"),
        ("/maps/station?basemap=google", 422, "unknown basemap"),
        ("/maps/station?metric=steps", 422, "unknown effort measure"),
        ("/maps/station?unpatrolled_days=-3", 422, "unpatrolled_days must be a whole number"),
        ("/maps/joint?status=lost", 422, "status"),
        ("/maps/joint?category=whaling", 422, "unknown incident category whaling"),
        ("/maps/replay/patrol/999999", 404, "no patrol 999999"),
        ("/maps/replay/patrol/abc", 404, "no patrol &#39;abc&#39;"),
        ("/maps/replay/patrol/99999999999", 404, "no patrol"),
        ("/maps/replay/team/LJ-T-XX/2026-01-01", 404, "no team"),
        ("/maps/replay/team/LJ-T-GQ/2026-02-30", 422, "bad day"),
        ("/maps/replay/team/LJ-T-GQ/1999-01-01", 404, "no patrol of team LJ-T-GQ on 1999-01-01"),
    ],
)
def test_bad_input_answers_with_a_page_that_says_what_is_wrong(demo_client, path, status, words):
    sign_in(demo_client, "admin")
    response = demo_client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "无法显示地图 The map cannot be shown" in response.text and words in response.text


def test_a_patrol_outside_the_users_rights_answers_as_if_it_did_not_exist(demo, demo_client):
    hepu = first_patrol(demo, "HP-T-SK")
    own = first_patrol(demo, "LJ-T-GQ")
    sign_in(demo_client, "gq-member-07")
    assert demo_client.get(f"/maps/replay/patrol/{own}").status_code == 200
    hidden = demo_client.get(f"/maps/replay/patrol/{hepu}")
    missing = demo_client.get("/maps/replay/patrol/2000000000")
    assert hidden.status_code == missing.status_code == 404
    alert = re.compile(r'role="alert">(.*?)</p>', re.S)
    assert alert.search(hidden.text).group(1) == alert.search(missing.text).group(1).replace(
        "2000000000", str(hepu)
    )


def test_a_team_day_replay_shows_only_patrols_the_user_may_see(demo, demo_client):
    with demo.sessions() as session:
        patrol = session.scalars(select(Patrol).where(Patrol.team == "HP-T-SK").limit(1)).one()
    day = (
        patrol.started_at.astimezone(LOCAL_TIME).date()
        if patrol.started_at.tzinfo
        else ((patrol.started_at.replace(tzinfo=UTC)).astimezone(LOCAL_TIME).date())
    )
    path = f"/maps/replay/team/HP-T-SK/{day.isoformat()}"
    sign_in(demo_client, "gq-member-07")
    assert demo_client.get(path).status_code == 404
    sign_in(demo_client, "hp-officer")
    page = demo_client.get(path)
    assert page.status_code == 200
    assert f"#{patrol.id}" in " ".join(controls(page.text))


def test_the_replay_carries_timed_positions_and_the_grids_the_patrol_crossed(demo, demo_client):
    pid = first_patrol(demo, "LJ-T-GQ")
    sign_in(demo_client, "gq-manager")
    html = demo_client.get(f"/maps/replay/patrol/{pid}").text
    payload = re.search(r"window\.mangroveReplay = MangroveMaps\.replay\(\w+, \w+, (\{.*\})\);", html)
    data = json.loads(payload.group(1))
    track = data["tracks"][0]
    assert track["id"] == pid and len(track["coords"]) == 2 * len(track["t"]) > 10
    assert track["t"][0] == 0 and track["t"] == sorted(track["t"])
    crossed = {v[1] for v in data["visits"]}
    grids = layer(html, "polygons")["features"]
    assert crossed and crossed <= {f["properties"]["code"] for f in grids}
    # Grids start plain and light as the patrol reaches them (the browser test presses Play);
    # the popup still says which grids this replay crosses.
    for f in grids:
        assert f["properties"]["style"]["color"] != "#d35400"
        assert ("Crossed by this replay" in f["properties"]["popup"]) == (f["properties"]["code"] in crossed)


def test_the_joint_map_is_for_managers_officers_and_admins(demo_client):
    sign_in(demo_client, "gq-member-07")
    refused = demo_client.get("/maps/joint")
    assert refused.status_code == 403 and "station managers, enforcement officers and admins" in refused.text
    sign_in(demo_client, "hp-officer")
    assert demo_client.get("/maps/joint").status_code == 200


def test_the_joint_map_shows_both_sides_the_border_and_only_incidents_the_officer_may_see(demo, demo_client):
    sign_in(demo_client, "hp-officer")
    html = demo_client.get("/maps/joint").text
    sides = {f["properties"]["code"][:2] for f in layer(html, "polygons", 0)["features"]}
    assert sides == {"LJ", "HP"}
    names = layer_names(html)
    assert "粤桂省界 Provincial border" in names and "省界附近 2 km Near the border" in names
    assert any(n.startswith("联合案件 Joint cases (") for n in names)
    lookups = json_lookups(html)
    rows = incident_rows(html)
    assert rows
    for row in rows:  # [lat, lon, id, category, status, overdue, observed, due, grid, side, flags]
        side = lookups["sides"][row[9]]["code"]
        assert side == "GX-HP" or set(row[10]) & set("jrn"), row
    assert any(lookups["sides"][r[9]]["code"] == "GD-LJ" for r in rows)  # near-border Guangdong ones
    assert lookups["colorBy"] == "side"
    form = controls(html)[-1]
    assert "<form class='mp-filter' method='get' action='/maps/joint'>" in form
    assert "name='basemap'" in form and "value='tianditu'" not in form  # no key set here


def json_lookups(html: str) -> dict:
    return json.loads(re.search(r"MangroveMaps\.incidentMarker\((\{.*\})\);", html).group(1))


def test_joint_map_filters_narrow_the_incidents(demo_client):
    sign_in(demo_client, "admin")
    everything = incident_rows(demo_client.get("/maps/joint").text)
    closed = demo_client.get("/maps/joint?status=closed&status=resolved").text
    lookups = json_lookups(closed)
    rows = incident_rows(closed)
    assert 0 < len(rows) < len(everything)
    assert {lookups["statuses"][r[4]]["code"] for r in rows} <= {"closed", "resolved"}
    assert "value='closed' selected" in controls(closed)[-1]


def test_the_home_page_lists_the_maps_each_user_may_open(demo_client):
    sign_in(demo_client, "gq-member-07")
    home = demo_client.get("/").text
    assert "/maps/station" in home and "/maps/replay/patrol/" in home and "/maps/joint" not in home
    sign_in(demo_client, "lj-officer")
    assert "/maps/joint" in demo_client.get("/").text


def test_an_exported_map_is_one_self_contained_file(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MANGROVE_DATABASE_URL", demo.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(demo.settings.storage.data_dir))
    from patrol.settings import get_settings

    get_settings.cache_clear()
    try:
        out = tmp_path / "station.html"
        assert cli(["maps", "station", "--station", "LJ-S-GQ", "-o", str(out)]) == 0
        html = out.read_text(encoding="utf-8")
        assert asset_references(html) and not external(asset_references(html))
        assert "<script src=" not in html and '<link rel="stylesheet"' not in html
        assert (STATIC_DIR / "vendor/leaflet/leaflet.js").read_text()[:200] in html
        assert "url(data:image/png;base64," in html  # Leaflet's icons inlined with its stylesheet
        assert layer(html, "polygons")["features"]

        assert cli(["maps", "joint", "-o", str(tmp_path / "joint.html"), "--as", "gq-member-07"]) == 2
        assert "station managers, enforcement officers and admins" in capsys.readouterr().err
        assert not (tmp_path / "joint.html").exists()
        assert cli(["maps", "replay", "--patrol", "999999", "-o", str(tmp_path / "r.html")]) == 2
        assert cli(["maps", "station", "--basemap", "tianditu", "-o", str(tmp_path / "t.html")]) == 2
        assert "MANGROVE_MAP_TIANDITU_KEY" in capsys.readouterr().err
        assert cli(["maps", "station", "-o", str(tmp_path / "missing" / "s.html")]) == 2
    finally:
        get_settings.cache_clear()


def test_a_map_element_needing_an_unvendored_library_cannot_be_rendered():
    m = new_map((109.6, 21.4, 110.1, 21.7), basemap("none"))
    Fullscreen().add_to(m)  # its script lives on a CDN only
    with pytest.raises(AssetError, match="Fullscreen needs"):
        to_html(m, self_contained=False)


def test_folium_defaults_are_left_untouched_for_other_maps():
    to_html(new_map((109.6, 21.4, 110.1, 21.7), basemap("none")), self_contained=True)
    assert folium.Map.default_js[0][1].startswith("https://")  # instance attributes only


def test_every_basemap_choice_and_its_datum():
    assert basemap("none").tiles == ()
    assert basemap("amap").datum == "gcj02"
    assert all(basemap(name).datum == "wgs84" for name in ("osm", "satellite"))
    assert "tk=abc" in basemap("tianditu", tianditu_key="abc").tiles[0][0]
    with pytest.raises(ValueError, match="needs a key"):
        basemap("tianditu")


def test_a_period_without_patrols_shows_no_effort_no_tracks_and_only_the_open_incidents(demo_client):
    sign_in(demo_client, "admin")
    today = datetime.now(LOCAL_TIME).date()
    html = demo_client.get(
        f"/maps/station?from={today - timedelta(days=400)}&to={today - timedelta(days=300)}"
    ).text
    assert {f["properties"]["style"]["fillColor"] for f in layer(html, "polygons")["features"]} == {NO_EFFORT}
    assert not [name for name in layer_names(html) if name.startswith("巡护轨迹")]
    rows = incident_rows(html)
    lookups = json_lookups(html)
    assert rows and all(lookups["statuses"][r[4]]["open"] for r in rows)  # current work, nothing settled
    assert f"事件 Incidents ({len(rows)})" in layer_names(html)


def test_incident_popups_link_to_a_page_with_the_incidents_history(demo, demo_client):
    sign_in(demo_client, "lj-officer")
    html = demo_client.get("/maps/station").text
    assert json_lookups(html)["link"] == "/incidents/"
    incident = incident_rows(html)[0][2]
    page = demo_client.get(f"/incidents/{incident}")
    assert page.status_code == 200
    assert f"#{incident}" in page.text and "处理记录 History" in page.text and "报告 Reported" in page.text
    assert demo_client.get("/incidents/999999").status_code == 404
    assert demo_client.get("/incidents/report").status_code == 200  # still the report form


def test_an_incident_page_hides_what_the_user_may_not_see(demo, demo_client):
    from patrol.models import Incident

    # Lianjiang's incidents far from the border (many in any demo season; Hepu's reserve lies
    # along the border, so few of its incidents are far from it) are not Hepu's officers' business.
    with demo.sessions() as session:
        hidden = session.scalar(
            select(Incident.id).where(
                Incident.side == "GD-LJ", Incident.referred_to.is_(None), Incident.joint_case_id.is_(None),
                Incident.border_distance_m > 2000,
            ).limit(1)
        )  # fmt: skip
    assert hidden is not None
    sign_in(demo_client, "hp-officer")
    assert demo_client.get(f"/incidents/{hidden}").status_code == 404
    sign_in(demo_client, "lj-officer")
    assert demo_client.get(f"/incidents/{hidden}").status_code == 200


def test_map_pages_and_their_libraries_are_compressed_but_api_answers_are_not(demo_client):
    sign_in(demo_client, "admin")
    page = demo_client.get("/maps/station", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip" and "MangroveMaps" in page.text
    leaflet = demo_client.get("/static/maps/vendor/leaflet/leaflet.js", headers={"Accept-Encoding": "gzip"})
    assert leaflet.headers["content-encoding"] == "gzip"
    grids = demo_client.get("/api/v1/grids", headers={"Accept-Encoding": "gzip"})
    assert grids.status_code == 200 and "content-encoding" not in grids.headers


def test_the_station_maps_form_keeps_its_scope_and_shows_the_period_as_chosen(demo_client):
    sign_in(demo_client, "admin")
    html = demo_client.get(
        "/maps/station?station=LJ-S-GQ&from=2026-09-01&to=2026-09-30&metric=hours_per_ha"
    ).text
    form = controls(html)[-1]
    assert "<input type='hidden' name='station' value='LJ-S-GQ'>" in form
    assert "name='from' value='2026-09-01'" in form and "name='to' value='2026-09-30'" in form
    assert "<option value='hours_per_ha' selected>" in form
    assert "2026-09-01 – 2026-09-30" in controls(html)[1]  # the title: the last day is the 30th


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("osm", "https://tile.openstreetmap.org"),
        ("satellite", "https://server.arcgisonline.com"),
        ("amap", "https://*.is.autonavi.com"),
        ("tianditu", "https://*.tianditu.gov.cn"),
    ],
)
def test_the_content_policy_admits_exactly_the_chosen_basemaps_tile_servers(demo, name, source):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from patrol.settings import MapSettings

    settings = demo.settings
    saved = settings.maps
    settings.maps = MapSettings(tianditu_key="test-key")
    try:
        with TestClient(create_app(settings=settings, engine=demo.engine)) as client:
            sign_in(client, "admin")
            response = client.get(f"/maps/station?basemap={name}")
    finally:
        settings.maps = saved
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    img = next(part for part in policy.split(";") if part.strip().startswith("img-src"))
    assert img.split() == ["img-src", "'self'", "data:", source]
    if name == "tianditu":
        assert "tk=test-key" in response.text and "value='tianditu'" in " ".join(controls(response.text))


def test_grid_popups_link_managers_and_officers_to_the_desk_but_not_patrol_members(demo_client):
    sign_in(demo_client, "lj-officer")
    grids = layer(demo_client.get("/maps/station").text, "polygons")["features"]
    assert grids
    for f in grids:
        code = f["properties"]["code"]
        assert (
            f"<a href='/desk?grid={code}'>本网格未结事件 Open incidents in this grid</a>"
            in f["properties"]["popup"]
        )
    sign_in(demo_client, "hp-officer")
    joint = layer(demo_client.get("/maps/joint").text, "polygons", 0)["features"]
    assert all("/desk?grid=" + f["properties"]["code"] in f["properties"]["popup"] for f in joint)
    sign_in(demo_client, "gq-member-07")
    member = layer(demo_client.get("/maps/station").text, "polygons")["features"]
    assert member and not any("/desk" in f["properties"]["popup"] for f in member)


def test_joint_case_popups_link_to_the_case_and_to_each_of_its_incidents(demo_client):
    sign_in(demo_client, "hp-officer")
    cases = layer(demo_client.get("/maps/joint").text, "cases")
    assert cases
    for _lat, _lon, _icon, popup in cases:
        case_id = re.search(
            r"Joint case <a href='/joint-cases/(\d+)' target='_blank' rel='noopener'>#\1</a>", popup
        )
        assert case_id, popup
        incidents = re.findall(r"<a href='/incidents/(\d+)' target='_blank' rel='noopener'>#\1</a>", popup)
        assert incidents, popup


def test_a_desk_link_quotes_and_escapes_the_grid_code():
    from maps.base import desk_grid_link

    html = desk_grid_link("/desk?grid=", "X'<b>&1")
    assert "href='/desk?grid=X%27%3Cb%3E%261'" in html and "<b>" not in html
    assert desk_grid_link("", "LJ-GQ-01") == ""


def test_the_default_period_and_the_same_period_applied_from_the_form_show_the_same_map(demo, demo_client):
    from patrol.settings import MapSettings

    sign_in(demo_client, "admin")
    saved = demo.settings.maps
    # Three days: the first of them begins within the demo season, so patrols of its morning count.
    demo.settings.maps = MapSettings(default_days=3)
    try:
        default = demo_client.get("/maps/station").text
        form = controls(default)[-1]
        start = re.search(r"name='from' value='([\d-]+)'", form).group(1)
        end = re.search(r"name='to' value='([\d-]+)'", form).group(1)
        applied = demo_client.get(f"/maps/station?from={start}&to={end}").text
    finally:
        demo.settings.maps = saved
    today = datetime.now(LOCAL_TIME).date()
    assert (start, end) == ((today - timedelta(days=2)).isoformat(), today.isoformat())
    assert controls(applied)[1] == controls(default)[1]  # the same period in the title, same counts
    assert [r[1] for r in layer(applied, "tracks")["rows"]] == [
        r[1] for r in layer(default, "tracks")["rows"]
    ]
    assert [r[2] for r in incident_rows(applied)] == [r[2] for r in incident_rows(default)]


def test_a_maps_period_is_whole_china_days_whatever_the_hour():
    from patrol.map_data import map_period

    # 23:30 and 00:30 China time on either side of midnight (15:30 and 16:30 UTC).
    late = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    early = datetime(2026, 3, 10, 16, 30, tzinfo=UTC)
    assert map_period(30, late) == (
        datetime(2026, 2, 8, 16, tzinfo=UTC),  # 2026-02-09 00:00 China
        datetime(2026, 3, 10, 16, tzinfo=UTC),  # the end of 2026-03-10 China
    )
    assert map_period(30, early) == (
        datetime(2026, 2, 9, 16, tzinfo=UTC),
        datetime(2026, 3, 11, 16, tzinfo=UTC),
    )
    # Only an end (the form's "to"): the days before it; only a start: to the end of today.
    end = datetime(2026, 3, 1, 16, tzinfo=UTC)  # the end of 2026-03-01 China
    assert map_period(7, late, end=end) == (datetime(2026, 2, 22, 16, tzinfo=UTC), end)
    assert map_period(7, late, start=end)[1] == datetime(2026, 3, 10, 16, tzinfo=UTC)


def test_the_joint_map_opens_on_what_is_current_open_incidents_and_recent_ones(demo, demo_client):
    from patrol.incidents import OPEN
    from patrol.models import Incident
    from patrol.settings import MapSettings

    sign_in(demo_client, "admin")
    saved = demo.settings.maps
    demo.settings.maps = MapSettings(default_days=2)
    try:
        html = demo_client.get("/maps/joint").text
    finally:
        demo.settings.maps = saved
    today = datetime.now(LOCAL_TIME).date()
    start = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=LOCAL_TIME)
    with demo.sessions() as session:
        rows = session.execute(select(Incident.id, Incident.status, Incident.observed_at)).all()
    aware = [(i, s, t if t.tzinfo else t.replace(tzinfo=UTC)) for i, s, t in rows]
    expected = {i for i, s, t in aware if s in OPEN or t >= start}
    assert {i for i, s, t in aware if s not in OPEN and t < start}, "the demo has older settled incidents"
    assert {r[2] for r in incident_rows(html)} == expected
    assert f"{(today - timedelta(days=1)).isoformat()} – {today.isoformat()}" in controls(html)[1]
    legend = controls(html)[0]
    assert "Incident status (fill)" in legend and "Incident side (ring)" in legend


def test_maps_show_names_not_codes_for_sides_teams_and_transport(demo_client):
    sign_in(demo_client, "admin")
    station = demo_client.get("/maps/station").text
    tracks = layer(station, "tracks")
    assert tracks["rows"] and {r[5] for r in tracks["rows"]} <= {"步行 On foot", "乘船 By boat"}
    lookups = json_lookups(station)
    assert lookups["gridNames"] and all(not name.startswith("LJ-") for name in lookups["gridNames"].values())
    legend = " ".join(controls(station))
    assert "LJ-T-" not in legend and "GD-LJ" not in legend and "patrol_member" not in legend
    joint = demo_client.get("/maps/joint").text
    for *_, popup in layer(joint, "cases"):
        sides = re.search(r"参与方 Sides</th><td>(.*?)</td>", popup).group(1)
        assert "GD-LJ" not in sides and "GX-HP" not in sides and "广东" in sides, sides
    assert "GD-LJ" not in " ".join(controls(joint))
