"""The station map, rendered from the demo season: grids coloured by effort with the unpatrolled
ones marked, tracks simplified and coloured by team (only those the user may see), incidents
clustered and as a heat map, a legend, and overlays moved to GCJ-02 for a GCJ-02 basemap."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select
from utils.mapdata import controls, incident_rows, layer, layer_names

from geodata.datum import wgs84_to_gcj02
from maps.assets import to_html
from maps.base import basemap
from maps.station import EFFORT_COLORS, METRICS, NO_EFFORT, UNPATROLLED, effort_classes, station_map
from patrol.accounts import Principal
from patrol.effort import unpatrolled_grids
from patrol.errors import InvalidRequest, NotFound
from patrol.map_data import StationMapQuery, station_map_data
from patrol.models import Grid, Incident, Patrol, PatrolVisit, User

NOW = datetime.now(UTC)
SEASON = StationMapQuery(start=NOW - timedelta(days=30), end=NOW)


def principal(session, username: str) -> Principal:
    return Principal.of(session.scalar(select(User).where(User.username == username)))


def render(session, settings, username="admin", query=SEASON, base="none", **options):
    data = station_map_data(session, principal(session, username), query, settings)
    return data, to_html(station_map(data, basemap(base), **options), self_contained=False)


def test_every_grid_of_the_station_is_drawn_coloured_by_effort_with_a_popup(demo):
    with demo.sessions() as session:
        data, html = render(
            session, demo.settings, query=StationMapQuery(station="LJ-S-GQ", **vars_of(SEASON))
        )
        station_grids = set(session.scalars(select(Grid.code).where(Grid.station == "LJ-S-GQ")))
    grids = layer(html, "polygons")["features"]
    assert {f["properties"]["code"] for f in grids} == station_grids
    by_code = data.grids.set_index("code")
    for feature in grids:
        props = feature["properties"]
        km = by_code.loc[props["code"], "km"]
        assert (props["style"]["fillColor"] == NO_EFFORT) == (km == 0)
        assert props["style"]["fillColor"] in EFFORT_COLORS + [NO_EFFORT]
        for text in (props["code"], "面积 Area", "未结事件 Open incidents", "Last patrolled"):
            assert text in props["popup"]
    labels = layer(html, "labels")
    assert sorted(label[2] for label in labels) == sorted(station_grids)
    # More effort never gets a lighter colour.
    order = {c: i for i, c in enumerate([NO_EFFORT] + EFFORT_COLORS)}
    ranked = sorted(grids, key=lambda f: by_code.loc[f["properties"]["code"], "patrols_per_week"])
    shades = [order[f["properties"]["style"]["fillColor"]] for f in ranked]
    assert shades == sorted(shades)


def vars_of(q: StationMapQuery) -> dict:
    return {"start": q.start, "end": q.end}


def test_grids_not_patrolled_for_n_days_are_outlined_and_explained_in_the_legend(demo):
    with demo.sessions() as session:
        stale = {r["code"] for r in unpatrolled_grids(session, days=3, as_of=NOW)}
        data, html = render(
            session, demo.settings, query=StationMapQuery(unpatrolled_days=3, **vars_of(SEASON))
        )
    assert stale, "the demo leaves some grids unvisited for three days"
    for feature in layer(html, "polygons")["features"]:
        style = feature["properties"]["style"]
        marked = style["color"] == UNPATROLLED and style.get("dashArray")
        assert bool(marked) == (feature["properties"]["code"] in stale)
    assert "≥ 3 天未巡护 not patrolled for 3+ days" in " ".join(controls(html))


def test_tracks_are_simplified_rounded_to_a_metre_and_coloured_by_team(demo):
    with demo.sessions() as session:
        data, html = render(session, demo.settings)
        expected = set(
            session.scalars(
                select(PatrolVisit.patrol_id).where(
                    PatrolVisit.exited_at >= SEASON.start, PatrolVisit.entered_at < SEASON.end
                )
            )
        )
        fixes = dict(session.execute(select(Patrol.id, Patrol.fix_count)).all())
    tracks = layer(html, "tracks")
    assert {row[1] for row in tracks["rows"]} == expected
    colours = {t["code"]: t["color"] for t in tracks["teams"]}
    assert len(set(colours.values())) == len(colours)  # one colour per team
    for row in tracks["rows"]:
        vertices = sum(len(part) // 2 for part in row[6])
        assert 2 <= vertices < fixes[row[1]] / 3  # simplified for an overview, not raw fixes
        assert all(isinstance(v, int) for part in row[6] for v in part)  # 1e-5° integers
        assert row[3] > 0 and row[2].startswith("20")
    assert f"巡护轨迹 Patrol tracks ({len(expected)})" in layer_names(html)


def test_incidents_are_clustered_and_heat_mapped_with_status_colour_and_category_icon(demo):
    with demo.sessions() as session:
        data, html = render(session, demo.settings)
        n = session.scalar(
            select(func.count(Incident.id)).where(
                Incident.grid_id.is_not(None),
                Incident.observed_at >= SEASON.start,
                Incident.observed_at < NOW,
            )
        )
    rows = incident_rows(html)
    assert len(rows) == len(data.incidents) == n > 0
    assert "L.markerClusterGroup" in html and "MangroveMaps.clusterIcon" in html
    assert "MangroveMaps.incidentMarker(" in html
    names = layer_names(html)
    assert f"事件 Incidents ({n})" in names and "事件热力图 Incident heat map" in names
    # Row: [lat, lon, id, category, status, overdue, observed, due, grid, side, flags]
    ids = {r[2] for r in rows}
    assert ids == set(data.incidents.id)
    legend = " ".join(controls(html))
    for text in (
        "巡护强度 Effort",
        "事件状态 Incident status",
        "事件类别 Incident category",
        "Overdue",
        "Tracks by team",
    ):
        assert text in legend
    assert "L.control.scale()" in html and "L.control.layers(" in html


def test_a_patrol_member_sees_grid_effort_but_only_the_tracks_of_their_own_team(demo):
    with demo.sessions() as session:
        data, html = render(session, demo.settings, username="gq-member-07")
        teams = dict(session.execute(select(Patrol.id, Patrol.team)).all())
    rows = layer(html, "tracks")["rows"]
    assert rows and {teams[r[1]] for r in rows} == {"LJ-T-GQ"}
    assert len(layer(html, "polygons")["features"]) == len(data.grids) > 20  # effort of the whole side


def test_a_gcj02_basemap_moves_every_overlay_onto_its_offset(demo):
    with demo.sessions() as session:
        _, plain = render(session, demo.settings, base="none")
        _, shifted = render(session, demo.settings, base="amap")
    a = shapely.get_coordinates(shapely.geometry.shape(layer(plain, "polygons")["features"][0]["geometry"]))
    b = shapely.get_coordinates(shapely.geometry.shape(layer(shifted, "polygons")["features"][0]["geometry"]))
    lon, lat = wgs84_to_gcj02(a[:, 0], a[:, 1])
    assert np.allclose(b, np.column_stack([lon, lat]), atol=2e-5)
    metres = np.hypot((b[:, 0] - a[:, 0]) * 104_000, (b[:, 1] - a[:, 1]) * 111_000)
    assert (metres > 100).all() and (metres < 900).all()
    assert incident_rows(plain)[0][:2] != incident_rows(shifted)[0][:2]
    assert "webrd0{s}.is.autonavi.com" in shifted and "L.tileLayer" not in plain


@pytest.mark.parametrize(
    ("query", "error", "words"),
    [
        (StationMapQuery(station="LJ-S-XX"), NotFound, "no station 'LJ-S-XX'"),
        (StationMapQuery(town="ZZ"), NotFound, "no town 'ZZ'"),
        (StationMapQuery(grids=("LJ-GQ-01", "LJ-NOPE")), NotFound, "no grid LJ-NOPE"),
        (StationMapQuery(station="LJ-S-GQ", town="GQ"), InvalidRequest, "not station and town"),
        (StationMapQuery(start=NOW, end=NOW - timedelta(days=1)), InvalidRequest, "empty or reversed"),
        (StationMapQuery(start=NOW, end=NOW), InvalidRequest, "empty or reversed"),
    ],
)
def test_an_unknown_scope_or_an_empty_period_is_refused_by_name(demo, query, error, words):
    with demo.sessions() as session, pytest.raises(error, match=words):
        station_map_data(session, principal(session, "admin"), query, demo.settings)


def test_grid_shapes_survive_the_round_trip_to_the_page(demo):
    with demo.sessions() as session:
        data, html = render(session, demo.settings)
    drawn = {
        f["properties"]["code"]: shapely.geometry.shape(f["geometry"])
        for f in layer(html, "polygons")["features"]
    }
    for code, geom in zip(data.grids.code, data.grids.geometry):
        assert shapely.hausdorff_distance(drawn[code], geom) <= 0.75e-5  # rounded to 1e-5°: under a metre


def test_a_town_or_a_list_of_grids_is_mapped_alone(demo):
    with demo.sessions() as session:
        town_grids = set(session.scalars(select(Grid.code).where(Grid.town == "YZ")))
        _, by_town = render(session, demo.settings, query=StationMapQuery(town="YZ", **vars_of(SEASON)))
        _, by_grid = render(session, demo.settings, query=StationMapQuery(grids=("LJ-GQ-01", "HP-SK-02")))
    assert {f["properties"]["code"] for f in layer(by_town, "polygons")["features"]} == town_grids
    assert {f["properties"]["code"] for f in layer(by_grid, "polygons")["features"]} == {
        "LJ-GQ-01",
        "HP-SK-02",
    }
    assert {r[8] for r in incident_rows(by_town)} <= town_grids


def test_a_map_that_would_hold_too_many_incidents_is_refused_with_advice(demo):
    from patrol.settings import MapSettings

    saved = demo.settings.maps
    demo.settings.maps = MapSettings(max_incidents=1)
    try:
        with (
            demo.sessions() as session,
            pytest.raises(InvalidRequest, match="more than 1 incidents match; choose a shorter"),
        ):
            station_map_data(session, principal(session, "admin"), SEASON, demo.settings)
    finally:
        demo.settings.maps = saved


def test_open_incidents_reported_before_the_period_are_on_the_map_settled_ones_are_not(demo):
    from patrol.incidents import OPEN

    start = NOW - timedelta(days=2)
    with demo.sessions() as session:
        data, html = render(session, demo.settings, query=StationMapQuery(start=start, end=NOW))
        earlier = session.execute(
            select(Incident.id, Incident.status).where(
                Incident.grid_id.is_not(None), Incident.observed_at < start.replace(tzinfo=None)
            )
        ).all()
    open_before = {i for i, status in earlier if status in OPEN}
    settled_before = {i for i, status in earlier if status not in OPEN}
    assert open_before and settled_before, "the demo has both before the last two days"
    shown = {r[2] for r in incident_rows(html)}
    assert open_before <= shown and not settled_before & shown
    assert shown == set(data.incidents.id)


def test_grid_labels_are_on_a_point_inside_their_grid_largest_grid_first(demo):
    with demo.sessions() as session:
        data, html = render(session, demo.settings)
    rows = layer(html, "labels")
    by_code = dict(zip(data.grids.code, data.grids.geometry))
    assert len(rows) == len(by_code)
    for lat, lon, code in rows:
        assert by_code[code].buffer(1e-5).contains(shapely.Point(lon, lat)), code
    areas = [by_code[code].area for _, _, code in rows]
    assert areas == sorted(areas, reverse=True)


def effort_legend(html: str) -> str:
    legend = next(c for c in controls(html) if "巡护强度 Effort" in c)
    return legend.split("<h2>巡护轨迹")[0]


@pytest.mark.parametrize("metric", list(METRICS))
def test_effort_classes_are_fixed_round_numbers_in_words_the_same_for_any_period_or_place(demo, metric):
    with demo.sessions() as session:
        month, html_month = render(session, demo.settings, metric=metric)
        week, html_week = render(
            session,
            demo.settings,
            query=StationMapQuery(town="YZ", start=NOW - timedelta(days=7), end=NOW),
            metric=metric,
        )
    assert effort_legend(html_month) == effort_legend(html_week)  # the same classes, whatever the view
    words = effort_legend(html_month)
    for text in METRICS[metric].classes:
        assert text in words
    if metric == "patrols":
        assert "少于每两周1次 less than 1 patrol a fortnight" in words and "每周1–3次 1–3 a week" in words
    # Each grid's colour is its class by the fixed breaks, of its per-week value.
    for data, html in ((month, html_month), (week, html_week)):
        by_code = data.grids.set_index("code")[METRICS[metric].column]
        for f in layer(html, "polygons")["features"]:
            value = by_code[f["properties"]["code"]]
            cls = effort_classes([value], METRICS[metric])[0]
            assert f["properties"]["style"]["fillColor"] == (NO_EFFORT if cls < 0 else EFFORT_COLORS[cls])


def test_effort_class_boundaries():
    patrols = METRICS["patrols"]
    assert effort_classes([0, 0.2, 0.5, 0.99, 1, 2.9, 3, 6.9, 7, 30], patrols).tolist() == [
        -1, 0, 1, 1, 2, 2, 3, 3, 4, 4
    ]  # fmt: skip


def frame_of(html: str) -> list:
    import json
    import re

    return json.loads(re.search(r"MangroveMaps\.frame\(\w+, (\[\[.*?\]\])\);", html).group(1))


def test_a_patrol_members_map_opens_on_their_teams_grids_not_the_whole_county(demo):
    with demo.sessions() as session:
        data, html = render(session, demo.settings, username="gq-member-07")
        _, admin_html = render(session, demo.settings, username="admin")
    own = data.grids[data.grids.team == "LJ-T-GQ"]
    assert 0 < len(own) < len(data.grids)  # the side's effort is there, the frame is their own
    w, s, e, n = shapely.total_bounds(own.geometry.to_numpy())
    assert np.allclose(frame_of(html), [[s, w], [n, e]], atol=1e-5)
    assert frame_of(admin_html) != frame_of(html)


def test_managers_get_the_encounter_rate_and_hot_spot_layers_members_do_not(demo):
    with demo.sessions() as session:
        data, html = render(session, demo.settings, username="gq-manager",
                            query=StationMapQuery(station="LJ-S-GQ", **vars_of(SEASON)))  # fmt: skip
        member_data, member_html = render(session, demo.settings, username="gq-member-07")
    assert member_data.rates is None and member_data.hotspots is None
    assert not [n for n in layer_names(member_html) if n.startswith(("遇见率", "热点"))]

    names = layer_names(html)
    assert "遇见率 Encounter rate (per 10 km)" in names
    rates = layer(html, "polygons", 1)["features"]
    by_grid = data.rates.set_index("grid")
    assert {f["properties"]["code"] for f in rates} == set(data.grids.code)
    for feature in rates:
        r = by_grid.loc[feature["properties"]["code"]]
        if r["too_little_effort"]:
            assert "too little effort" in feature["properties"]["tooltip"]
        else:
            assert f"{r['per_10km']:.2f} / 10 km" in feature["properties"]["tooltip"]
    legend = controls(html)[0] + "".join(controls(html))
    assert "遇见率 Incidents per 10 km" in legend
    # Hot spots are drawn exactly when the analysis finds them, each with its corrected p-value.
    spots = data.hotspots
    if len(spots):
        assert f"热点 Hot spots ({len(spots)})" in names and "Gi*" in legend
        cells = layer(html, "polygons", 2)["features"]
        assert len(cells) == len(spots) and all("p (corrected)" in c["properties"]["tooltip"] for c in cells)
    else:
        assert not [n for n in names if n.startswith("热点")]
