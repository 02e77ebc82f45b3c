"""The inline SVG map of the phone report page: framing, paths, and taps back to lon/lat."""

from types import SimpleNamespace

import shapely

from maps.svg import MAP_WIDTH, tappable_map


def grid(code, *box):
    return SimpleNamespace(code=code, geometry=shapely.box(*box))


def test_a_tap_on_a_grid_label_maps_back_into_that_grid():
    records = [grid("A", 109.80, 21.50, 109.82, 21.51), grid("B", 109.82, 21.50, 109.84, 21.52)]
    border = shapely.LineString([(109.815, 21.45), (109.815, 21.55)])
    svg = tappable_map(records, {"A", "B"}, border)
    assert svg["width"] == MAP_WIDTH and 0 < svg["height"] <= MAP_WIDTH * 1.1
    for item, record in zip(svg["grids"], records):
        lon = svg["lon0"] + item["x"] / svg["kx"]
        lat = svg["lat0"] - item["y"] / svg["ky"]
        assert record.geometry.contains(shapely.Point(lon, lat)), item["code"]
        assert item["path"].startswith("M") and item["path"].endswith("Z")
    assert svg["border"].startswith("M")


def test_only_the_framed_grids_decide_the_view():
    records = [grid("NEAR", 109.80, 21.50, 109.81, 21.51), grid("FAR", 110.40, 21.80, 110.41, 21.81)]
    svg = tappable_map(records, {"NEAR"})
    assert [g["code"] for g in svg["grids"]] == ["NEAR"]  # the far grid is clipped away
    assert tappable_map([], set()) is None
