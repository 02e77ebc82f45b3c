"""The OpenAPI document, made true to what the service answers.

FastAPI documents each operation's success answer and a 422 shaped like its own validation error.
This module post-processes the generated document, for every operation, including those added
after it was written, from what the route declares:

* the problem+json errors (RFC 9457, one shared ``Problem`` schema) the operation can give:
  400 for an unreadable body; 401 wherever a bearer token or session is read (``api.deps.Access``,
  also on public routes, where a bad token is refused); 403 for routes that need a role, that
  check more than sign-in, or that write (CSRF); 404 for operations with path parameters and writes whose body names rows; 409 for
  writes (stale versions, duplicates, repeats in flight); 413 and 415 for file uploads; 422
  always; 429 for the sign-in (the OAuth2 token URL); 503 always (the database out of reach);
* the real success content types: a route that declares its content with ``responses=`` (see
  :func:`content`, :data:`FEATURE_COLLECTION`, :data:`CSV`…) loses the ``application/json`` guess
  FastAPI adds for routes that return a ``Response`` themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.deps import Access
from api.problems import PROBLEM_JSON
from api.routing import all_routes, original

GEOJSON = "application/geo+json"
SAFE_METHODS = frozenset({"get", "head", "options"})

SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "title": "Problem",
        "description": "An error, as RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "description": "urn:mangrove-patrol:problem:… or about:blank"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "what is wrong, in words"},
            "instance": {"type": "string", "description": "the path asked for"},
            "parameter": {"type": "string", "description": "the parameter or field the refusal is about"},
            "problems": {
                "type": "array",
                "description": "each problem found, e.g. each invalid feature or field",
                "items": {"type": "object", "required": ["kind", "message"]},
            },
            "errors": {
                "type": "array",
                "description": "each invalid parameter or field (validation errors)",
                "items": {"type": "object", "required": ["location", "message"]},
            },
        },
    },
    "Feature": {
        "type": "object",
        "title": "Feature",
        "description": "An RFC 7946 GeoJSON Feature (WGS84 lon/lat).",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": ["string", "integer"]},
            "geometry": {"type": ["object", "null"]},
            "properties": {"type": ["object", "null"]},
        },
    },
    "FeatureCollection": {
        "type": "object",
        "title": "FeatureCollection",
        "description": "An RFC 7946 GeoJSON FeatureCollection, with OGC API paging fields where a list is paged.",
        "required": ["type", "features"],
        "properties": {
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
            "numberMatched": {"type": "integer"},
            "numberReturned": {"type": "integer"},
            "links": {"type": "array", "items": {"type": "object"}},
        },
    },
}

ERRORS: dict[int, str] = {
    400: "The request body cannot be read (malformed JSON, form or multipart).",
    401: "No valid bearer token or browser session: sign in (a token sent to a public route is checked too).",
    403: "Signed in, but not allowed: a role is missing, the object is not yours to change, or a "
    "browser-session write lacks its CSRF token.",
    404: "No such object, or none you may see.",
    409: "Conflict: the object changed meanwhile (send the version you read), exists already, or is "
    "in a state that does not allow this.",
    413: "The upload is larger than the service's limit.",
    415: "The uploaded file is not of a format this operation reads.",
    422: "A parameter, field or uploaded content is invalid; the problem names it.",
    429: "Too many attempts: wait for Retry-After seconds.",
    503: "The database cannot be reached just now: try again after Retry-After seconds.",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: RETRY_AFTER,
    503: RETRY_AFTER,
}


def content(*media_types: str, schema: dict | None = None, description: str = "Success") -> dict:
    """A success answer for ``responses=``: the media types a route really sends."""
    return {
        "description": description,
        "content": {m: {"schema": schema} if schema else {} for m in media_types},
    }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


FEATURE = content(GEOJSON, schema=_ref("Feature"), description="A GeoJSON Feature")
FEATURE_COLLECTION = content(GEOJSON, schema=_ref("FeatureCollection"), description="GeoJSON")
CSV = "text/csv"
IMAGES = ("image/jpeg", "image/png", "image/webp")


def _access(route) -> Access | None:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        for dependency in dependant.dependencies:
            if isinstance(dependency.call, Access):
                return dependency.call
            stack.append(dependency)
    return None


def _token_urls(schema: dict) -> set[str]:
    urls = set()
    for scheme in schema.get("components", {}).get("securitySchemes", {}).values():
        for flow in scheme.get("flows", {}).values():
            if "tokenUrl" in flow:
                urls.add(flow["tokenUrl"])
    return urls


def error_statuses(path: str, method: str, operation: dict, access: Access | None, token_urls) -> list[int]:
    """The error answers an operation can give, from what its route declares."""
    body_types = set(operation.get("requestBody", {}).get("content", {}))
    writes = method not in SAFE_METHODS
    codes = {422, 503}
    if body_types:
        codes.add(400)
    if access is not None:
        codes.add(401)
        if access.roles or not access.public or writes:
            codes.add(403)
        if writes and not access.public:
            codes.add(409)
    if "{" in path or (writes and body_types and access is not None and not access.public):
        codes.add(404)  # a row named in the path, or in the body of a write (incident_ids…)
    if "multipart/form-data" in body_types:
        codes |= {413, 415}
    if path in token_urls:
        codes.add(429)
    return sorted(codes)


def _problem_response(status: int) -> dict:
    response = {"description": ERRORS[status], "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}
    if status in ERROR_HEADERS:
        response["headers"] = ERROR_HEADERS[status]
    return response


def _true_success_content(responses: dict) -> None:
    """Drop FastAPI's ``application/json`` guess (an empty schema) where the route declared what
    it really sends."""
    for status, response in responses.items():
        media = response.get("content", {})
        if (
            status.startswith("2")
            and len(media) > 1
            and "application/json" in media
            and media["application/json"].get("schema") in ({}, None)
        ):
            media.pop("application/json")


def complete(schema: dict, routes) -> dict:
    """``schema`` (FastAPI's document) with every operation's errors and success content."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(SCHEMAS)
    token_urls = _token_urls(schema)
    for route in all_routes(routes):
        if not isinstance(original(route), APIRoute) or not route.include_in_schema:
            continue
        access = _access(route)
        for method in route.methods:
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            _true_success_content(responses)
            for status in error_statuses(route.path_format, method.lower(), operation, access, token_urls):
                responses[str(status)] = _problem_response(status)
            for status, response in responses.items():  # errors a route declared itself (423…)
                problem = response.get("content", {}).get(PROBLEM_JSON)
                if status[0] in "45" and problem is not None and not problem.get("schema"):
                    problem["schema"] = _ref("Problem")
            operation["responses"] = dict(sorted(responses.items()))
    # FastAPI's own validation-error shapes are no longer answered.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json. FastAPI builds its document once and again
    when routes are added; each new build is completed once."""
    generate = app.openapi
    completed: list[dict] = []  # the document last completed

    def openapi() -> dict:
        schema = generate()
        if not completed or schema is not completed[0]:
            complete(schema, app.routes)
            completed[:] = [schema]
        return schema

    app.openapi = openapi
