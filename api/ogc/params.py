"""Query parameters of OGC API – Features, checked and turned into a domain ``ItemsQuery``.

Every refusal is an :class:`OGCError` (400) that names the parameter and says what is wrong, as
the OGC test suite and GDAL expect; an unknown parameter is refused too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import shapely
from pyproj import CRS

from api.params import parse_datetime_interval
from geodata.crs import crs_from_uri, offered_crs_uris, to_lonlat
from patrol.errors import DomainError
from patrol.features import cql2
from patrol.features.collections import PROPERTIES, Collection, ItemsQuery

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
ITEMS_PARAMETERS = frozenset(
    {"f", "bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "after", "filter", "filter-lang",
     "filter-crs", "sortby", "properties"}
)  # fmt: skip
ITEM_PARAMETERS = frozenset({"f", "crs"})
PAGE_PARAMETERS = frozenset({"f"})


class OGCError(Exception):
    """An OGC API exception: HTTP status, a code and a description naming the parameter."""

    def __init__(self, status: int, code: str, description: str, parameter: str | None = None):
        super().__init__(description)
        self.status, self.code, self.description, self.parameter = status, code, description, parameter

    def body(self) -> dict:
        body = {"code": self.code, "description": self.description}
        if self.parameter:
            body["parameter"] = self.parameter
        return body


def bad(parameter: str, why: str) -> OGCError:
    return OGCError(400, "InvalidParameterValue", f"{parameter}: {why}", parameter)


def check_known(
    params: Mapping[str, str], allowed: frozenset[str], extra: frozenset[str] = frozenset()
) -> None:
    unknown = sorted(set(params) - allowed - extra)
    if unknown:
        raise OGCError(
            400,
            "InvalidParameterValue",
            f"unknown query parameter {unknown[0]!r}; this resource takes {', '.join(sorted(allowed | extra))}",
            unknown[0],
        )


def output_crs(params: Mapping[str, str]) -> CRS:
    raw = params.get("crs")
    if raw is None:
        return CRS.from_user_input("OGC:CRS84")
    crs = crs_from_uri(raw)
    if crs is None:
        raise bad("crs", f"{raw!r} is not offered; use one of {', '.join(offered_crs_uris())}")
    return crs


def items_query(params: Mapping[str, str], collection: Collection) -> ItemsQuery:
    queryables = collection.queryables()
    equals_names = frozenset(n for n, q in queryables.items() if q.type != "geometry")
    check_known(params, ITEMS_PARAMETERS, equals_names)
    output_crs(params)  # checked here so that a bad crs is refused before any work
    limit = _int(params, "limit", DEFAULT_LIMIT, low=1)
    offset = _int(params, "offset", 0, low=0)
    bbox, area = _bbox(params)
    start = end = None
    if "datetime" in params:
        try:
            start, end = parse_datetime_interval(params["datetime"])
        except DomainError as error:
            raise bad("datetime", error.message) from None
    filter_tree, to_storage = None, None
    if "filter" in params:
        if not params["filter"].strip():
            raise bad("filter", "empty; leave the parameter out instead")
        filter_crs = _crs(params, "filter-crs")
        try:
            filter_tree = cql2.parse(params["filter"], params.get("filter-lang"))
        except cql2.FilterError as error:
            raise bad(error.parameter, error.message) from None
        if filter_crs is not None:
            to_storage = lambda g: to_lonlat(g, filter_crs)  # noqa: E731
    elif "filter-lang" in params or "filter-crs" in params:
        name = "filter-lang" if "filter-lang" in params else "filter-crs"
        raise bad(name, "given without a filter")
    sortby = _sortby(params.get("sortby"), queryables)
    after = _after(params, collection, sortby, offset)
    equals = {name: params[name] for name in equals_names if name in params}
    return ItemsQuery(
        bbox=bbox, area=area, start=start, end=end, filter=filter_tree, filter_to_storage=to_storage,
        equals=equals, sortby=sortby, limit=min(limit, MAX_LIMIT), offset=offset, after=after,
    )  # fmt: skip


def properties_wanted(params: Mapping[str, str], collection: Collection) -> list[str] | None:
    raw = params.get("properties")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    known = PROPERTIES[collection.id]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise bad("properties", f"unknown property {unknown[0]!r}; choose from {', '.join(known)}")
    return names


def _after(params: Mapping[str, str], collection: Collection, sortby, offset: int):
    raw = params.get("after")
    if raw is None:
        return None
    if sortby or offset:
        raise bad("after", "continues the default order only, without sortby or offset")
    if collection.id_column.type.python_type is int:
        try:
            return int(raw)
        except ValueError:
            raise bad("after", f"{raw!r} is not a feature id of this collection") from None
    return raw


def _int(params: Mapping[str, str], name: str, default: int, *, low: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(name, f"{raw!r} is not a whole number") from None
    if value < low:
        raise bad(name, f"must be at least {low}")
    if value > 2**31:
        raise bad(name, "is too large")
    return value


def _crs(params: Mapping[str, str], name: str) -> CRS | None:
    raw = params.get(name)
    if raw is None:
        return None
    crs = crs_from_uri(raw)
    if crs is None:
        raise bad(name, f"{raw!r} is not offered; use one of {', '.join(offered_crs_uris())}")
    return None if crs.to_authority() == ("OGC", "CRS84") else crs


def _bbox(params: Mapping[str, str]):
    """(lon/lat box, exact area when the box was drawn in another CRS) of ``bbox``/``bbox-crs``."""
    crs = _crs(params, "bbox-crs")
    raw = params.get("bbox")
    if raw is None:
        if "bbox-crs" in params:
            raise bad("bbox-crs", "given without a bbox")
        return None, None
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise bad("bbox", f"expected 4 (or 6) comma-separated numbers, got {len(parts)}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise bad("bbox", "every value must be a number") from None
    if not all(math.isfinite(v) for v in values):
        raise bad("bbox", "values must be finite numbers")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    minx, miny, maxx, maxy = values
    if minx > maxx or miny > maxy:
        raise bad("bbox", "the lower corner must come first (minx,miny,maxx,maxy)")
    if crs is None:
        if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
            raise bad(
                "bbox", "longitudes lie within -180..180 and latitudes within -90..90 (order lon,lat,lon,lat)"
            )
        return (minx, miny, maxx, maxy), None
    # A box in another CRS is a quadrilateral in lon/lat: densify its edges, then filter by its
    # lon/lat bounds (the index) and by the shape itself.
    drawn = shapely.segmentize(shapely.box(minx, miny, maxx, maxy), max(maxx - minx, maxy - miny) / 32 or 1)
    area = to_lonlat(drawn, crs)
    if not area.is_valid or area.is_empty or not all(math.isfinite(v) for v in area.bounds):
        raise bad("bbox", f"the box does not lie within the area of {params['bbox-crs']}")
    return tuple(area.bounds), area


def _sortby(raw: str | None, queryables) -> tuple[tuple[str, bool], ...]:
    if raw is None:
        return ()
    keys = []
    for part in raw.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-")
        if not name:
            raise bad("sortby", "an empty sort key")
        if name not in queryables or queryables[name].type == "geometry":
            sortable = ", ".join(n for n, q in queryables.items() if q.type != "geometry")
            raise bad("sortby", f"cannot sort by {name!r}; sortable: {sortable}")
        keys.append((name, descending))
    return tuple(keys)


__all__ = ["OGCError", "bad", "check_known", "items_query", "output_crs", "properties_wanted"]
