"""Parsing of query parameters shared by several endpoints (OGC API conventions)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Path
from pydantic import Field

from patrol.errors import InvalidRequest, Problem

CHINA = ZoneInfo("Asia/Shanghai")

# Row ids and versions are 32-bit integers in both databases: larger numbers are refused (422)
# before they reach PostgreSQL, which would fail on them ("integer out of range") instead of
# answering "no such row".
DB_INT_MAX = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="a row id")]
BodyInt = Annotated[int, Field(ge=1, le=DB_INT_MAX)]


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


def parse_datetime_interval(raw: str | None) -> tuple[datetime | None, datetime | None]:
    """OGC ``datetime``: an instant, or ``start/end`` with ``..`` (or nothing) for an open end.

    Dates without a time mean the whole day in China Standard Time (the users' clock), so
    ``2026-03-01/2026-03-31`` covers all of March locally, as does ``2026-03`` (a month). Times
    without a zone are local too."""
    if raw is None or raw.strip() == "":
        return None, None
    start_text, sep, end_text = raw.strip().partition("/")
    if not sep:
        start = _instant(raw, start_text, end_of_day=False)
        return start, _instant(raw, start_text, end_of_day=True)
    start = None if start_text in ("", "..") else _instant(raw, start_text, end_of_day=False)
    end = None if end_text in ("", "..") else _instant(raw, end_text, end_of_day=True)
    if start is None and end is None:
        raise _bad_time(raw, "both ends are open; leave the parameter out instead")
    if start and end and end <= start:
        raise _bad_time(raw, "the interval is empty or reversed: its end must come after its start")
    return start, end


def _instant(raw: str, text: str, *, end_of_day: bool) -> datetime:
    text = text.strip()
    try:
        if len(text) == 7 and text[4] == "-":  # a month: the whole local month (an extension of OGC)
            year, month = int(text[:4]), int(text[5:])
            first = date(year, month, 1)
            if end_of_day:
                first = date(year + month // 12, month % 12 + 1, 1)
            value = datetime.combine(first, time(), tzinfo=CHINA)
        elif len(text) == 10:  # a date: the whole local day
            day = date.fromisoformat(text)
            value = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), tzinfo=CHINA)
        else:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if value.tzinfo is None:
                value = value.replace(tzinfo=CHINA)
        value = value.astimezone(UTC)
    except ValueError:
        raise _bad_time(raw, f"{text!r} is not an RFC 3339 date or date-time") from None
    except OverflowError:
        raise _bad_time(raw, f"{text!r} is outside the years this service handles") from None
    if not 1900 <= value.year <= 2200:
        raise _bad_time(raw, f"{text!r} is outside the years this service handles (1900–2200)")
    return value


def _bad_time(raw: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"bad datetime {raw!r}: {why}; expected e.g. 2026-03-01/2026-03-31 or 2026-03-01T08:00:00+08:00/..",
        [Problem("bad-datetime", why, {"parameter": "datetime", "value": raw})],
    )
