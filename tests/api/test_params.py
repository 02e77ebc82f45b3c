"""Query parameters shared by the endpoints: OGC ``datetime`` (local China dates) and ``bbox``."""

from datetime import UTC, datetime

import pytest

from api.params import parse_bbox, parse_datetime_interval
from patrol.errors import InvalidRequest


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2026-03-02", (utc(2026, 3, 1, 16), utc(2026, 3, 2, 16))),  # a local day
        ("2026-03", (utc(2026, 2, 28, 16), utc(2026, 3, 31, 16))),  # a local month
        ("2026-12", (utc(2026, 11, 30, 16), utc(2026, 12, 31, 16))),
        ("2026-03-01/2026-03-31", (utc(2026, 2, 28, 16), utc(2026, 3, 31, 16))),
        ("2026-03-01T08:00:00Z/..", (utc(2026, 3, 1, 8), None)),
        ("../2026-03-01T08:00:00+08:00", (None, utc(2026, 3, 1, 0))),
        (None, (None, None)),
    ],
)
def test_datetime_intervals(raw, expected):
    assert parse_datetime_interval(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["yesterday", "2026-13", "2026-03-31/2026-03-01", "../..", "2026-02-30", "0001-01-01", "9999-12-31",
     "0001-01-01T00:00:00+08:00", "9999-12"],
)  # fmt: skip
def test_bad_datetimes_are_named(raw):
    with pytest.raises(InvalidRequest, match="bad datetime"):
        parse_datetime_interval(raw)


def test_bbox():
    assert parse_bbox("109.7,21.4,110.0,21.6") == (109.7, 21.4, 110.0, 21.6)
    for raw in ("1,2,3", "a,b,c,d", "0,95,1,96", "2,0,1,1"):
        with pytest.raises(InvalidRequest):
            parse_bbox(raw)
