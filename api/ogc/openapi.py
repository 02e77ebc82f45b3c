"""The OpenAPI 3.0 definition of ``/ogc`` (``rel=service-desc``).

Written out here rather than taken from FastAPI (which writes 3.1) because the clients that matter
read it: QGIS takes the page size from the ``limit`` parameter's ``maximum``/``default``, and GDAL
pushes attribute filters to the server only when an items path lists ``filter-lang`` with
``cql-text`` in its enum and the queryables as query parameters.
"""

from __future__ import annotations

from typing import Any

from api.ogc.params import DEFAULT_LIMIT, MAX_LIMIT
from geodata.crs import offered_crs_uris
from patrol.features.collections import readable

FILTER_LANGS = ["cql2-text", "cql2-json", "cql-text"]


def _parameter(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **extra,
    }


def _common() -> dict[str, dict[str, Any]]:
    crs = {"type": "string", "format": "uri", "enum": offered_crs_uris()}
    return {
        "f": _parameter("f", "json (default) or html", {"type": "string", "enum": ["json", "html"]}),
        "limit": _parameter(
            "limit", "features per page", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            style="form",
            explode=False,
        ),
        "offset": _parameter("offset", "features to skip (from the next link)", {"type": "integer", "minimum": 0}),
        "bbox": _parameter(
            "bbox", "minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat)",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}, style="form", explode=False,
        ),
        "bbox-crs": _parameter("bbox-crs", "the CRS of bbox", crs),
        "crs": _parameter("crs", "the CRS of the response geometries", crs),
        "datetime": _parameter(
            "datetime", "an instant or interval (.. for an open end)", {"type": "string"}, style="form", explode=False
        ),
        "filter": _parameter("filter", "a CQL2 filter", {"type": "string"}),
        "filter-lang": _parameter("filter-lang", "the filter's encoding", {"type": "string", "enum": FILTER_LANGS,
                                                                             "default": "cql2-text"}),
        "filter-crs": _parameter("filter-crs", "the CRS of geometries in the filter", crs),
        "sortby": _parameter("sortby", "comma-separated properties, - for descending", {"type": "string"}),
        "properties": _parameter("properties", "comma-separated properties to return", {"type": "string"}),
    }  # fmt: skip


def _response(description: str, media: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "object"}}}}


def document(base: str, principal) -> dict[str, Any]:
    params = _common()
    components = {"parameters": params}
    ref = {name: {"$ref": f"#/components/parameters/{name}"} for name in params}
    items_params = [ref[n] for n in ("f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "filter",
                                     "filter-lang", "filter-crs", "sortby", "properties")]  # fmt: skip
    errors = {
        "400": _response("bad parameter", "application/json"),
        "404": _response("not found", "application/json"),
    }
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "Landing page", "operationId": "landing", "parameters": [ref["f"]],
                      "responses": {"200": _response("the landing page", "application/json")}}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "conformance",
                                 "parameters": [ref["f"]],
                                 "responses": {"200": _response("the classes", "application/json")}}},
        "/collections": {"get": {"summary": "The collections", "operationId": "collections",
                                 "parameters": [ref["f"]],
                                 "responses": {"200": _response("the collections", "application/json")}}},
        "/collections/{collectionId}/items": {"get": {
            "summary": "Features of a collection", "operationId": "items",
            "parameters": [{"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"}},
                           *items_params],
            "responses": {"200": _response("features", "application/geo+json"), **errors}}},
    }  # fmt: skip
    for collection in readable(principal):
        path = f"/collections/{collection.id}"
        queryables = [
            _parameter(name, q.title or name, q.schema())
            for name, q in collection.queryables().items()
            if q.type != "geometry"
        ]
        paths[path] = {
            "get": {
                "summary": f"{collection.title}: metadata",
                "operationId": f"describe-{collection.id}",
                "parameters": [ref["f"]],
                "responses": {"200": _response("the collection", "application/json"), **errors},
            }
        }
        paths[f"{path}/queryables"] = {
            "get": {
                "summary": f"{collection.title}: queryables",
                "operationId": f"queryables-{collection.id}",
                "responses": {"200": _response("JSON Schema", "application/schema+json")},
            }
        }
        paths[f"{path}/items"] = {
            "get": {
                "summary": f"{collection.title}: features",
                "operationId": f"items-{collection.id}",
                "parameters": [*items_params, *queryables],
                "responses": {"200": _response("features", "application/geo+json"), **errors},
            }
        }
        paths[f"{path}/items/{{featureId}}"] = {"get": {
            "summary": f"{collection.title}: one feature", "operationId": f"item-{collection.id}",
            "parameters": [{"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}},
                           ref["f"], ref["crs"]],
            "responses": {"200": _response("the feature", "application/geo+json"), **errors}}}  # fmt: skip
    return {
        "openapi": "3.0.3",
        "info": {"title": "Mangrove Patrol — OGC API – Features", "version": "1.0.0",
                 "description": "Grids, zones, border, effort, patrols, incidents and joint cases. "
                                "Sign in with a bearer token (Authorization: Bearer …) for the non-public collections."},
        "servers": [{"url": base}],
        "components": {**components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{}, {"bearer": []}],
        "paths": paths,
    }  # fmt: skip
