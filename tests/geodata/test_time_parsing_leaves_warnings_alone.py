"""Reading times never touches the process's warning filters. They are shared by every thread: a
request that parsed a track under ``simplefilter("error")`` turned another request's harmless
library warning into a 500 (FastAPI building a route's parameters on first use), and interleaved
``catch_warnings`` exits could leave "error" in place for good."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from geodata.trackio.times import BadTime, parse_times
from patrol.photos import clean_image
from patrol.settings import IncidentSettings


@pytest.fixture
def untouchable_warnings(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the warning filters are process-wide: leave them alone")

    for name in ("catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"):
        monkeypatch.setattr(warnings, name, refuse)


def test_utc_times_read_without_touching_warning_filters(untouchable_warnings):
    ms, naive, sentinels = parse_times(["2026-03-02T08:00:00Z", "2026-03-02T08:00:01.500Z", ""])
    assert ms[0] == np.datetime64("2026-03-02T08:00:00", "ms").view(np.int64)
    assert ms[1] - ms[0] == 1500 and (naive, sentinels) == (0, 0)


def test_an_offset_numpy_would_ignore_is_read_or_refused_not_dropped(untouchable_warnings):
    # numpy reads "…+08:00" by warning and dropping the offset: such a chunk takes the slow path.
    ms, _, _ = parse_times(["2026-03-02T08:00:00+08:00", "2026-03-02T00:00:00Z"])
    assert ms[0] == ms[1]
    with pytest.raises(BadTime):
        parse_times(["2026-03-02T08:00:00+08:00Z"])


def test_naive_times_read_without_touching_warning_filters(untouchable_warnings):
    ms, naive, _ = parse_times(["2026-03-02T08:00:00", "2026-03-02 08:00:05"])
    assert naive == 2 and ms[1] - ms[0] == 5000


def test_photos_checked_without_touching_warning_filters(untouchable_warnings):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(buffer, "JPEG")
    clean = clean_image(buffer.getvalue(), IncidentSettings())
    assert (clean.width, clean.height) == (64, 48)
