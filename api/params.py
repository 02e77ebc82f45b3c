"""Parsing of query parameters shared by several endpoints (OGC API conventions)."""

from __future__ import annotations

import math

from patrol.errors import InvalidRequest, Problem


def parse_bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in WGS84, as OGC API Features and RFC 7946 define it."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise _bad(raw, f"expected 4 comma-separated numbers, got {len(parts)}")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise _bad(raw, "every value must be a number") from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise _bad(raw, "values must be finite numbers")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise _bad(raw, "longitudes must lie within -180..180")
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise _bad(raw, "latitudes must lie within -90..90 (is the order lon,lat,lon,lat?)")
    if miny > maxy:
        raise _bad(raw, "the minimum latitude is larger than the maximum")
    if minx > maxx:
        raise _bad(
            raw,
            "the minimum longitude is larger than the maximum (boxes across the antimeridian are not supported)",
        )
    return minx, miny, maxx, maxy


def _bad(raw: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"bad bbox {raw!r}: {why}; expected minlon,minlat,maxlon,maxlat",
        [Problem("bad-bbox", why, {"parameter": "bbox", "value": raw})],
    )
