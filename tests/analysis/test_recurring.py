"""Recurring places from a constructed history whose answer is known."""

from __future__ import annotations

import pandas as pd
import pytest

from patrol.analysis.recurring import recurring_places
from patrol.errors import InvalidRequest

X0, Y0 = 420_000.0, 2_390_000.0  # metres, EPSG:32649, inside Lianjiang


def _history() -> pd.DataFrame:
    rows = [
        # A: nets at one spot in four China-time months. The last one is 23:30 UTC on 31 March,
        # i.e. 07:30 on 1 April in China: April, not March.
        (1, "net", X0, Y0, "2026-01-05T02:00Z"),
        (2, "net", X0 + 50, Y0, "2026-02-10T02:00Z"),
        (3, "net", X0, Y0 + 60, "2026-03-03T02:00Z"),
        (4, "net", X0 + 30, Y0 + 30, "2026-03-31T23:30Z"),
        # B: nets 5 km away, in only two months.
        (5, "net", X0 + 5000, Y0, "2026-01-07T02:00Z"),
        (6, "net", X0 + 5050, Y0, "2026-02-07T02:00Z"),
        (7, "net", X0 + 5000, Y0 + 40, "2026-02-20T02:00Z"),
        # C: cutting at spot A in three months: its own place, never merged with the nets.
        (8, "cutting", X0 + 10, Y0, "2026-04-01T02:00Z"),
        (9, "cutting", X0, Y0 + 10, "2026-05-01T02:00Z"),
        (10, "cutting", X0 + 20, Y0 + 20, "2026-06-01T02:00Z"),
    ]
    frame = pd.DataFrame(rows, columns=["id", "category", "x", "y", "observed_at"])
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True)
    return frame


def test_constructed_history_gives_exactly_the_expected_places():
    places = recurring_places(_history(), distance_m=200, min_months=3)
    assert list(places["category"]) == ["net", "cutting"]  # most incidents first; B is dropped
    net, cutting = places.iloc[0], places.iloc[1]
    assert list(places["place"]) == [1, 2]
    assert net["incident_ids"] == [1, 2, 3, 4]
    assert net["months"] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert net["history"] == {"2026-01": 1, "2026-02": 1, "2026-03": 1, "2026-04": 1}
    assert net["count"] == 4 and net["n_months"] == 4
    assert net["x"] == pytest.approx(X0 + 20) and net["y"] == pytest.approx(Y0 + 22.5)
    assert net["first_observed"] == pd.Timestamp("2026-01-05T02:00Z")
    assert net["last_observed"] == pd.Timestamp("2026-03-31T23:30Z")
    assert cutting["incident_ids"] == [8, 9, 10]
    assert cutting["months"] == ["2026-04", "2026-05", "2026-06"]


def test_two_months_is_enough_when_asked():
    places = recurring_places(_history(), min_months=2)
    assert sorted(map(tuple, places["incident_ids"])) == [(1, 2, 3, 4), (5, 6, 7), (8, 9, 10)]
    b = places[places["incident_ids"].map(lambda ids: ids[0] == 5)].iloc[0]
    assert b["history"] == {"2026-01": 1, "2026-02": 2}


@pytest.mark.parametrize(("gap", "linked"), [(150.0, True), (250.0, False)])
def test_distance_is_respected(gap, linked):
    # Three months at three points along a line, each `gap` metres from the next.
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "category": "net",
            "x": [X0, X0 + gap, X0 + 2 * gap],
            "y": Y0,
            "observed_at": pd.to_datetime(["2026-01-10", "2026-02-10", "2026-03-10"], utc=True),
        }
    )
    places = recurring_places(frame, distance_m=200, min_months=3)
    assert len(places) == (1 if linked else 0)


def test_naive_times_are_utc():
    frame = _history()
    frame["observed_at"] = frame["observed_at"].dt.tz_localize(None)
    places = recurring_places(frame)
    assert places.iloc[0]["months"][-1] == "2026-04"


def test_nothing_recurring_gives_an_empty_frame_with_the_columns():
    places = recurring_places(_history().iloc[:2])
    assert places.empty and "incident_ids" in places.columns


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"distance_m": 0}, "distance_m"),
        ({"distance_m": -5}, "distance_m"),
        ({"distance_m": float("nan")}, "distance_m"),
        ({"min_months": 1}, "min_months"),
        ({"min_months": 2.5}, "min_months"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, field):
    with pytest.raises(InvalidRequest) as err:
        recurring_places(_history(), **kwargs)
    assert err.value.field == field
