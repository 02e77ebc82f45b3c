"""Reading a grid survey: every supported format and CRS gives the same grids; each defect is named."""

import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geodata import reference
from geodata.crs import CGCS2000_GK_CM_108, METRIC, WGS84
from geodata.errors import GeodataError, UnsupportedFormat
from geodata.gridfile import GRID_FIELDS, GridFileOptions, overlap_pairs, read_grid_file


@pytest.fixture(scope="module")
def survey() -> gpd.GeoDataFrame:
    grids = reference.load_grids(side="GD-LJ")
    return grids[["code", "name_zh", "name_en", "town", "team", "station", "geometry"]].copy()


def read(path, **options):
    return read_grid_file(path, GridFileOptions(**options))


def assert_same_grids(result, survey):
    grids = result.grids
    assert list(grids.columns) == [*GRID_FIELDS, "geometry", "area_ha"]
    assert grids.crs.to_epsg() == 4326
    assert list(grids.code) == sorted(survey.code)
    expected = survey.sort_values("code").to_crs(METRIC).geometry.values
    got = grids.to_crs(METRIC).geometry.values
    assert max(shapely.hausdorff_distance(expected, got)) < 0.2  # metres
    assert np.allclose(grids.area_ha, np.round(shapely.area(expected) / 1e4, 2), atol=0.011)


@pytest.mark.parametrize(
    "suffix, driver, crs",
    [
        (".geojson", "GeoJSON", "EPSG:4490"),
        (".gpkg", "GPKG", "EPSG:32649"),
        (".gpkg", "GPKG", CGCS2000_GK_CM_108),
        (".kml", "KML", WGS84),
    ],
)
def test_every_format_and_crs_gives_the_same_grids(survey, tmp_path, suffix, driver, crs):
    path = tmp_path / f"survey{suffix}"
    if driver == "KML":  # KML surveys usually carry the code as the placemark's name
        survey.rename(columns={"code": "Name"}).to_file(path, driver=driver)
        result = read(path, field_map={"code": "Name"})
    else:
        survey.to_crs(crs).to_file(path, driver=driver)
        result = read(path)
    assert_same_grids(result, survey)
    assert result.source_crs == crs
    assert all(shapely.get_type_id(result.grids.geometry.values) == 6)  # MultiPolygon
    # RFC 7946: exterior rings counter-clockwise.
    assert all(
        shapely.is_ccw(shapely.get_exterior_ring(shapely.get_geometry(result.grids.geometry.values, 0)))
    )


def test_kmz_is_read_through_its_doc_kml(survey, tmp_path):
    kml = tmp_path / "doc.kml"
    survey.rename(columns={"code": "Name"}).to_file(kml, driver="KML")
    kmz = tmp_path / "survey.kmz"
    with zipfile.ZipFile(kmz, "w") as archive:
        archive.write(kml, "doc.kml")
    assert_same_grids(read(kmz, field_map={"code": "Name"}), survey)


def test_default_attribute_names_include_chinese_ones(survey, tmp_path):
    path = tmp_path / "survey.geojson"
    survey.rename(columns={"code": "网格编号", "name_zh": "网格名称", "town": "乡镇"}).to_file(path)
    grids = read(path).grids
    assert list(grids.code) == sorted(survey.code)
    assert grids.set_index("code").loc["LJ-GQ-01", "town"] == "GQ"
    assert grids.name_zh.notna().all()


def test_numeric_codes_from_a_dbf_come_back_as_text(survey, tmp_path):
    path = tmp_path / "survey.geojson"
    numbered = survey.assign(code=np.arange(101, 101 + len(survey)).astype(float))
    numbered.to_file(path)
    assert read(path).grids.code.iloc[0] == "101"


def test_unknown_attribute_and_unknown_field_are_named(survey, tmp_path):
    path = tmp_path / "survey.geojson"
    survey.to_file(path)
    with pytest.raises(GeodataError, match="网格编号") as info:
        read(path, field_map={"code": "网格编号"})
    assert info.value.problems[0].details["available"][:2] == ["code", "name_zh"]
    with pytest.raises(GeodataError, match="colour"):
        read(path, field_map={"colour": "code"})
    with pytest.raises(GeodataError, match="no grid code"):
        read_grid_file(_without_codes(survey, tmp_path))


def _without_codes(survey, tmp_path):
    path = tmp_path / "nocodes.geojson"
    survey.drop(columns=["code"]).to_file(path)
    return path


