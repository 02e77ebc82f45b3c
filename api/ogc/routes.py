"""OGC API – Features under ``/ogc``: Part 1 (core, GeoJSON, HTML, OpenAPI 3.0), Part 2 (CRS by
reference) and Part 3 (CQL2 text and JSON filters), so that QGIS and GDAL can add the service as a
layer and push their filters to it.

Visibility is the JSON API's: anonymous callers read the public collections (grids, zones, border);
a bearer token or browser session reads what its holder may see in the lists
(``patrol.features.collections`` calls the same functions). Errors are OGC exception bodies
(``code``, ``description``, ``parameter``) rather than problem+json, as OGC clients read them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import orjson
import shapely
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pyproj import CRS

from api.deps import NowDep, Public, SessionDep, SettingsDep
from api.ogc import openapi
from api.ogc.params import (
    ITEM_PARAMETERS,
    MAX_LIMIT,
    PAGE_PARAMETERS,
    OGCError,
    bad,
    check_known,
    items_query,
    output_crs,
    properties_wanted,
)
from geodata.crs import CRS84_URI, crs_uri, lonlat_points_to, lonlat_to, offered_crs_uris
from geodata.region import REGION_BBOX
from patrol.errors import AuthenticationFailed, DomainError, NotFound, PermissionDenied
from patrol.features.collections import COLLECTIONS, get_collection, read_item, read_items, readable

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"], include_in_schema=False)
templates = Jinja2Templates(
    directory=[Path(__file__).parent / "templates", Path(__file__).parent.parent / "templates"]
)

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
]


# --- plumbing ---------------------------------------------------------------------------------


def ogc_errors(handler: Callable) -> Callable:
    """Domain refusals as OGC exception bodies: 400 for bad input, 401/403/404 as elsewhere."""

    @wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except OGCError as error:
            return JSONResponse(error.body(), status_code=error.status)
        except AuthenticationFailed as error:
            return JSONResponse(
                {"code": "Unauthorized", "description": error.message},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        except PermissionDenied as error:
            return JSONResponse({"code": "Forbidden", "description": error.message}, status_code=403)
        except NotFound as error:
            return JSONResponse({"code": "NotFound", "description": error.message}, status_code=404)
        except DomainError as error:
            parameter = getattr(error, "field", None) or "filter"
            return JSONResponse(
                {"code": "InvalidParameterValue", "description": error.message, "parameter": parameter},
                status_code=400,
            )

    return wrapper


def _wants_html(request: Request) -> bool:
    f = request.query_params.get("f")
    if f is not None:
        if f not in ("json", "html"):
            raise bad("f", f"{f!r}: use json or html")
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _links(href: str, rel: str, title: str, *, json_type: str = JSON) -> list[dict[str, str]]:
    """The JSON and HTML forms of one resource."""
    sep = "&" if "?" in href else "?"
    return [
        {"href": f"{href}{sep}f=json", "rel": rel, "type": json_type, "title": title},
        {"href": f"{href}{sep}f=html", "rel": "alternate" if rel == "self" else rel, "type": HTML,
         "title": f"{title} (HTML)"},
    ]  # fmt: skip


def _page(request: Request, principal, heading: str, body: dict[str, Any], table=None) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "ogc.html",
        {"principal": principal, "heading": heading, "body": body, "table": table},
    )


def _collection(collection_id: str, principal):
    """The collection the caller asked for: 404 if there is none, 401 for an anonymous caller of a
    signed-in collection, 403 for one they may not read (joint cases for a patrol member)."""
    if collection_id not in COLLECTIONS:
        raise OGCError(404, "NotFound", f"no collection {collection_id!r}; see /ogc/collections")
    if principal is None and not COLLECTIONS[collection_id].public:
        raise AuthenticationFailed(
            f"the collection {collection_id!r} needs a bearer token or a browser session"
        )
    return get_collection(collection_id, principal)


# --- landing, conformance, API definition ---------------------------------------------------------


@router.get("")
@router.get("/")  # the specification's {root}/; clients that do not follow redirects ask for it
@ogc_errors
async def landing(request: Request, principal: Public):
    check_known(request.query_params, PAGE_PARAMETERS)
    base = _base(request)
    body = {
        "title": "红树林巡护 Mangrove Patrol — OGC API – Features",
        "description": "Lianjiang (Guangdong) mangrove protection grids, Hepu (Guangxi) Shankou reserve zones, "
        "the provincial border, patrol effort, patrols, incidents and joint cases.",
        "links": [
            *_links(base, "self", "this document"),
            {"href": f"{base}/api", "rel": "service-desc", "type": OPENAPI, "title": "the API definition (OpenAPI 3.0)"},
            {"href": f"{str(request.base_url).rstrip('/')}/docs", "rel": "service-doc", "type": HTML,
             "title": "the API documentation"},
            *_links(f"{base}/conformance", "conformance", "conformance classes"),
            *_links(f"{base}/collections", "data", "the collections"),
        ],
    }  # fmt: skip
    if _wants_html(request):
        return _page(request, principal, body["title"], body)
    return JSONResponse(body)


@router.get("/conformance")
@ogc_errors
async def conformance(request: Request, principal: Public):
    check_known(request.query_params, PAGE_PARAMETERS)
    body = {"conformsTo": CONFORMANCE}
    if _wants_html(request):
        return _page(request, principal, "Conformance", body, (["class"], [[c] for c in CONFORMANCE]))
    return JSONResponse(body)


@router.get("/api")
@ogc_errors
async def api_definition(request: Request, principal: Public):
    check_known(request.query_params, PAGE_PARAMETERS)
    document = openapi.document(_base(request), principal)
    return JSONResponse(document, media_type=OPENAPI)


# --- collections -----------------------------------------------------------------------------------


def _collection_body(base: str, collection) -> dict[str, Any]:
    href = f"{base}/collections/{collection.id}"
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "keywords": list(collection.keywords),
        "itemType": "feature",
        "extent": {
            "spatial": {"bbox": [list(REGION_BBOX)], "crs": CRS84_URI},
            **({"temporal": {"interval": [[None, None]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}}
               if collection.temporal is not None else {}),
        },
        "crs": offered_crs_uris(),
        "storageCrs": CRS84_URI,
        "links": [
            *_links(href, "self", collection.title),
            *_links(f"{href}/items", "items", "the features", json_type=GEOJSON),
            {"href": f"{href}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": SCHEMA_JSON, "title": "what a filter may name"},
        ],
    }  # fmt: skip


@router.get("/collections")
@ogc_errors
async def collections(request: Request, principal: Public):
    check_known(request.query_params, PAGE_PARAMETERS)
    base = _base(request)
    body = {
        "links": _links(f"{base}/collections", "self", "the collections"),
        "collections": [_collection_body(base, c) for c in readable(principal)],
        "crs": offered_crs_uris(),
    }
    if _wants_html(request):
        rows = [[f'<a href="{base}/collections/{c["id"]}?f=html">{c["id"]}</a>', c["title"], c["description"]]
                for c in body["collections"]]  # fmt: skip
        return _page(request, principal, "Collections", body, (["id", "title", "description"], rows))
    return JSONResponse(body)


@router.get("/collections/{collection_id}")
@ogc_errors
async def collection(collection_id: str, request: Request, principal: Public):
    check_known(request.query_params, PAGE_PARAMETERS)
    found = _collection(collection_id, principal)
    body = _collection_body(_base(request), found)
    if _wants_html(request):
        return _page(request, principal, found.title, body)
    return JSONResponse(body)


@router.get("/collections/{collection_id}/queryables")
@ogc_errors
async def queryables(collection_id: str, request: Request, principal: Public):
    check_known(request.query_params, PAGE_PARAMETERS)
    found = _collection(collection_id, principal)
    href = f"{_base(request)}/collections/{collection_id}/queryables"
    body = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": href,
        "type": "object",
        "title": found.title,
        "properties": {name: q.schema() for name, q in found.queryables().items()},
        "additionalProperties": False,
    }
    if _wants_html(request):
        rows = [[name, json.dumps(q.schema(), ensure_ascii=False)] for name, q in found.queryables().items()]
        return _page(request, principal, f"{found.title}: queryables", body, (["property", "schema"], rows))
    return JSONResponse(body, media_type=SCHEMA_JSON)


# --- items -------------------------------------------------------------------------------------------


@router.get("/collections/{collection_id}/items")
@ogc_errors
async def items(
    collection_id: str,
    request: Request,
    principal: Public,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
):
    found = _collection(collection_id, principal)
    params = request.query_params
    q = items_query(params, found)
    crs = output_crs(params)
    wanted = properties_wanted(params, found)
    html = _wants_html(request)
    first = q.offset == 0 and q.after is None
    page = await run_in_threadpool(
        read_items, session, principal, collection_id, q, settings, now=now, count=first
    )
    features = _features(page, crs, wanted)
    href = f"{_base(request)}/collections/{collection_id}/items"
    kept = [(k, v) for k, v in params.multi_items() if k not in ("offset", "after", "f")]
    here = list(kept)
    if q.after is not None:
        here.append(("after", q.after))
    if q.offset:
        here.append(("offset", q.offset))
    links = _links(f"{href}?{urlencode(here)}" if here else href, "self", "this page", json_type=GEOJSON)
    if page.more:
        # The default order continues by key (constant cost per page); a sortby order by offset.
        step = ("offset", q.offset + q.limit) if q.sortby else ("after", page.ids[-1])
        query = urlencode([*kept, step])
        links.append({"href": f"{href}?{query}", "rel": "next", "type": GEOJSON, "title": "next page"})
    if q.offset > 0:
        query = urlencode([*kept, ("offset", max(0, q.offset - q.limit))])
        links.append({"href": f"{href}?{query}", "rel": "prev", "type": GEOJSON, "title": "previous page"})
    links.append({"href": f"{_base(request)}/collections/{collection_id}", "rel": "collection", "type": JSON,
                  "title": found.title})  # fmt: skip
    body = {
        "type": "FeatureCollection",
        "features": features,
        **({"numberMatched": page.number_matched} if page.number_matched is not None else {}),
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
    queryables_link = {"href": f"{_base(request)}/collections/{collection_id}/queryables",
                       "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": SCHEMA_JSON}  # fmt: skip
    headers = {"Content-Crs": f"<{crs_uri(crs)}>", "Link": _link_header(links + [queryables_link])}
    if html:
        names = wanted or (list(features[0]["properties"]) if features else [])
        rows = [[f["id"], *(_cell(f["properties"].get(n)) for n in names)] for f in features]
        return _page(request, principal, f"{found.title}: features", body, (["id", *names], rows))
    return _geojson(body, headers)


@router.get("/collections/{collection_id}/items/{feature_id}")
@ogc_errors
async def item(
    collection_id: str, feature_id: str, request: Request, principal: Public, session: SessionDep,
    settings: SettingsDep,
):  # fmt: skip
    found = _collection(collection_id, principal)
    check_known(request.query_params, ITEM_PARAMETERS)
    crs = output_crs(request.query_params)
    page = await run_in_threadpool(read_item, session, principal, collection_id, feature_id, settings)
    if not page.ids:
        raise OGCError(
            404, "NotFound", f"no feature {feature_id!r} in {collection_id!r} (or not one you may see)"
        )
    feature = _features(page, crs, None)[0]
    href = f"{_base(request)}/collections/{collection_id}"
    feature["links"] = [
        *_links(f"{href}/items/{feature_id}", "self", "this feature", json_type=GEOJSON),
        {"href": href, "rel": "collection", "type": JSON, "title": found.title},
    ]
    if _wants_html(request):
        rows = [[k, _cell(v)] for k, v in feature["properties"].items()]
        return _page(
            request, principal, f"{found.title}: {feature_id}", feature, (["property", "value"], rows)
        )
    return _geojson(feature, {"Content-Crs": f"<{crs_uri(crs)}>"})


def _link_header(links: list[dict[str, str]]) -> str:
    """The page's links again as an HTTP Link header (RFC 8288), for clients that read them there."""
    return ", ".join(f'<{link["href"]}>; rel="{link["rel"]}"; type="{link["type"]}"' for link in links)


