"""GDAL's OGC API – Features driver (pyogrio's bundled GDAL) reads the service as a data source:
it lists the collections, pages through each completely, pushes a bbox and an attribute filter
to the server, reads in CGCS2000 and UTM 49N, and copies the incidents into a GeoPackage.

The service runs in a child process: GDAL blocks the calling thread, so an in-process server
would wait on it forever."""

from __future__ import annotations

import httpx
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from utils.service import Service

from patrol.demo import DEMO_PASSWORD

PUBLIC = {"grids", "zones", "border"}
ALL = PUBLIC | {"effort", "patrols", "incidents", "joint-cases"}


@pytest.fixture(scope="module")
def service(demo_loaded, tmp_path_factory):
    url = demo_loaded.settings.storage.resolved_database_url()
    with Service(url, tmp_path_factory.mktemp("ogc-gdal")) as running:
        yield running


@pytest.fixture
def as_user(service, tmp_path):
    """Sign GDAL's requests in as a demo user: a bearer token in a file of HTTP headers
    (GDAL_HTTP_HEADER_FILE; this GDAL ignores the GDAL_HTTP_HEADERS setting for OAPIF)."""
    headers = tmp_path / "headers.txt"

    def sign(username: str | None) -> str | None:
        if username is None:
            pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})
            return None
        token = httpx.post(
            f"{service.url}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
        ).json()["access_token"]
        headers.write_text(f"Authorization: Bearer {token}\n")
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(headers)})
        return token

    yield sign
    pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})


def source(service) -> str:
    return f"OAPIF:{service.url}/ogc"


def layers(service) -> set[str]:
    return {str(name) for name, _ in pyogrio.list_layers(source(service))}


def json_ids(service, token, path: str) -> list:
    """Every id the JSON API lists at ``path`` (a GeoJSON list), through its own paging."""
    ids, url = [], f"{service.url}{path}"
    while url:
        body = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60).json()
        ids += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body.get("links", []) if link["rel"] == "next"), None)
    return ids


def test_anonymous_gdal_sees_only_the_public_collections(service, as_user):
    as_user(None)
    assert layers(service) == PUBLIC
    grids = pyogrio.read_dataframe(source(service), layer="grids")
    assert len(grids) == 26 and grids.crs.to_string() == "OGC:CRS84"


def test_gdal_lists_every_collection_and_reads_each_completely(service, as_user):
    token = as_user("admin")
    assert layers(service) == ALL
    # A small page size makes GDAL follow next links several times.
    incidents = pyogrio.read_dataframe(source(service), layer="incidents", PAGE_SIZE=7)
    assert sorted(incidents["id"]) == sorted(json_ids(service, token, "/api/v1/incidents?limit=10000"))
    patrols = pyogrio.read_dataframe(source(service), layer="patrols", PAGE_SIZE=25)
    assert sorted(patrols["id"]) == sorted(json_ids(service, token, "/api/v1/patrols?limit=1000"))
    cases = httpx.get(
        f"{service.url}/api/v1/joint-cases", headers={"Authorization": f"Bearer {token}"}
    ).json()
    joint = pyogrio.read_dataframe(source(service), layer="joint-cases")
    assert sorted(joint["id"]) == sorted(c["id"] for c in cases["joint_cases"])
    for name, expected in (("grids", 26), ("effort", 32), ("border", 1)):
        assert len(pyogrio.read_dataframe(source(service), layer=name, PAGE_SIZE=10)) == expected
    zones = pyogrio.read_dataframe(source(service), layer="zones")
    assert len(zones) > 0 and set(zones["side"]) == {"GX-HP"}


def test_gdal_reads_what_an_officer_may_see_and_no_more(service, as_user):
    token = as_user("hp-officer")
    incidents = pyogrio.read_dataframe(source(service), layer="incidents")
    assert sorted(incidents["id"]) == sorted(json_ids(service, token, "/api/v1/incidents?limit=10000"))
    as_user("gq-member-07")
    assert "joint-cases" not in layers(service)


def test_gdal_pushes_a_bbox_and_an_attribute_filter_to_the_server(service, as_user):
    as_user("admin")
    everything = pyogrio.read_dataframe(source(service), layer="incidents")
    box = (109.70, 21.40, 109.85, 21.60)
    inside = pyogrio.read_dataframe(source(service), layer="incidents", bbox=box)
    points = shapely.points(everything["lon"], everything["lat"])
    expected = everything["id"][shapely.intersects(shapely.box(*box), points)]
    assert 0 < len(inside) < len(everything)
    assert sorted(inside["id"]) == sorted(expected)
    high = pyogrio.read_dataframe(source(service), layer="incidents", where="severity = 'high'")
    assert sorted(high["id"]) == sorted(everything["id"][everything["severity"] == "high"])
    log_before = service.log()
    pyogrio.read_dataframe(source(service), layer="incidents", where="status = 'closed'")
    requests = service.log()[len(log_before) :]
    # The service logs requests; GDAL sent the condition as a CQL filter rather than reading all.
    assert "filter=" in requests or "status=closed" in requests, requests[-2000:]


@pytest.mark.parametrize("epsg", [4490, 32649])
def test_gdal_reads_in_cgcs2000_and_utm_matching_a_pyproj_transform_to_a_centimetre(service, as_user, epsg):
    as_user("admin")
    lonlat = pyogrio.read_dataframe(source(service), layer="incidents").sort_values("id")
    moved = pyogrio.read_dataframe(source(service), layer="incidents", CRS=f"EPSG:{epsg}").sort_values("id")
    assert moved.crs.to_epsg() == epsg
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(
        shapely.get_x(lonlat.geometry.values), shapely.get_y(lonlat.geometry.values)
    )
    got_x, got_y = shapely.get_x(moved.geometry.values), shapely.get_y(moved.geometry.values)
    if epsg == 4490:  # degrees: 1 cm is about 1e-7°
        assert np.abs(got_x - x).max() < 1e-7 and np.abs(got_y - y).max() < 1e-7
    else:
        assert np.abs(got_x - x).max() < 0.01 and np.abs(got_y - y).max() < 0.01


def test_gdal_copies_the_incidents_into_a_geopackage(service, as_user, tmp_path):
    as_user("admin")
    incidents = pyogrio.read_dataframe(source(service), layer="incidents")
    target = tmp_path / "incidents.gpkg"
    pyogrio.write_dataframe(incidents, target, layer="incidents", driver="GPKG")
    copied = pyogrio.read_dataframe(target, layer="incidents")
    assert sorted(copied["id"]) == sorted(incidents["id"])
    assert list(copied["category"].sort_index()) == list(incidents["category"].sort_index())
