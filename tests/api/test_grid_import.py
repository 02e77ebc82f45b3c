"""Replacing the grids from an official survey: any format and CRS gives the same grids; every
refusal names the problem and leaves the database exactly as it was."""

import hashlib
import json
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import func, select
from utils.factories import add_users, auth

from api.cli import main as cli
from geodata import reference
from geodata.crs import CGCS2000, CGCS2000_GK_ZONE_37, METRIC
from patrol.models import Grid, GridImport


def lianjiang_survey() -> gpd.GeoDataFrame:
    grids = reference.load_grids(side="GD-LJ")
    return grids[["code", "name_zh", "name_en", "town", "geometry"]].copy()


def write_zipped_shapefile(gdf: gpd.GeoDataFrame, path, *, keep_prj: bool = True):
    """A Shapefile the way survey offices send them: zipped, Chinese attribute names, GK CRS."""
    folder = path.parent / (path.stem + "_shp")
    folder.mkdir()
    shp = folder / "grids.shp"
    gdf.to_file(shp, driver="ESRI Shapefile", encoding="utf-8")
    with zipfile.ZipFile(path, "w") as archive:
        for part in folder.iterdir():
            if keep_prj or part.suffix != ".prj":
                archive.write(part, part.name)
    return path


def snapshot(sessions) -> str:
    """A fingerprint of every grid row (attributes and geometry) and of the import log."""
    with sessions() as session:
        rows = session.execute(
            select(
                Grid.code, Grid.version, Grid.retired_at, Grid.source, func.ST_AsBinary(Grid.geom)
            ).order_by(Grid.code)
        ).all()
        imports = session.scalar(select(func.count(GridImport.id)))
    digest = hashlib.sha256()
    for code, version, retired, source, wkb in rows:
        digest.update(f"{code}|{version}|{retired}|{source}|".encode() + bytes(wkb))
    return f"{len(rows)}:{imports}:{digest.hexdigest()}"


def grid_geometries(sessions, side="GD-LJ") -> gpd.GeoSeries:
    from patrol.grids import list_grids

    with sessions() as session:
        records = list_grids(session, side=side)
    return gpd.GeoSeries([r.geometry for r in records], index=[r.code for r in records], crs="EPSG:4326")


def post_import(client, path, headers, **form):
    with open(path, "rb") as f:
        return client.post("/api/v1/grids/import", files={"file": (path.name, f)}, data=form, headers=headers)


def test_gauss_kruger_shapefile_and_cgcs2000_geojson_give_the_same_grids(
    client, sessions, tmp_path, capsys, monkeypatch, settings
):
    add_users(sessions, "admin")
    survey = lianjiang_survey()
    gk = survey.rename(columns={"code": "编号", "name_zh": "名称", "town": "镇"}).to_crs(CGCS2000_GK_ZONE_37)
    shp_zip = write_zipped_shapefile(gk, tmp_path / "survey_gk37.zip")
    geojson = tmp_path / "survey_cgcs2000.geojson"
    survey.to_crs(CGCS2000).to_file(geojson, driver="GeoJSON")

    # The Shapefile through the command line...
    monkeypatch.setenv("MANGROVE_DATABASE_URL", settings.storage.resolved_database_url())
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
    from patrol.settings import get_settings

    get_settings.cache_clear()
    try:
        code = cli(
            [
                "grids",
                "import",
                str(shp_zip),
                "--map",
                "code=编号",
                "--map",
                "name_zh=名称",
                "--map",
                "town=镇",
            ]
        )
    finally:
        get_settings.cache_clear()
    assert code == 0, capsys.readouterr().err
    assert "26 updated" in capsys.readouterr().out
    from_shapefile = grid_geometries(sessions)

    # ... and the GeoJSON through the API give the same grids.
    response = post_import(client, geojson, auth(client, "admin"))
    assert response.status_code == 200, response.text
    from_geojson = grid_geometries(sessions)

    assert list(from_shapefile.index) == list(from_geojson.index) == sorted(survey.code)
    a, b = from_shapefile.to_crs(METRIC), from_geojson.to_crs(METRIC)
    assert np.allclose(a.area, b.area, rtol=0, atol=1.0)  # m²
    assert max(shapely.hausdorff_distance(a.values, b.values)) < 0.2  # metres


def test_import_updates_in_place_and_retires_what_is_missing(client, sessions, tmp_path):
    add_users(sessions, "admin")
    with sessions() as session:
        ids_before = dict(session.execute(select(Grid.code, Grid.id)).all())
    survey = lianjiang_survey()
    dropped = sorted(survey.code)[-2:]
    path = tmp_path / "survey.geojson"
    survey[~survey.code.isin(dropped)].to_file(path, driver="GeoJSON")
    report = post_import(client, path, auth(client, "admin")).json()
    assert (len(report["updated"]), report["retired"], report["created"]) == (24, dropped, [])
    with sessions() as session:
        ids_after = dict(session.execute(select(Grid.code, Grid.id)).all())
        retired = session.scalars(select(Grid.code).where(Grid.retired_at.is_not(None))).all()
    assert ids_after == ids_before  # same rows: patrols and incidents keep their grid
    assert sorted(retired) == dropped
    listed = {f["id"] for f in client.get("/api/v1/grids", params={"side": "GD-LJ"}).json()["features"]}
    assert len(listed) == 24 and not listed & set(dropped)
    # Importing the full survey again brings them back; once more changes nothing.
    survey.to_file(path, driver="GeoJSON")
    assert post_import(client, path, auth(client, "admin")).json()["updated"] == dropped
    assert len(post_import(client, path, auth(client, "admin")).json()["unchanged"]) == 26


