"""The stored fixes blob (``patrol_fixes`` reads what ``_pack_fixes`` wrote, and blobs written
before WGS84 copies were left out)."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import numpy as np

from geodata.cleaning import Transport, clean
from geodata.datum import Datum, to_wgs84
from geodata.fixes import TrackFixes
from patrol.patrols import _pack_fixes, patrol_fixes


def _track(datum: Datum):
    n = 300
    lon = 109.76 + np.arange(n) * 1e-5
    lat = 21.52 + np.arange(n) * 1e-5
    time = np.datetime64("2026-03-02T00:00:00", "ms") + np.arange(n) * np.timedelta64(1, "s")
    time[7] = np.datetime64("NaT")
    fixes = TrackFixes(
        lon, lat, time, np.full(n, 2.0), np.repeat(np.arange(3, dtype=np.int32), 100), "GPX 1.1"
    )
    wlon, wlat = to_wgs84(fixes.lon, fixes.lat, datum)
    cleaned = clean(TrackFixes(wlon, wlat, fixes.time, fixes.ele, fixes.segment, "GPX 1.1"), Transport.FOOT)
    return fixes, cleaned


class _Session:
    def __init__(self, data: bytes):
        self.data = data

    def get(self, _model, _id):
        return SimpleNamespace(data=self.data)


def _members(blob: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return set(archive.namelist())


def test_a_wgs84_track_is_stored_once_and_read_back_whole():
    fixes, cleaned = _track(Datum.WGS84)
    blob = _pack_fixes(fixes, cleaned)
    assert "wgs84_lon.npy" not in _members(blob)
    data = patrol_fixes(_Session(blob), 1)
    assert np.array_equal(data["wgs84_lon"], fixes.lon) and np.array_equal(data["wgs84_lat"], fixes.lat)
    assert np.array_equal(data["lon"], fixes.lon)
    assert np.array_equal(data["time"], fixes.time, equal_nan=True)
    assert np.array_equal(data["flags"], cleaned.flags)


def test_a_gcj02_track_keeps_both_coordinates():
    fixes, cleaned = _track(Datum.GCJ02)
    blob = _pack_fixes(fixes, cleaned)
    assert {"wgs84_lon.npy", "wgs84_lat.npy"} <= _members(blob)
    data = patrol_fixes(_Session(blob), 1)
    assert np.array_equal(data["wgs84_lon"], cleaned.fixes.lon)
    assert not np.array_equal(data["wgs84_lon"], data["lon"])


def test_a_blob_written_with_every_array_still_reads():
    fixes, cleaned = _track(Datum.WGS84)
    old = io.BytesIO()
    np.savez_compressed(
        old, lon=fixes.lon, lat=fixes.lat, time=fixes.time.astype(np.int64), time_known=~np.isnat(fixes.time),
        ele=fixes.ele, file_segment=fixes.segment, segment=cleaned.fixes.segment,
        wgs84_lon=cleaned.fixes.lon + 1, wgs84_lat=cleaned.fixes.lat, flags=cleaned.flags,
    )  # fmt: skip
    data = patrol_fixes(_Session(old.getvalue()), 1)
    assert np.array_equal(data["wgs84_lon"], cleaned.fixes.lon + 1)  # as stored, not filled in
    assert data["flag_names"].shape == (len(fixes),)


def test_visit_times_in_bulk_are_those_of_datetime_fromtimestamp():
    from patrol.patrols import _datetime, _datetimes

    rng = np.random.default_rng(5)
    seconds = np.r_[
        1.77e9 + rng.random(20_000) * 1e8,
        1.77e9 + np.arange(2000) / 1000 + 0.0000005,  # halves of a microsecond
        1772409600.0, 1772409600.9999996, np.nan, 0.0,
    ]  # fmt: skip
    assert _datetimes(seconds) == [_datetime(s) for s in seconds]
