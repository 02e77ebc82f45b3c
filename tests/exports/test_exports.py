"""Exports over HTTP and the command line: every format read back with GDAL (pyogrio; zips through
/vsizip/) holds the same features and attributes as the JSON API for the same filters and user;
members see only what they may; GCJ-02 KML is shifted exactly as geodata.datum shifts; Chinese text
survives a GBK Shapefile; GPX tracks carry the fixes' times; too large an export and bad input are
refused with 422 naming the parameter."""

import io
import math
import zipfile

import numpy as np
import pandas as pd
import pyogrio
import pytest

from api.cli import main as cli
from geodata.datum import wgs84_to_gcj02
from maps.base import STATUS_COLORS
from patrol import csvsafe
from patrol.exports import xml
from patrol.exports.formats import SHORT_NAMES
from patrol.exports.layers import SCHEMAS
from patrol.models import Patrol
from patrol.patrols import patrol_fixes

LONG_NAMES = {short: full for full, short in SHORT_NAMES.items()}
KML_INCIDENTS = "事件 Incidents"


def download(client, headers, fmt, tmp_path, **params):
    response = client.get(f"/api/v1/exports/{fmt}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    name = response.headers["content-disposition"].split('filename="')[1].rstrip('"')
    path = tmp_path / name
    path.write_bytes(response.content)
    return path, response


def api_incidents(client, headers, **params) -> dict[int, dict]:
    response = client.get("/api/v1/incidents", params={"limit": 10_000, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return {f["id"]: f["properties"] for f in response.json()["features"]}


def plain(value):
    """A cell as read back, comparable across formats: None for empty, numbers as floats."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    text = str(value)
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def assert_same_rows(read: pd.DataFrame, expected: dict[int, dict], columns, *, spreadsheet=False):
    assert sorted(int(float(i)) for i in read["id"]) == sorted(expected)
    for _, row in read.iterrows():
        want = expected[int(float(row["id"]))]
        for column in columns:
            value = want[column]
            if spreadsheet:
                value = csvsafe.cell(value)
            # KML leaves out empty values: a column none of its placemarks has is not read back.
            got, value = plain(row.get(column)), plain(value)
            if isinstance(value, float):
                assert got == pytest.approx(value, abs=1e-6), (column, got, value)
            else:
                assert got == value, (column, got, value)


# --- every format holds what the JSON API lists ---------------------------------------------------------


READERS = {
    "gpkg": lambda path: pyogrio.read_dataframe(path, layer="incidents"),
    "shp": lambda path: pyogrio.read_dataframe(f"/vsizip/{path}/mangrove_incidents.shp").rename(
        columns=LONG_NAMES
    ),
    "kml": lambda path: pyogrio.read_dataframe(path, layer=KML_INCIDENTS),
    "kmz": lambda path: pyogrio.read_dataframe(f"/vsizip/{path}/doc.kml", layer=KML_INCIDENTS),
    "csv": lambda path: pyogrio.read_dataframe(path),
    "xlsx": lambda path: pyogrio.read_dataframe(path, layer="incidents"),
}


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_every_format_holds_the_incidents_and_attributes_the_json_api_lists(scene, tmp_path, fmt):
    headers = scene.auth("officer-lj")
    filters = {"side": "GD-LJ"} if fmt != "csv" else {}
    expected = api_incidents(scene.client, headers, **filters)
    assert len(expected) >= 2
    path, _ = download(scene.client, headers, fmt, tmp_path, layers="incidents", **filters)
    read = READERS[fmt](path)
    columns = [c for c in SCHEMAS["incidents"] if c != "description" or fmt not in ("kml", "kmz")]
    assert_same_rows(read, expected, columns, spreadsheet=fmt in ("csv", "xlsx"))
    if "geometry" in read:
        lon = [expected[int(float(i))]["lon"] for i in read["id"]]
        assert np.allclose(read.geometry.x, lon, atol=1e-7)


def test_the_gpx_holds_the_incidents_as_waypoints_with_their_observation_time(scene, tmp_path):
    headers = scene.auth("admin")
    expected = api_incidents(scene.client, headers)
    path, _ = download(scene.client, headers, "gpx", tmp_path, layers="incidents")
    waypoints = pyogrio.read_dataframe(path, layer="waypoints")
    ids = [int(name.rsplit("#", 1)[1]) for name in waypoints["name"]]
    assert sorted(ids) == sorted(expected)
    for i, time in zip(ids, waypoints["time"]):
        assert pd.Timestamp(time) == pd.Timestamp(expected[i]["observed_at"])


def test_the_geopackage_holds_every_layer_as_its_list_shows_it(scene, tmp_path):
    headers = scene.auth("officer-lj")
    path, response = download(scene.client, headers, "gpkg", tmp_path)
    assert response.headers["content-type"] == "application/geopackage+sqlite3"
    assert {name for name, _ in pyogrio.list_layers(path)} == {
        "grids", "effort", "patrols", "incidents", "joint_cases",
    }  # fmt: skip
    patrols = scene.client.get("/api/v1/patrols", headers=headers).json()["features"]
    read = pyogrio.read_dataframe(path, layer="patrols")
    assert sorted(read["id"]) == sorted(f["id"] for f in patrols)
    assert (read.geometry.geom_type == "MultiLineString").all()
    effort = scene.client.get("/api/v1/effort", headers=headers).json()["grids"]
    read = pyogrio.read_dataframe(path, layer="effort").set_index("code")
    assert sorted(read.index) == sorted(g["code"] for g in effort)
    for grid in effort:
        assert read.loc[grid["code"], "patrols"] == grid["patrols"]
        assert read.loc[grid["code"], "km"] == pytest.approx(grid["km"])
    cases = scene.client.get("/api/v1/joint-cases", headers=headers).json()["joint_cases"]
    read = pyogrio.read_dataframe(path, layer="joint_cases")
    assert list(read["id"]) == [c["id"] for c in cases] and list(read["title"]) == [c["title"] for c in cases]
    grids = pyogrio.read_dataframe(path, layer="grids")
    assert len(grids) == len(scene.client.get("/api/v1/grids", headers=headers).json()["features"])


def test_filters_apply_to_every_layer(scene, tmp_path):
    month, ids = scene.month, scene.ids
    headers = scene.auth("admin")
    path, _ = download(scene.client, headers, "gpkg", tmp_path, grid="LJ-GQ-03", datetime=month)
    assert list(pyogrio.read_dataframe(path, layer="incidents")["id"]) == [ids["gq"]]
    assert list(pyogrio.read_dataframe(path, layer="grids")["code"]) == ["LJ-GQ-03"]
    patrols = scene.client.get(
        "/api/v1/patrols", params={"grid": "LJ-GQ-03", "datetime": month}, headers=headers
    )
    read = pyogrio.read_dataframe(path, layer="patrols")
    assert sorted(read["id"]) == sorted(f["id"] for f in patrols.json()["features"]) and len(read) == 2


# --- who sees what ------------------------------------------------------------------------------------


def test_a_member_exports_only_the_incidents_they_may_see_and_no_joint_cases(scene, tmp_path):
    headers = scene.auth("member-hp")
    path, _ = download(scene.client, headers, "gpkg", tmp_path)
    assert "joint_cases" not in {name for name, _ in pyogrio.list_layers(path)}
    read = pyogrio.read_dataframe(path, layer="incidents")
    visible = api_incidents(scene.client, headers)
    assert sorted(read["id"]) == sorted(visible)
    assert set(read["reporter"]) == {"member-hp"}  # not member's Lianjiang reports
    assert len(pyogrio.read_dataframe(path, layer="patrols")) == 0  # member's walks are another team's
    response = scene.client.get("/api/v1/exports/gpkg", params={"layers": "joint_cases"}, headers=headers)
    assert response.status_code == 403


def test_an_export_needs_a_signed_in_user(scene):
    assert scene.client.get("/api/v1/exports/gpkg").status_code == 401


# --- KML, GCJ-02 and styles -----------------------------------------------------------------------------


def test_the_kml_is_wgs84_by_default_and_gcj02_on_request_and_says_which(scene, tmp_path):
    headers = scene.auth("admin")
    expected = api_incidents(scene.client, headers)
    wgs, response = download(scene.client, headers, "kml", tmp_path, layers="incidents")
    assert response.headers["content-type"].startswith("application/vnd.google-earth.kml+xml")
    gcj, _ = download(scene.client, headers, "kml", tmp_path, layers="incidents", datum="gcj02")
    assert "gcj02" in gcj.name
    for path, shift in ((wgs, lambda x, y: (x, y)), (gcj, wgs84_to_gcj02)):
        read = pyogrio.read_dataframe(path, layer=KML_INCIDENTS)
        ids = [int(i) for i in read["id"]]
        lon, lat = shift(
            np.array([expected[i]["lon"] for i in ids]), np.array([expected[i]["lat"] for i in ids])
        )
        assert np.allclose(read.geometry.x, lon, atol=2e-7) and np.allclose(read.geometry.y, lat, atol=2e-7)
    shifted = pyogrio.read_dataframe(gcj, layer=KML_INCIDENTS)
    plain_wgs = pyogrio.read_dataframe(wgs, layer=KML_INCIDENTS)
    # GCJ-02 moves these points by hundreds of metres (≥ 1e-3 degrees), not by rounding.
    assert (
        np.hypot(shifted.geometry.x - plain_wgs.geometry.x, shifted.geometry.y - plain_wgs.geometry.y) > 1e-3
    ).all()
    assert "Datum: WGS84" in wgs.read_text() and "Datum: GCJ-02" in gcj.read_text()
    assert "<value>gcj02</value>" in gcj.read_text()


def test_kml_placemarks_are_styled_by_status_and_category_with_chinese_names(scene, tmp_path):
    path, _ = download(scene.client, scene.auth("admin"), "kmz", tmp_path, layers="incidents,grids")
    with zipfile.ZipFile(path) as archive:
        text = archive.read("doc.kml").decode()
    assert '<Style id="incident-reported-cutting">' in text
    assert f"<color>{xml.kml_color(STATUS_COLORS['reported'])}</color>" in text
    assert "<name>垃圾 · 已报告</name>" in text  # the category's and the status' Chinese labels
    assert text.count("xmlns=") == 1  # declared once, on the root
    assert "<styleUrl>#incident-reported-rubbish</styleUrl>" in text
    read = pyogrio.read_dataframe(f"/vsizip/{path}/doc.kml", layer="保护网格 Grids")
    assert read["Name"].str.contains("LJ-GQ-03").any()


def test_the_kml_status_palette_is_the_maps_palette():
    assert xml.STATUS_COLORS == STATUS_COLORS
    assert xml.kml_color("#d7191c") == "ff1c19d7"


# --- Shapefile ----------------------------------------------------------------------------------------


def test_a_gbk_shapefile_keeps_chinese_text_and_short_field_names(scene, tmp_path):
    headers = scene.auth("admin")
    path, response = download(
        scene.client, headers, "shp", tmp_path, layers="grids,incidents", encoding="gbk"
    )
    assert response.headers["content-type"] == "application/zip" and path.name.endswith("-shp.zip")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"mangrove_grids.shp", "mangrove_grids.dbf", "mangrove_grids.cpg", "fields.csv"} <= names
        assert archive.read("mangrove_grids.cpg").decode().strip() == "GBK"
        dbf = archive.read("mangrove_grids.dbf")
    grids = pyogrio.read_dataframe(f"/vsizip/{path}/mangrove_grids.shp", encoding="gbk")
    expected = {f["properties"]["code"]: f["properties"]["name_zh"]
                for f in scene.client.get("/api/v1/grids", headers=headers).json()["features"]}  # fmt: skip
    assert dict(zip(grids["code"], grids["name_zh"])) == expected
    chinese = next(v for v in expected.values() if any(ord(c) > 127 for c in v))
    assert chinese.encode("gbk") in dbf and chinese.encode("utf-8") not in dbf
    incidents = pyogrio.read_info(f"/vsizip/{path}/mangrove_incidents.shp")
    assert all(len(name) <= 10 for name in incidents["fields"])
    assert {LONG_NAMES.get(n, n) for n in incidents["fields"]} == set(SCHEMAS["incidents"])


def test_every_long_field_name_has_a_deliberate_short_one():
    for layer, schema in SCHEMAS.items():
        shorts = [SHORT_NAMES.get(c, c) for c in schema]
        assert all(len(s) <= 10 for s in shorts), layer
        assert len(set(shorts)) == len(shorts), layer


# --- GPX ----------------------------------------------------------------------------------------------


def test_gpx_tracks_carry_each_good_fix_with_its_time(scene, tmp_path):
    headers = scene.auth("member")
    path, response = download(scene.client, headers, "gpx", tmp_path, layers="patrols")
    assert response.headers["content-type"] == "application/gpx+xml"
    points = pyogrio.read_dataframe(path, layer="track_points")
    tracks = pyogrio.read_dataframe(path, layer="tracks")
    with scene.sessions() as session:
        patrol_ids = sorted(p.id for p in session.query(Patrol))
        fixes = patrol_fixes(session, patrol_ids[0])
    assert len(tracks) == len(patrol_ids) == 3
    first = points[points["track_fid"] == points["track_fid"].min()]
    good = fixes["flags"] == 0
    assert len(first) == good.sum()
    written = pd.to_datetime(first["time"], utc=True).dt.tz_localize(None).to_numpy("datetime64[ms]")
    # Tracks are written newest first; the first written is the newest patrol.
    newest = max(patrol_ids, key=lambda i: patrol_fixes_start(scene.sessions, i))
    with scene.sessions() as session:
        expected = patrol_fixes(session, newest)
    assert np.array_equal(written, expected["time"][expected["flags"] == 0])


def patrol_fixes_start(sessions, patrol_id):
    with sessions() as session:
        return session.get(Patrol, patrol_id).started_at


# --- spreadsheets -------------------------------------------------------------------------------------


def test_csv_and_xlsx_write_formulas_as_text(scene, tmp_path):
    headers = scene.auth("admin")
    csv_path, response = download(scene.client, headers, "csv", tmp_path)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    text = csv_path.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    xlsx, _ = download(scene.client, headers, "xlsx", tmp_path, layers="incidents,grids")
    from openpyxl import load_workbook

    book = load_workbook(xlsx, read_only=True)
    assert book.sheetnames == ["grids", "incidents"]
    cells = [c for row in book["incidents"].iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    grids = pyogrio.read_dataframe(xlsx, layer="grids")
    assert grids["wkt"].str.startswith("MULTIPOLYGON").all()


def test_a_csv_of_several_layers_is_a_zip_of_one_csv_each(scene, tmp_path):
    path, response = download(scene.client, scene.auth("admin"), "csv", tmp_path, layers="grids,incidents")
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        assert sorted(archive.namelist()) == ["mangrove_grids.csv", "mangrove_incidents.csv"]


# --- refusals -----------------------------------------------------------------------------------------


def test_more_features_than_the_cap_is_refused_with_the_count_and_how_to_narrow(scene, monkeypatch):
    monkeypatch.setattr(scene.settings.exports, "max_features", 3)
    response = scene.client.get(
        "/api/v1/exports/gpkg", params={"layers": "incidents,patrols"}, headers=scene.auth("admin")
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "7 features match (patrols 3, incidents 4)" in detail and "datetime=" in detail


@pytest.mark.parametrize(
    "fmt, params, parameter",
    [
        ("docx", {}, "format"),
        ("gpkg", {"layers": "roads"}, "layers"),
        ("gpx", {"layers": "grids"}, "layers"),
        ("gpkg", {"datum": "gcj02"}, "datum"),
        ("kml", {"datum": "mars-ish"}, "datum"),
        ("shp", {"encoding": "latin1"}, "encoding"),
        ("gpkg", {"encoding": "gbk"}, "encoding"),
        ("gpkg", {"grid": "NO-SUCH"}, None),
        ("gpkg", {"datetime": "yesterday-ish"}, None),
        ("gpkg", {"category": "nonsense"}, None),
    ],
)
def test_bad_input_is_refused_with_422_naming_the_parameter(scene, fmt, params, parameter):
    response = scene.client.get(f"/api/v1/exports/{fmt}", params=params, headers=scene.auth("admin"))
    assert response.status_code == 422, response.text
    body = response.json()
    if parameter:
        assert body["parameter"] == parameter
    else:
        assert next(iter(params)) in body["detail"] or next(iter(params.values())) in body["detail"]


# --- the command line -----------------------------------------------------------------------------------


def test_the_cli_writes_an_export_as_a_user_and_refuses_bad_input_without_a_file(
    scene, configured, tmp_path, capsys
):
    out = tmp_path / "member.gpkg"
    assert cli(["export", "gpkg", "-o", str(out), "--as", "member-hp", "--layers", "incidents"]) == 0
    assert set(pyogrio.read_dataframe(out, layer="incidents")["reporter"]) == {"member-hp"}
    bad = tmp_path / "bad.kml"
    assert cli(["export", "kml", "-o", str(bad), "--layers", "roads"]) == 2
    assert cli(["export", "gpkg", "-o", str(bad), "--datum", "gcj02"]) == 2
    assert "unknown layer" in capsys.readouterr().err
    assert not bad.exists() and not list(tmp_path.glob("*.part"))