def test_dry_run_reports_and_changes_nothing(client, sessions, tmp_path):
    add_users(sessions, "admin")
    path = tmp_path / "survey.geojson"
    lianjiang_survey().to_file(path, driver="GeoJSON")
    before = snapshot(sessions)
    report = post_import(client, path, auth(client, "admin"), dry_run="true").json()
    assert report["dry_run"] and len(report["updated"]) == 26
    assert snapshot(sessions) == before


def _bowtie(survey):
    bad = survey.copy()
    x0, y0, x1, y1 = bad.geometry.iloc[0].bounds
    bad.loc[bad.index[0], "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    return bad


def _overlap(survey):
    bad = survey.copy()
    bad.loc[bad.index[1], "geometry"] = bad.geometry.iloc[1].union(bad.geometry.iloc[0].buffer(-0.0005))
    return bad


def _duplicate(survey):
    bad = survey.copy()
    bad.loc[bad.index[1], "code"] = bad.code.iloc[0]
    return bad


def _outside(survey):
    bad = survey.copy()
    bad.loc[bad.index[0], "geometry"] = shapely.affinity.translate(bad.geometry.iloc[0], xoff=3.0)
    return bad


def _unknown_town(survey):
    bad = survey.copy()
    bad.loc[bad.index[0], "town"] = "Atlantis"
    return bad


BAD_SURVEYS = {
    "self-intersecting polygon": (_bowtie, "LJ-"),
    "overlapping grids": (_overlap, "overlap"),
    "duplicate codes": (_duplicate, "duplicate"),
    "grid outside the region": (_outside, "outside"),
    "unknown town": (_unknown_town, "Atlantis"),
}


@pytest.mark.parametrize("case", BAD_SURVEYS)
def test_bad_surveys_are_refused_and_nothing_changes(client, sessions, tmp_path, case):
    add_users(sessions, "admin")
    make_bad, says = BAD_SURVEYS[case]
    path = tmp_path / "bad.geojson"
    make_bad(lianjiang_survey()).to_file(path, driver="GeoJSON")
    before = snapshot(sessions)
    response = post_import(client, path, auth(client, "admin"))
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in body["detail"] + json.dumps(body.get("problems", []), ensure_ascii=False)
    assert body.get("problems"), "each finding is listed"
    assert snapshot(sessions) == before


def test_wrong_side_of_the_border_is_refused(client, sessions, tmp_path):
    add_users(sessions, "admin")
    path = tmp_path / "lianjiang_as_hepu.geojson"
    lianjiang_survey().drop(columns=["town"]).to_file(path, driver="GeoJSON")
    before = snapshot(sessions)
    response = post_import(client, path, auth(client, "admin"), side="GX-HP")
    assert response.status_code == 422
    kinds = {p["kind"] for p in response.json()["problems"]}
    assert "wrong-side" in kinds
    assert snapshot(sessions) == before


def test_missing_crs_is_refused_unless_declared(client, sessions, tmp_path):
    add_users(sessions, "admin")
    gk = lianjiang_survey().to_crs(CGCS2000_GK_ZONE_37)
    path = write_zipped_shapefile(gk, tmp_path / "no_prj.zip", keep_prj=False)
    before = snapshot(sessions)
    response = post_import(client, path, auth(client, "admin"))
    assert response.status_code == 422 and "CRS" in response.json()["detail"].upper()
    assert snapshot(sessions) == before
    response = post_import(client, path, auth(client, "admin"), crs=CGCS2000_GK_ZONE_37)
    assert response.status_code == 200, response.text
    assert any("assum" in w["message"] for w in response.json()["warnings"])


def test_unreadable_unknown_and_oversized_files_are_refused(client, sessions, tmp_path):
    add_users(sessions, "admin")
    headers = auth(client, "admin")
    before = snapshot(sessions)
    garbage = tmp_path / "grids.geojson"
    garbage.write_bytes(b"\x00\x01 this is not json")
    unknown = tmp_path / "grids.txt"
    unknown.write_text("code,wkt\n")
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.geojson"
    huge.write_bytes(b" " * (3 * 1024 * 1024))
    expected = {garbage: 422, unknown: 415, empty: 422, huge: 413}
    for path, status in expected.items():
        response = post_import(client, path, headers)
        assert response.status_code == status, (path.name, response.text)
        assert response.json()["detail"]
    response = post_import(client, garbage, headers, field_map="code")
    assert response.status_code == 422 and "FIELD=ATTRIBUTE" in response.json()["detail"]
    assert snapshot(sessions) == before


def test_unknown_attribute_name_is_refused(client, sessions, tmp_path):
    add_users(sessions, "admin")
    path = tmp_path / "survey.geojson"
    lianjiang_survey().to_file(path, driver="GeoJSON")
    before = snapshot(sessions)
    response = post_import(client, path, auth(client, "admin"), field_map="code=网格编号")
    assert response.status_code == 422 and "网格编号" in response.json()["detail"] + json.dumps(
        response.json().get("problems"), ensure_ascii=False
    )
    assert snapshot(sessions) == before


def test_cli_refusal_exits_non_zero_with_the_problem(sessions, settings, tmp_path, capsys, monkeypatch):
    path = tmp_path / "bad.geojson"
    _duplicate(lianjiang_survey()).to_file(path, driver="GeoJSON")
    monkeypatch.setenv("MANGROVE_DATABASE_URL", settings.storage.resolved_database_url())
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(settings.storage.data_dir))
    from patrol.settings import get_settings

    get_settings.cache_clear()
    before = snapshot(sessions)
    try:
        assert cli(["grids", "import", str(path)]) == 2
        assert cli(["grids", "import", str(tmp_path / "missing.geojson")]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "mangrove: error:" in err and "duplicate" in err.lower() and "Traceback" not in err
    assert snapshot(sessions) == before
