"""WGS84 ↔ GCJ-02 / BD-09: published reference values, sub-centimetre round trips measured in
metres on the ellipsoid, the size of the shift on our coast, and the datum names users type."""

import numpy as np
import pytest
from pyproj import Geod

from geodata.datum import (
    Datum,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geodata.errors import InputError
from geodata.region import LIANJIANG_BBOX, REGION_BBOX

GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def grid(bbox, n=40):
    minx, miny, maxx, maxy = bbox
    lon, lat = np.meshgrid(np.linspace(minx, maxx, n), np.linspace(miny, maxy, n))
    return lon.ravel(), lat.ravel()


REGION = grid(REGION_BBOX)
CHINA = grid((74.0, 18.0, 135.0, 53.0))  # well inside the rough bounding box where GCJ-02 applies


# --- published reference values --------------------------------------------------------------------
# The README of wandergis/coordtransform (the npm package "coordtransform", a widely copied
# implementation) gives wgs84togcj02(116.404, 39.915) = [116.41024449916938, 39.91640428150164] and
# gcj02tobd09(116.404, 39.915) = [116.41036949371029, 39.92133699351021]; checked against this code.


def test_wgs84_to_gcj02_matches_the_published_reference_value():
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert float(lon) == pytest.approx(116.41024449916938, abs=1e-9)
    assert float(lat) == pytest.approx(39.91640428150164, abs=1e-9)


def test_gcj02_to_bd09_matches_the_published_reference_value():
    lon, lat = gcj02_to_bd09(116.404, 39.915)
    assert float(lon) == pytest.approx(116.41036949371029, abs=1e-9)
    assert float(lat) == pytest.approx(39.92133699351021, abs=1e-9)


def test_bd09_to_gcj02_is_close_to_the_published_closed_form():
    # The published closed form gives (116.39762729119315, 39.90865673957631) but is approximate
    # (≈ 0.2 m); ours refines it, so it agrees to a few tenths of a metre, i.e. ~1e-5°.
    lon, lat = bd09_to_gcj02(116.404, 39.915)
    assert float(lon) == pytest.approx(116.39762729119315, abs=1e-5)
    assert float(lat) == pytest.approx(39.90865673957631, abs=1e-5)
    back = gcj02_to_bd09(lon, lat)
    assert metres(*back, 116.404, 39.915) < 1e-3


# --- round trips --------------------------------------------------------------------------------------


@pytest.mark.parametrize("points", [REGION, CHINA], ids=["region", "china"])
def test_gcj02_round_trip_is_exact_to_a_centimetre(points):
    lon, lat = points
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back).max() < 0.01


@pytest.mark.parametrize("points", [REGION, CHINA], ids=["region", "china"])
def test_bd09_round_trip_is_exact_to_a_centimetre(points):
    lon, lat = points
    bd = wgs84_to_bd09(lon, lat)
    assert metres(lon, lat, *bd).min() > 100  # really shifted
    back = bd09_to_wgs84(*bd)
    assert metres(lon, lat, *back).max() < 0.01
    assert metres(*wgs84_to_gcj02(lon, lat), *bd09_to_gcj02(*bd)).max() < 0.01