def test_invalid_polygon_is_refused_or_repaired_with_a_report(survey, tmp_path):
    bad = survey.copy()
    # A small bow tie well inside the grid, so that repairing it cannot create overlaps.
    centre = bad.geometry.iloc[0].representative_point()
    x0, y0, x1, y1 = centre.buffer(0.0002).bounds
    bad.loc[bad.index[0], "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    path = tmp_path / "bad.geojson"
    bad.to_file(path)
    code = bad.code.iloc[0]
    with pytest.raises(GeodataError, match="Self-intersection") as info:
        read(path)
    assert [p.kind for p in info.value.problems] == ["invalid-geometry"] and code in info.value.message
    result = read(path, repair=True)
    assert [p.details["code"] for p in result.repaired] == [code]
    assert result.grids.is_valid.all()
    repaired = result.grids.set_index("code").loc[code, "geometry"]
    assert shapely.get_num_geometries(repaired) == 2  # the two triangles of the bow tie


def test_overlaps_are_listed_with_areas_and_slivers_only_warned(survey, tmp_path):
    a, b = survey.geometry.iloc[0], survey.geometry.iloc[1]
    bigger = survey.copy()
    bigger.loc[bigger.index[1], "geometry"] = b.union(a.buffer(-0.0005))
    path = tmp_path / "overlap.geojson"
    bigger.to_file(path)
    with pytest.raises(GeodataError, match="overlap") as info:
        read(path)
    (problem,) = info.value.problems
    assert sorted(problem.details["codes"]) == sorted(survey.code.iloc[:2])
    expected_m2 = gpd.GeoSeries([a.buffer(-0.0005)], crs=WGS84).to_crs(METRIC).area.iloc[0]
    assert problem.details["area_m2"] == pytest.approx(expected_m2, rel=1e-3)
    # A sliver under the tolerance is a warning, not a refusal.
    assert read(path, overlap_tolerance_m2=expected_m2 * 1.01).warnings[0].kind == "small-overlap"


def test_overlap_pairs_ignores_shared_edges():
    square = shapely.box(109.8, 21.5, 109.81, 21.51)
    touching = shapely.box(109.81, 21.5, 109.82, 21.51)
    grids = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[square, touching], crs=WGS84)
    assert overlap_pairs(grids) == []


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda s: s.assign(code=[s.code.iloc[0]] * len(s)), "duplicate"),
        (lambda s: s.set_geometry(s.geometry.translate(xoff=3.0)), "outside"),
        (lambda s: s.set_geometry(s.geometry.centroid), "not a polygon"),
        (lambda s: s.set_geometry([None] * len(s)), "no geometry"),
    ],
    ids=["duplicate codes", "outside the region", "points", "null geometry"],
)
def test_defects_are_refused_with_the_problem_named(survey, tmp_path, change, says):
    path = tmp_path / "bad.geojson"
    change(survey.copy()).to_file(path)
    with pytest.raises(GeodataError, match=says) as info:
        read(path)
    assert info.value.problems


def test_missing_crs_is_refused_unless_assumed(survey, tmp_path):
    folder = tmp_path / "shp"
    folder.mkdir()
    survey.to_crs(CGCS2000_GK_CM_108).to_file(folder / "grids.shp", encoding="utf-8")
    (folder / "grids.prj").unlink()
    with pytest.raises(GeodataError, match="CRS") as info:
        read(folder / "grids.shp")
    assert info.value.problems[0].kind == "missing-crs"
    result = read(folder / "grids.shp", assume_crs=CGCS2000_GK_CM_108)
    assert_same_grids(result, survey)
    assert result.warnings[0].kind == "assumed-crs"


def test_coordinates_that_contradict_the_declared_crs_are_refused(survey, tmp_path):
    projected_as_degrees = survey.to_crs(METRIC).set_crs(WGS84, allow_override=True)
    path = tmp_path / "a.geojson"
    projected_as_degrees.to_file(path)
    with pytest.raises(GeodataError, match="look projected"):
        read(path)
    degrees_as_projected = survey.set_crs(METRIC, allow_override=True)
    path = tmp_path / "b.gpkg"
    degrees_as_projected.to_file(path)
    with pytest.raises(GeodataError, match="look like degrees"):
        read(path)


def test_heights_are_dropped_with_a_warning(survey, tmp_path):
    path = tmp_path / "z.geojson"
    survey.set_geometry(shapely.force_3d(survey.geometry.values, 5.0)).to_file(path)
    result = read(path)
    assert not shapely.has_z(result.grids.geometry.values).any()
    assert [w.kind for w in result.warnings] == ["dropped-z"]


def test_layers_must_be_chosen_when_there_are_several(survey, tmp_path):
    path = tmp_path / "two.gpkg"
    survey.to_file(path, layer="grids_2025")
    survey.iloc[:3].to_file(path, layer="draft")
    with pytest.raises(GeodataError, match="draft.*grids_2025|grids_2025.*draft"):
        read(path)
    assert len(read(path, layer="grids_2025").grids) == len(survey)
    with pytest.raises(GeodataError, match="no layer 'final'"):
        read(path, layer="final")


def test_unsafe_archives_are_refused(survey, tmp_path):
    traversal = tmp_path / "traversal.zip"
    with zipfile.ZipFile(traversal, "w") as archive:
        archive.writestr("../../etc/grids.geojson", "{}")
    with pytest.raises(GeodataError, match="unsafe path"):
        read(traversal)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("grids.geojson", b" " * (64 * 1024 * 1024))
    with pytest.raises(GeodataError, match="zip bomb"):
        read(bomb)
    not_a_zip = tmp_path / "survey.zip"
    not_a_zip.write_bytes(b"PK but not really")
    with pytest.raises(GeodataError, match="not a readable zip"):
        read(not_a_zip)


def test_unknown_empty_and_unreadable_files(tmp_path):
    with pytest.raises(UnsupportedFormat, match=".csv"):
        read(tmp_path / "grids.csv")
    empty = tmp_path / "empty.gpkg"
    empty.write_bytes(b"")
    with pytest.raises(GeodataError, match="empty"):
        read(empty)
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("{ not json")
    with pytest.raises(GeodataError, match="could not be read as GeoJSON"):
        read(garbage)
    with pytest.raises(GeodataError, match="no such file"):
        read(tmp_path / "missing.kml")
