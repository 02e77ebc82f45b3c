"""The one columnar structure every track reader produces and every later step consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geodata.errors import Problem

NO_TIME = np.datetime64("NaT", "ms")


@dataclass
class TrackFixes:
    """GPS fixes in file order, as parallel numpy arrays of equal length.

    ``time`` is UTC ``datetime64[ms]`` with NaT where the file gave no time (effort in time is then
    unknown, not invented); ``ele`` is metres with NaN where missing; ``segment`` numbers the
    file's track segments from 0 (a new one per ``trkseg``, LineString, ``gx:Track``…).
    Coordinates are as written in the file (the datum is declared by the uploader, see
    ``geodata.datum``).
    """

    lon: np.ndarray  # float64
    lat: np.ndarray  # float64
    time: np.ndarray  # datetime64[ms], NaT = unknown
    ele: np.ndarray  # float64, NaN = unknown
    segment: np.ndarray  # int32, non-decreasing from 0
    source_format: str = ""
    warnings: list[Problem] = field(default_factory=list)
    naive_times: int = 0  # times the file wrote without a zone (read as UTC; see read_track)

    def __post_init__(self) -> None:
        n = len(self.lon)
        if not all(len(a) == n for a in (self.lat, self.time, self.ele, self.segment)):
            raise ValueError("TrackFixes arrays must have the same length")

    def __len__(self) -> int:
        return len(self.lon)

    @property
    def has_time(self) -> np.ndarray:
        return ~np.isnat(self.time)

    @classmethod
    def from_lists(
        cls,
        lon,
        lat,
        time=None,
        ele=None,
        segment=None,
        *,
        source_format: str = "",
        warnings: list[Problem] | None = None,
    ) -> TrackFixes:
        """Build from sequences; ``time`` may hold numpy datetime64, ISO strings or None."""
        lon = np.asarray(lon, dtype=np.float64)
        n = len(lon)
        times = np.full(n, NO_TIME) if time is None else np.asarray(time, dtype="datetime64[ms]")
        return cls(
            lon=lon,
            lat=np.asarray(lat, dtype=np.float64),
            time=times,
            ele=np.full(n, np.nan) if ele is None else np.asarray(ele, dtype=np.float64),
            segment=np.zeros(n, dtype=np.int32) if segment is None else np.asarray(segment, dtype=np.int32),
            source_format=source_format,
            warnings=list(warnings or []),
        )