def _geojson(body: dict[str, Any], headers: dict[str, str]) -> Response:
    # orjson: a page of 1,000 features is most of the answer; it writes NaN as null, never as NaN.
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=_plain)
    return Response(content, media_type=GEOJSON, headers=headers)


def _plain(value: Any) -> Any:
    """Values orjson does not know (numpy scalars come as such from pandas-built rows)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _features(page, crs: CRS, wanted: list[str] | None) -> list[dict[str, Any]]:
    decimals = 7 if crs.is_geographic else 3  # about 1 cm either way
    if page.lonlat is not None:  # points: transformed as coordinate arrays, no geometry objects
        x, y = lonlat_points_to(*page.lonlat, crs)
        geometries = [
            {"type": "Point", "coordinates": [a, b]}
            for a, b in zip(np.round(x, decimals).tolist(), np.round(y, decimals).tolist(), strict=True)
        ]
    else:
        geometries = _geometries(page.geometries, crs, decimals)
    features = []
    for fid, geometry, props in zip(page.ids, geometries, page.properties, strict=True):
        if wanted is not None:
            props = {k: props.get(k) for k in wanted}
        features.append({"type": "Feature", "id": fid, "geometry": geometry, "properties": props})
    return features


def _geometries(geometries, crs: CRS, decimals: int) -> list[dict[str, Any] | None]:
    array = np.asarray(geometries, dtype=object)
    present = np.array([g is not None for g in geometries], dtype=bool)
    if present.any():
        moved = shapely.transform(lonlat_to(array[present], crs), lambda xy: np.round(xy, decimals))
        if crs.to_authority() == ("OGC", "CRS84"):
            moved = shapely.orient_polygons(moved)  # RFC 7946 winding
        array[present] = moved
    return [None if text is None else orjson.loads(text) for text in shapely.to_geojson(array)]


__all__ = ["MAX_LIMIT", "router"]
