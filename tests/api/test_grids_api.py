"""Grids as RFC 7946 GeoJSON: list, one by code, filters by side, town and bbox; bad parameters are
refused with problem+json naming the parameter."""

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from patrol import migrate


def _features(client, **params):
    response = client.get("/api/v1/grids", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    return response.json()


def test_lists_26_lianjiang_grids_and_hepu_zones(client):
    body = _features(client)
    sides = [f["properties"]["side"] for f in body["features"]]
    assert sides.count("GD-LJ") == 26 and sides.count("GX-HP") >= 3
    assert body["numberMatched"] == body["numberReturned"] == len(body["features"])
    assert body["metadata"]["reference"]["approximate"] is True


def test_geojson_is_rfc7946(client):
    for feature in _features(client)["features"]:
        geom = shape(feature["geometry"])
        assert feature["geometry"]["type"] == "MultiPolygon" and geom.is_valid
        for polygon in geom.geoms:
            assert polygon.exterior.is_ccw  # exterior rings counter-clockwise
        coords = shapely.get_coordinates(geom)
        assert np.allclose(coords, np.round(coords, 6))
        assert ((coords[:, 0] > 108) & (coords[:, 0] < 111) & (coords[:, 1] > 21) & (coords[:, 1] < 22)).all()
        assert feature["id"] == feature["properties"]["code"]
        assert feature["properties"]["area_ha"] > 0


def test_filters_by_side_and_town(client):
    hepu = _features(client, side="GX-HP")["features"]
    assert hepu and all(f["properties"]["side"] == "GX-HP" for f in hepu)
    gaoqiao = _features(client, town="GQ")["features"]
    assert gaoqiao and all(f["properties"]["town"] == "GQ" for f in gaoqiao)
    assert all(f["properties"]["team"] == "LJ-T-GQ" for f in gaoqiao)


def test_bbox_returns_exactly_the_grids_it_touches(client):
    everything = _features(client)["features"]
    box = (109.78, 21.47, 109.83, 21.52)
    expected = sorted(f["id"] for f in everything if shape(f["geometry"]).intersects(shapely.box(*box)))
    got = sorted(f["id"] for f in _features(client, bbox=",".join(map(str, box)))["features"])
    assert got == expected and 0 < len(got) < len(everything)
    assert _features(client, bbox="100,10,100.1,10.1")["features"] == []


def test_one_grid_by_code(client):
    code = _features(client, town="YZ")["features"][0]["id"]
    feature = client.get(f"/api/v1/grids/{code}").json()
    assert feature["type"] == "Feature" and feature["properties"]["town"] == "YZ"
    missing = client.get("/api/v1/grids/LJ-XX-99")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "LJ-XX-99" in missing.json()["detail"]


@pytest.mark.parametrize(
    "bbox, says",
    [
        ("1,2,3", "4 comma-separated"),
        ("a,b,c,d", "number"),
        ("109.9,21.4,109.7,21.6", "minimum longitude"),
        ("109.7,21.6,109.9,21.4", "minimum latitude"),
        ("21.4,109.7,21.6,109.9", "latitudes"),
        ("nan,21,110,22", "finite"),
        ("-200,21,110,22", "longitudes"),
    ],
)
def test_bad_bbox_is_refused(client, bbox, says):
    response = client.get("/api/v1/grids", params={"bbox": bbox})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in response.json()["detail"] and "bbox" in response.json()["detail"]


def test_unknown_side_or_town_is_refused(client):
    for params in ({"side": "GD-XX"}, {"town": "ZZ"}):
        response = client.get("/api/v1/grids", params=params)
        assert response.status_code == 422 and "known" in response.json()["detail"]


def test_unknown_route_is_problem_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json()["status"] == 404


def test_health_names_the_backend(client, backend):
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["grids"] >= 29
    assert (
        body["database"]["backend"] == backend[0]
        and body["database"]["schema_revision"] == migrate.head_revision()
    )


def test_places_and_border(client):
    places = client.get("/api/v1/places").json()
    assert {t["code"] for t in places["teams"]} >= {"LJ-T-GQ", "LJ-T-YZ", "LJ-T-CB", "LJ-T-AP", "LJ-T-LD"}
    assert "LJ-S-GQ" in {s["code"] for s in places["stations"]}
    border = client.get("/api/v1/border").json()
    assert border["features"][0]["geometry"]["type"] == "LineString"
    assert len(border["features"][0]["geometry"]["coordinates"]) == 11


def test_api_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "https://" not in page.text and "http://" not in page.text
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
