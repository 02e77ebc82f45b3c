"""What the shipped reference geodata promises (geodata/reference/data, authored by build.py).

The geometry is approximate, but these properties hold exactly: the counts and codes, clean
geometry, no overlaps, honest areas, each side of the provincial border keeping to its own side,
and every grid pointing at a town, team and station that exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import STRtree
from shapely.ops import split

from geodata import reference
from geodata.crs import METRIC, WGS84
from geodata.reference import build
from geodata.region import LIANJIANG_BBOX, REGION_BBOX

DATA = Path(reference.__file__).parent / "data"

# domain.md, "Provincial border", coast (south) to the tri-point with Bobai county (north).
BORDER_POINTS = [
    (109.7813, 21.4595),
    (109.7846, 21.4881),
    (109.7699, 21.5102),
    (109.7686, 21.5338),
    (109.7550, 21.5529),
    (109.7516, 21.5759),
    (109.7438, 21.5977),
    (109.7419, 21.6204),
    (109.7538, 21.6434),
    (109.7624, 21.6669),
    (109.7621, 21.6706),
]
# domain.md: Shankou reserve extent 109°37′E–109°47′E, 21°28′22″N–21°37′N.
SHANKOU_EXTENT = (109 + 37 / 60, 21 + 28 / 60 + 22 / 3600, 109 + 47 / 60, 21 + 37 / 60)
# The county bbox is drawn round the land; mangrove grids reach out over the tidal flats, so a
# grid may stick out of it by this much (≈1 km).
SEA_FLATS_MARGIN_DEG = 0.01
SEAT_RADIUS_M = 15_000
LIANJIANG_CODE = re.compile(r"^LJ-(GQ|YZ|CB|AP|LD)-\d\d$")
HEPU_CODE = re.compile(r"^HP-SK-\d\d$")


def to_metric(geoms) -> np.ndarray:
    return gpd.GeoSeries(list(geoms), crs=WGS84).to_crs(METRIC).values


@pytest.fixture(scope="module")
def grids():
    return reference.load_grids()


@pytest.fixture(scope="module")
def lianjiang(grids):
    return grids[grids["side"] == "GD-LJ"]


@pytest.fixture(scope="module")
def hepu(grids):
    return grids[grids["side"] == "GX-HP"]


@pytest.fixture(scope="module")
def places():
    return reference.load_places()


@pytest.fixture(scope="module")
def sides():
    """Guangdong (east) and Guangxi (west) halves of the region, cut along the border line
    extended due south to the sea and due north beyond the region."""
    minx, miny, maxx, maxy = REGION_BBOX
    (south_lon, _), (north_lon, _) = BORDER_POINTS[0], BORDER_POINTS[-1]
    cut = shapely.LineString([(south_lon, miny - 1), *BORDER_POINTS, (north_lon, maxy + 1)])
    halves = list(split(shapely.box(minx, miny, maxx, maxy), cut).geoms)
    assert len(halves) == 2
    east = next(h for h in halves if h.contains(shapely.Point(110.2, 21.5)))
    west = next(h for h in halves if h is not east)
    return {"GD-LJ": east, "GX-HP": west}


# --- Counts and codes ----------------------------------------------------------------------------


def test_lianjiang_has_exactly_26_grids_with_unique_town_codes(lianjiang):
    assert len(lianjiang) == 26
    assert lianjiang["code"].is_unique
    assert all(LIANJIANG_CODE.match(code) for code in lianjiang["code"])
    assert (lianjiang["code"].str[3:5] == lianjiang["town"]).all()
    assert set(lianjiang["kind"]) == {"grid"}


def test_grids_per_town_follow_the_project_split(lianjiang):
    assert lianjiang.groupby("town").size().to_dict() == {"GQ": 8, "YZ": 7, "CB": 4, "AP": 4, "LD": 3}


def test_hepu_has_a_handful_of_shankou_reserve_zones(hepu):
    assert 5 <= len(hepu) <= 6
    assert hepu["code"].is_unique
    assert all(HEPU_CODE.match(code) for code in hepu["code"])
    assert set(hepu["kind"]) == {"zone"}
    assert set(hepu["town"]) <= {"SK", "ST"}
    assert set(hepu["team"]) == {"HP-T-SK"} and set(hepu["station"]) == {"HP-S-SK"}


def test_grids_come_sorted_by_code_with_the_documented_columns(grids):
    assert list(grids.columns) == [*reference.GRID_COLUMNS, "geometry"]
    assert grids.crs.to_epsg() == 4326
    assert list(grids["code"]) == sorted(grids["code"])


# --- Geometry ------------------------------------------------------------------------------------


def test_every_geometry_is_a_valid_nonempty_polygon(grids):
    geoms = grids.geometry.values
    assert set(grids.geom_type) <= {"Polygon", "MultiPolygon"}
    assert not shapely.is_empty(geoms).any()
    assert shapely.is_valid(geoms).all(), [shapely.is_valid_reason(g) for g in geoms]


def test_exterior_rings_are_counter_clockwise(grids):
    parts = shapely.get_parts(grids.geometry.values)
    assert shapely.is_ccw(shapely.get_exterior_ring(parts)).all()


@pytest.mark.parametrize("name", ["lianjiang_grids.geojson", "hepu_zones.geojson", "border.geojson"])
def test_files_store_lon_lat_with_six_decimals(name):
    collection = json.loads((DATA / name).read_text(encoding="utf-8"))
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in collection["features"]])
    coords = shapely.get_coordinates(geoms)
    np.testing.assert_array_equal(coords, np.round(coords, 6))
    minx, miny, maxx, maxy = REGION_BBOX
    assert ((coords[:, 0] > minx) & (coords[:, 0] < maxx)).all()  # lon first, not lat
    assert ((coords[:, 1] > miny) & (coords[:, 1] < maxy)).all()


def test_no_two_grids_or_zones_overlap(grids):
    metric = to_metric(grids.geometry.values)
    left, right = STRtree(metric).query(metric, predicate="intersects")
    pairs = left < right  # each pair once, and not a grid with itself
    overlap = shapely.area(shapely.intersection(metric[left[pairs]], metric[right[pairs]]))
    offenders = [
        (grids["code"].iat[a], grids["code"].iat[b], area)
        for a, b, area in zip(left[pairs], right[pairs], overlap)
        if area >= 0.01
    ]
    assert offenders == []  # touching along a shared edge is fine


def test_stored_area_matches_the_area_measured_in_utm(grids):
    measured = shapely.area(to_metric(grids.geometry.values)) / 10_000
    np.testing.assert_allclose(grids["area_ha"], measured, atol=0.01)


@pytest.mark.parametrize(
    ("town", "low", "high"),
    [
        ("GQ", 2_400, 2_900),  # ≈40,000 mu, the largest continuous stand in China
        ("YZ", 1_800, 2_200),  # ≈30,000 mu
        ("CB", 0, 1_500),
        ("AP", 0, 1_500),
        ("LD", 0, 1_500),
    ],
)
def test_town_totals_are_plausible(lianjiang, town, low, high):
    total = lianjiang.loc[lianjiang["town"] == town, "area_ha"].sum()
    assert low < total < high


def test_each_grid_is_a_patrol_unit_sized_area(grids):
    assert grids["area_ha"].between(10, 500).all()  # tens to a few hundred hectares


def test_hepu_zones_add_up_to_about_the_reserves_mangrove_area(hepu):
    assert 550 < hepu["area_ha"].sum() < 900  # the reserve has about 730 ha of mangrove


# --- Where things are ----------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["GD-LJ", "GX-HP"])
def test_each_side_keeps_to_its_side_of_the_border(grids, sides, side):
    mine = grids[grids["side"] == side]
    outside = mine.loc[~shapely.within(mine.geometry.values, sides[side]), "code"]
    assert list(outside) == []


def test_lianjiang_grids_lie_in_the_county_bbox_plus_sea_flats(lianjiang):
    minx, miny, maxx, maxy = LIANJIANG_BBOX
    m = SEA_FLATS_MARGIN_DEG
    area = shapely.box(minx - m, miny - m, maxx + m, maxy + m)
    assert shapely.within(lianjiang.geometry.values, area).all()


def test_hepu_zones_lie_in_the_shankou_reserve(hepu):
    assert shapely.within(hepu.geometry.values, shapely.box(*SHANKOU_EXTENT)).all()


def test_every_grid_lies_within_15_km_of_its_town_seat(grids, places):
    seats = {town["code"]: town["seat"] for town in places["towns"]}
    seat_points = to_metric(shapely.points([seats[t] for t in grids["town"]]))
    farthest = shapely.hausdorff_distance(seat_points, to_metric(grids.geometry.values))
    far = grids.loc[farthest > SEAT_RADIUS_M, "code"]
    assert list(far) == []


# --- References ----------------------------------------------------------------------------------


def test_grids_refer_to_towns_teams_and_stations_of_their_side(grids, places):
    towns = {t["code"]: t for t in places["towns"]}
    teams = {t["code"]: t for t in places["teams"]}
    stations = {s["code"]: s for s in places["stations"]}
    for row in grids.itertuples():
        assert towns[row.town]["side"] == row.side, row.code
        assert teams[row.team]["side"] == row.side, row.code
        assert stations[row.station]["side"] == row.side, row.code
        assert teams[row.team]["station"] == row.station, row.code


def test_lianjiang_grids_belong_to_their_towns_vanguard_team(lianjiang):
    assert (lianjiang["team"] == "LJ-T-" + lianjiang["town"]).all()
    assert (lianjiang["station"] == "LJ-S-" + lianjiang["town"]).all()


def test_places_list_sides_towns_stations_and_teams(places, sides):
    assert [s["code"] for s in places["sides"]] == ["GD-LJ", "GX-HP"]
    towns = {t["code"]: t for t in places["towns"]}
    assert set(towns) == {"GQ", "YZ", "CB", "AP", "LD", "SK", "ST"}
    assert {t["code"] for t in places["teams"]} == {
        "LJ-T-GQ",
        "LJ-T-YZ",
        "LJ-T-CB",
        "LJ-T-AP",
        "LJ-T-LD",
        "HP-T-SK",
    }
    stations = {s["code"]: s for s in places["stations"]}
    assert stations["LJ-S-GQ"]["name_zh"] == "高桥管理站"
    assert {"HP-S-SK", "LJ-S-YZ", "LJ-S-CB", "LJ-S-AP", "LJ-S-LD"} <= set(stations)
    for station in stations.values():
        assert towns[station["town"]]["side"] == station["side"]
        assert station["note"]  # says where the station and its position come from
        assert sides[station["side"]].contains(shapely.Point(station["location"]))
    for town in towns.values():
        assert sides[town["side"]].contains(shapely.Point(town["seat"]))
    for team in places["teams"]:
        assert stations[team["station"]]["side"] == team["side"]


def test_border_runs_through_the_eleven_points_in_order():
    border = reference.load_border()
    assert len(border) == 1 and border.crs.to_epsg() == 4326
    row = border.iloc[0]
    assert row["code"] == "GD-GX-BORDER"
    assert row["name_zh"] == "粤桂省界（廉江—合浦）"
    assert bool(row["approximate"]) is True
    assert row.geometry.geom_type == "LineString"
    np.testing.assert_allclose(shapely.get_coordinates(row.geometry), BORDER_POINTS)


# --- Honesty and loading -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["lianjiang_grids.geojson", "hepu_zones.geojson", "border.geojson", "places.json"]
)
def test_every_file_says_it_is_approximate_and_replaceable(name):
    metadata = json.loads((DATA / name).read_text(encoding="utf-8"))["metadata"]
    assert metadata["approximate"] is True
    assert metadata["replaceable_by"] == "mangrove grids import"
    assert "domain" in metadata["source"]


def test_module_metadata_says_approximate():
    assert reference.METADATA["approximate"] is True
    assert reference.METADATA["replaceable_by"]


def test_side_filter(grids):
    assert len(reference.load_grids("GD-LJ")) == 26
    assert set(reference.load_grids("GX-HP")["side"]) == {"GX-HP"}
    assert len(reference.load_grids("GD-LJ")) + len(reference.load_grids("GX-HP")) == len(grids)
    with pytest.raises(ValueError, match="side"):
        reference.load_grids("GD-ZJ")


def test_loaders_hand_out_copies():
    grids = reference.load_grids()
    grids.loc[0, "code"] = "changed"
    places = reference.load_places()
    places["towns"].clear()
    assert reference.load_grids().loc[0, "code"] != "changed"
    assert reference.load_places()["towns"]


def test_shipped_files_are_exactly_what_the_generator_writes(tmp_path):
    written = build.build(tmp_path)
    assert set(written) == {p.name for p in DATA.iterdir() if p.is_file()}
    for name, path in written.items():
        assert path.read_bytes() == (DATA / name).read_bytes(), f"{name}: rerun the generator"
