"""OGC API – Features as a specification: one test per requirement class (Part 1 core, GeoJSON,
HTML, OpenAPI 3.0; Part 2 CRS; Part 3 queryables and filters), the visibility rules of the JSON
API holding in /ogc too, and every bad parameter refused with a 400 that names it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyproj import Transformer

from api.ogc.routes import CONFORMANCE
from patrol.demo import DEMO_PASSWORD

OGC = "/ogc"
GEOJSON = "application/geo+json"
CRS = "http://www.opengis.net/def/crs/EPSG/0/{}"


_TOKENS: dict[tuple[str, str], str] = {}


def bearer(client, username: str) -> dict[str, str]:
    """A signed-in header for ``username``; one sign-in per database (password hashing is slow)."""
    key = (str(client.app.state.settings.storage.resolved_database_url()), username)
    if key not in _TOKENS or client.get("/api/v1/auth/me", headers=_header(_TOKENS[key])).status_code != 200:
        response = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
        _TOKENS[key] = response.json()["access_token"]
    return _header(_TOKENS[key])


def _header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def items(client, collection: str, headers=None, **params):
    response = client.get(f"{OGC}/collections/{collection}/items", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def all_ids(client, collection: str, headers=None, **params) -> list:
    """Every feature id through the next links."""
    body = items(client, collection, headers, **params)
    ids = [f["id"] for f in body["features"]]
    while nxt := next((link for link in body["links"] if link["rel"] == "next"), None):
        assert nxt["type"] == GEOJSON
        body = client.get(nxt["href"], headers=headers or {}).json()
        ids += [f["id"] for f in body["features"]]
    return ids


def json_api_incident_ids(client, headers, **params) -> list[int]:
    body = client.get("/api/v1/incidents", params={"limit": 10000, **params}, headers=headers).json()
    return [f["id"] for f in body["features"]]


# --- Part 1: core, GeoJSON, OpenAPI 3.0, HTML ----------------------------------------------------


def test_landing_page_links_the_api_definition_the_conformance_and_the_data(demo_client):
    body = demo_client.get(OGC).json()
    rels = {(link["rel"], link["type"]) for link in body["links"]}
    assert ("service-desc", "application/vnd.oai.openapi+json;version=3.0") in rels
    assert ("conformance", "application/json") in rels and ("data", "application/json") in rels


def test_conformance_lists_what_qgis_needs_to_send_its_filters(demo_client):
    classes = demo_client.get(f"{OGC}/conformance").json()["conformsTo"]
    assert classes == CONFORMANCE
    # QGIS pushes CQL2 to the server only when all four are declared; spatial filters need the fifth.
    for needed in ("ogcapi-features-3/1.0/conf/filter", "ogcapi-features-3/1.0/conf/features-filter",
                   "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/basic-cql2", "cql2/1.0/conf/basic-spatial-functions",
                   "ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/oas30",
                   "ogcapi-features-1/1.0/conf/geojson", "ogcapi-features-1/1.0/conf/html",
                   "ogcapi-features-2/1.0/conf/crs"):  # fmt: skip
        assert f"http://www.opengis.net/spec/{needed}" in classes


def test_api_definition_is_openapi_30_with_the_page_size_and_filter_languages_clients_read(demo_client):
    response = demo_client.get(f"{OGC}/api")
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    document = response.json()
    assert document["openapi"].startswith("3.0")
    limit = document["components"]["parameters"]["limit"]["schema"]
    assert limit["maximum"] == 10000 and limit["default"] == 100
    langs = document["components"]["parameters"]["filter-lang"]["schema"]["enum"]
    assert {"cql2-text", "cql2-json", "cql-text"} <= set(langs)  # cql-text: what GDAL looks for
    grid_params = {p.get("name") for p in document["paths"]["/collections/grids/items"]["get"]["parameters"]}
    assert {"code", "side", "town"} <= grid_params  # queryables as query parameters, for GDAL


def test_collections_have_metadata_links_and_the_offered_crs(demo_client):
    body = demo_client.get(f"{OGC}/collections/grids").json()
    assert body["id"] == "grids" and body["itemType"] == "feature"
    assert body["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert {CRS.format(c) for c in (4326, 4490, 3857, 32649, 4524, 4525, 4545, 4546)} <= set(body["crs"])
    rels = {link["rel"]: link["type"] for link in body["links"] if link["type"] != "text/html"}
    assert rels["items"] == GEOJSON and rels["http://www.opengis.net/def/rel/ogc/1.0/queryables"] == (
        "application/schema+json"
    )


def test_items_page_with_next_links_numbers_and_no_feature_twice(demo_client, demo):
    admin = bearer(demo_client, "admin")
    first = items(demo_client, "incidents", admin, limit=5)
    assert first["numberReturned"] == 5 and first["numberMatched"] == demo.incidents
    ids = all_ids(demo_client, "incidents", admin, limit=5)
    assert len(ids) == len(set(ids)) == demo.incidents
    # Pages after the first continue by key and are not counted again (a count costs a whole scan).
    second = demo_client.get(
        next(link["href"] for link in first["links"] if link["rel"] == "next"), headers=admin
    )
    assert "after=" in second.url.query.decode() and "numberMatched" not in second.json()
    by_offset = items(demo_client, "incidents", admin, limit=5, offset=5)
    assert [f["id"] for f in by_offset["features"]] == [f["id"] for f in second.json()["features"]]
    # With sortby the next link steps by offset and still never repeats a feature.
    sorted_ids = all_ids(demo_client, "incidents", admin, limit=4, sortby="-observed_at")
    assert sorted(sorted_ids) == sorted(ids)
    assert sorted(ids) == sorted(json_api_incident_ids(demo_client, admin))


def test_one_item_by_id_and_unknown_ones_are_404(demo_client):
    feature = demo_client.get(f"{OGC}/collections/grids/items/LJ-GQ-03")
    assert feature.status_code == 200 and feature.headers["content-type"] == GEOJSON
    assert feature.json()["properties"]["code"] == "LJ-GQ-03"
    for path in ("/collections/grids/items/NOPE", "/collections/nope", "/collections/nope/items"):
        response = demo_client.get(OGC + path)
        assert response.status_code == 404 and response.json()["code"] == "NotFound"


def test_a_person_opening_the_url_gets_html(demo_client):
    for path in ("", "/collections", "/collections/grids", "/collections/grids/items?limit=3",
                 "/collections/grids/items/LJ-GQ-03", "/conformance", "/collections/grids/queryables"):  # fmt: skip
        response = demo_client.get(OGC + path, headers={"Accept": "text/html"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "LJ-GQ-03" in demo_client.get(f"{OGC}/collections/grids/items?f=html").text


# --- Part 2: CRS by reference --------------------------------------------------------------------


@pytest.mark.parametrize("epsg", [4490, 4326, 32649, 4525, 3857])
def test_items_in_another_crs_carry_its_axis_order_and_a_content_crs_header(demo_client, epsg):
    plain = items(demo_client, "grids", limit=1)
    response = demo_client.get(f"{OGC}/collections/grids/items", params={"limit": 1, "crs": CRS.format(epsg)})
    assert response.headers["Content-Crs"] == f"<{CRS.format(epsg)}>"
    lon, lat = np.array(plain["features"][0]["geometry"]["coordinates"][0][0]).T
    first, second = np.array(response.json()["features"][0]["geometry"]["coordinates"][0][0]).T
    # The authority's axis order: lat/lon for EPSG:4326/4490, northing first for Gauss–Krüger.
    x, y = Transformer.from_crs("OGC:CRS84", epsg).transform(lon, lat)
    tolerance = 1e-6 if epsg in (4326, 4490) else 0.01
    assert np.abs(first - x).max() < tolerance and np.abs(second - y).max() < tolerance
    assert items(demo_client, "grids", limit=1)["features"][0]["geometry"]["coordinates"][0][0][0][0] > 100


def test_bbox_in_another_crs_selects_the_same_features(demo_client):
    west, south, east, north = 109.75, 21.40, 110.05, 21.60
    lonlat = [f["id"] for f in items(demo_client, "grids", bbox=f"{west},{south},{east},{north}")["features"]]
    x0, y0 = Transformer.from_crs(4326, 32649, always_xy=True).transform(west, south)
    x1, y1 = Transformer.from_crs(4326, 32649, always_xy=True).transform(east, north)
    utm = items(demo_client, "grids", bbox=f"{x0},{y0},{x1},{y1}", **{"bbox-crs": CRS.format(32649)})
    assert lonlat and set(lonlat) <= {f["id"] for f in utm["features"]}


# --- Part 3: queryables and CQL2 filters ------------------------------------------------------------


def test_queryables_are_json_schema(demo_client):
    response = demo_client.get(
        f"{OGC}/collections/incidents/queryables", headers=bearer(demo_client, "admin")
    )
    assert response.headers["content-type"] == "application/schema+json"
    properties = response.json()["properties"]
    assert properties["observed_at"] == {"type": "string", "format": "date-time", "title": "seen at"}
    assert properties["geometry"]["format"] == "geometry-any"


def _incidents(client, headers):
    body = client.get("/api/v1/incidents", params={"limit": 10000}, headers=headers).json()
    return [f["properties"] for f in body["features"]]


def _lang(text: str) -> dict[str, str]:
    return {"filter": text} if not text.startswith("{") else {"filter": text, "filter-lang": "cql2-json"}


FILTERS = [
    ("severity = 'high'", lambda i: i["severity"] == "high"),
    ("severity <> 'high'", lambda i: i["severity"] != "high"),
    ("border_distance_m < 3000", lambda i: i["border_distance_m"] < 3000),
    ("border_distance_m >= 3000 AND severity IN ('high', 'critical')",
     lambda i: i["border_distance_m"] >= 3000 and i["severity"] in ("high", "critical")),
    ("status = 'closed' OR severity = 'low'", lambda i: i["status"] == "closed" or i["severity"] == "low"),
    ("NOT (status = 'closed')", lambda i: i["status"] != "closed"),
    ("description LIKE '%垃圾%'", lambda i: "垃圾" in i["description"]),
    ("description LIKE '%RUBBISH%'", lambda i: "RUBBISH" in i["description"]),  # case-sensitive
    ("border_distance_m BETWEEN 1000 AND 5000", lambda i: 1000 <= i["border_distance_m"] <= 5000),
    ("joint_case_id IS NULL", lambda i: i["joint_case_id"] is None),
    ("CASEI(severity) = CASEI('HIGH')", lambda i: i["severity"] == "high"),
    ("S_INTERSECTS(geometry, BBOX(109.70, 21.40, 109.85, 21.60))",
     lambda i: 109.70 <= i["lon"] <= 109.85 and 21.40 <= i["lat"] <= 21.60),
    ("S_INTERSECTS(geometry, POLYGON((109.7 21.4, 109.85 21.4, 109.85 21.6, 109.7 21.6, 109.7 21.4)))",
     lambda i: 109.70 <= i["lon"] <= 109.85 and 21.40 <= i["lat"] <= 21.60),
    ('{"op": "in", "args": [{"property": "category"}, ["rubbish", "cutting"]]}',
     lambda i: i["category"] in ("rubbish", "cutting")),
]  # fmt: skip


@pytest.mark.parametrize("text, keep", FILTERS, ids=[f[0][:40] for f in FILTERS])
def test_each_cql2_operator_selects_what_the_json_api_list_holds(demo_client, text, keep):
    admin = bearer(demo_client, "admin")
    expected = sorted(i["id"] for i in _incidents(demo_client, admin) if keep(i))
    got = sorted(all_ids(demo_client, "incidents", admin, limit=1000, **_lang(text)))
    assert got == expected


def test_temporal_filters_cut_at_the_instant_given(demo_client):
    admin = bearer(demo_client, "admin")
    every = _incidents(demo_client, admin)
    middle = sorted(i["observed_at"] for i in every)[len(every) // 2]
    after = all_ids(demo_client, "incidents", admin, limit=1000,
                    filter=f"T_AFTER(observed_at, TIMESTAMP('{middle}'))")  # fmt: skip
    assert sorted(after) == sorted(i["id"] for i in every if i["observed_at"] > middle)
    window = f"T_INTERSECTS(observed_at, INTERVAL('{middle}', '..'))"
    assert sorted(all_ids(demo_client, "incidents", admin, limit=1000, filter=window)) == sorted(
        i["id"] for i in every if i["observed_at"] >= middle
    )


def test_sortby_and_properties(demo_client):
    admin = bearer(demo_client, "admin")
    body = items(
        demo_client, "incidents", admin, sortby="-observed_at", properties="id,observed_at", limit=50
    )
    times = [f["properties"]["observed_at"] for f in body["features"]]
    assert times == sorted(times, reverse=True)
    assert set(body["features"][0]["properties"]) == {"id", "observed_at"}


def test_a_filter_never_reaches_sql_as_text(demo_client, demo):
    admin = bearer(demo_client, "admin")
    hostile = "description = 'x''; DROP TABLE incidents; --'"
    assert items(demo_client, "incidents", admin, filter=hostile)["numberMatched"] == 0
    bad_name = demo_client.get(f"{OGC}/collections/incidents/items", headers=admin,
                               params={"filter": '"id; DROP TABLE incidents" = 1'})  # fmt: skip
    assert bad_name.status_code == 400 and bad_name.json()["parameter"] == "filter"
    assert items(demo_client, "incidents", admin)["numberMatched"] == demo.incidents


# --- visibility: the JSON API's rules, not a copy ---------------------------------------------------


@pytest.mark.parametrize("username", ["admin", "gq-member-07", "gq-manager", "lj-officer", "hp-officer"])
def test_every_user_sees_in_ogc_exactly_the_incidents_and_patrols_of_the_json_api(demo_client, username):
    headers = bearer(demo_client, username)
    assert sorted(all_ids(demo_client, "incidents", headers, limit=1000)) == sorted(
        json_api_incident_ids(demo_client, headers)
    )
    patrols = demo_client.get("/api/v1/patrols", params={"limit": 1000}, headers=headers).json()
    assert sorted(all_ids(demo_client, "patrols", headers, limit=1000)) == sorted(
        f["id"] for f in patrols["features"]
    )


def test_anonymous_callers_see_only_the_public_collections(demo_client):
    listed = {c["id"] for c in demo_client.get(f"{OGC}/collections").json()["collections"]}
    assert listed == {"grids", "zones", "border"}
    for private in ("incidents", "patrols", "effort", "joint-cases"):
        response = demo_client.get(f"{OGC}/collections/{private}/items")
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_joint_cases_are_for_those_who_may_see_them(demo_client):
    member = bearer(demo_client, "gq-member-07")
    listed = {c["id"] for c in demo_client.get(f"{OGC}/collections", headers=member).json()["collections"]}
    assert "joint-cases" not in listed and "incidents" in listed
    assert demo_client.get(f"{OGC}/collections/joint-cases/items", headers=member).status_code == 403
    officer = bearer(demo_client, "hp-officer")
    cases = demo_client.get("/api/v1/joint-cases", headers=officer).json()["joint_cases"]
    assert sorted(all_ids(demo_client, "joint-cases", officer)) == sorted(c["id"] for c in cases)


# --- bad input: 400 naming the parameter -------------------------------------------------------------


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "110,22,109,21"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "1,2,3,4", "bbox-crs": CRS.format(2000)}, "bbox-crs"),
        ({"crs": CRS.format(9999)}, "crs"),
        ({"crs": "EPSG:4326x"}, "crs"),
        ({"datetime": "garbage"}, "datetime"),
        ({"datetime": "2026-03-02/2026-03-01"}, "datetime"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"after": "LJ-GQ-03", "sortby": "code"}, "after"),
        ({"sortby": "nope"}, "sortby"),
        ({"sortby": "geometry"}, "sortby"),
        ({"properties": "nope"}, "properties"),
        ({"filter": "code ="}, "filter"),
        ({"filter": "nope = 1"}, "filter"),
        ({"filter": "area_ha = 'big'"}, "filter"),
        ({"filter": "code > 3"}, "filter"),
        ({"filter": "{not json", "filter-lang": "cql2-json"}, "filter"),
        ({"filter": "code = 'x'", "filter-lang": "sql"}, "filter-lang"),
        ({"filter-lang": "cql2-text"}, "filter-lang"),
        ({"bogus": "1"}, "bogus"),
        ({"f": "xml"}, "f"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(demo_client, params, parameter):
    response = demo_client.get(f"{OGC}/collections/grids/items", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue" and body["parameter"] == parameter
    assert parameter in body["description"] or parameter == "filter"


def test_limit_above_the_maximum_is_capped_not_refused(demo_client):
    assert items(demo_client, "grids", limit=1_000_000)["numberReturned"] == 26
    assert json.loads(demo_client.get(f"{OGC}/collections/grids/items?limit=2").text)["numberReturned"] == 2


def test_effort_is_the_json_apis_effort_per_grid_for_the_interval(demo_client):
    admin = bearer(demo_client, "admin")
    interval = "2026-01-01/.."
    grids = items(demo_client, "effort", admin, datetime=interval)["features"]
    expected = demo_client.get("/api/v1/effort", params={"datetime": interval}, headers=admin).json()["grids"]
    assert len(grids) == len(expected) == 32  # Lianjiang's 26 grids and Hepu's 6 zones
    by_code = {g["code"]: g for g in expected}
    for feature in grids:
        mine = feature["properties"]
        assert (
            mine["km"] == by_code[mine["code"]]["km"] and mine["patrols"] == by_code[mine["code"]]["patrols"]
        )
    assert any(f["properties"]["patrols"] > 0 for f in grids)