def test_gcj02_shift_around_lianjiang_is_a_few_hundred_metres():
    lon, lat = grid(LIANJIANG_BBOX, 20)
    shift = metres(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert shift.min() > 100
    assert shift.max() < 700


def test_to_wgs84_and_from_wgs84_per_datum():
    lon, lat = REGION
    assert np.array_equal(np.column_stack(to_wgs84(lon, lat, Datum.WGS84)), np.column_stack([lon, lat]))
    assert np.array_equal(np.column_stack(to_wgs84(lon, lat, "CGCS2000")), np.column_stack([lon, lat]))
    for datum in Datum:
        back = to_wgs84(*from_wgs84(lon, lat, datum), datum)
        assert metres(lon, lat, *back).max() < 0.01
    gcj = wgs84_to_gcj02(lon, lat)
    assert np.array_equal(to_wgs84(*gcj, Datum.GCJ02)[0], gcj02_to_wgs84(*gcj)[0])


def test_to_wgs84_returns_new_arrays():
    lon, lat = np.array([110.0, 109.5]), np.array([21.6, 21.7])
    out_lon, out_lat = to_wgs84(lon, lat, Datum.WGS84)
    out_lon[0] = 0.0
    assert lon[0] == 110.0


# --- outside China, NaN, shapes --------------------------------------------------------------------

OUTSIDE = (
    np.array([2.3522, -74.006, 151.2093, 139.6917, 0.0, -0.1246]),  # Paris, New York, Sydney, Tokyo, …
    np.array([48.8566, 40.7128, -33.8688, 35.6895, 0.0, 51.5007]),
)


def test_outside_china_is_unchanged():
    lon, lat = OUTSIDE
    for convert in (wgs84_to_gcj02, gcj02_to_wgs84):
        out_lon, out_lat = convert(lon, lat)
        assert np.array_equal(out_lon, lon) and np.array_equal(out_lat, lat)


def test_nan_passes_through():
    lon = np.array([np.nan, 110.0, np.nan])
    lat = np.array([21.6, np.nan, np.nan])
    for convert in (wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, bd09_to_wgs84):
        out_lon, out_lat = convert(lon, lat)
        assert np.isnan(out_lon[0]) and np.isnan(out_lat[1]) and np.isnan(out_lon[2])
    # A NaN does not disturb its neighbours.
    mixed = wgs84_to_gcj02(np.array([np.nan, 110.0]), np.array([np.nan, 21.6]))
    single = wgs84_to_gcj02(110.0, 21.6)
    assert mixed[0][1] == single[0] and mixed[1][1] == single[1]


def test_scalars_and_shapes():
    lon, lat = wgs84_to_gcj02(110.0, 21.6)
    assert np.shape(lon) == () and np.shape(lat) == ()
    lon2d, lat2d = np.full((3, 4), 110.0), np.full((3, 4), 21.6)
    out = gcj02_to_wgs84(*wgs84_to_gcj02(lon2d, lat2d))
    assert out[0].shape == (3, 4)
    assert np.allclose(out[0], 110.0, atol=1e-9) and np.allclose(out[1], 21.6, atol=1e-9)
    empty = to_wgs84(np.array([]), np.array([]), Datum.BD09)
    assert empty[0].shape == (0,)


def test_inputs_are_not_modified():
    lon, lat = np.array([110.0, 109.5]), np.array([21.6, 21.7])
    for convert in (wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, bd09_to_wgs84):
        convert(lon, lat)
    assert lon.tolist() == [110.0, 109.5] and lat.tolist() == [21.6, 21.7]


# --- names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, datum",
    [
        ("WGS84", Datum.WGS84),
        ("wgs-84", Datum.WGS84),
        ("WGS 84", Datum.WGS84),
        ("EPSG:4326", Datum.WGS84),
        ("CGCS2000", Datum.CGCS2000),
        ("epsg:4490", Datum.CGCS2000),
        ("GCJ-02", Datum.GCJ02),
        ("gcj02", Datum.GCJ02),
        ("Mars", Datum.GCJ02),
        ("AMap", Datum.GCJ02),
        ("gaode", Datum.GCJ02),
        ("高德", Datum.GCJ02),
        ("BD-09", Datum.BD09),
        ("bd09", Datum.BD09),
        ("Baidu", Datum.BD09),
        (" baidu ", Datum.BD09),
        (Datum.GCJ02, Datum.GCJ02),
    ],
)
def test_parse_accepts_common_spellings(text, datum):
    assert Datum.parse(text) is datum


@pytest.mark.parametrize("text", ["", "utm49n", "EPSG:32649", "google", "gcj03", None])
def test_parse_rejects_other_names_and_says_what_is_accepted(text):
    with pytest.raises(InputError) as caught:
        Datum.parse(text)
    message = caught.value.message
    for accepted in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        assert accepted in message
    assert caught.value.problems[0].kind == "unknown-datum"
