"""Where readers put fixes: flat arrays filled while the file streams by, checked and turned into
``TrackFixes`` once at the end. No per-fix Python objects survive the read."""

from __future__ import annotations

from array import array

import numpy as np

from geodata.errors import GeodataError, Problem
from geodata.fixes import TrackFixes
from geodata.region import in_region
from geodata.trackio.times import CHUNK, NAT, SENTINELS, BadTime, TimeBuffer, excerpt

MAX_LISTED = 10  # fixes named one by one in an error's problem list
MAX_WARNINGS_PER_KIND = 5  # e.g. one per feature whose times do not pair up: the rest are counted


def refuse(kind: str, message: str, **details) -> GeodataError:
    """A ``GeodataError`` carrying one ``Problem`` of ``kind`` with the same message."""
    return GeodataError(message, problems=[Problem(kind, message, details)])


class FixSink:
    """Parallel arrays of fixes in file order, with segment boundaries and where each fix came from.

    ``lines`` holds, per fix, the file line it was read from (or the feature number for GeoJSON);
    ``where_label`` says which, for messages ("line", "feature", …).
    """

    def __init__(self, *, max_fixes: int, source_format: str, where_label: str = "line"):
        self.lon = array("d")
        self.lat = array("d")
        self.ele = array("d")
        self.lines = array("i")
        self.times = TimeBuffer()
        self.where_label = where_label
        self.max_fixes = max_fixes
        self.source_format = source_format
        self.warnings: list[Problem] = []
        self._warned: dict[str, int] = {}  # warnings recorded per kind
        self._bounds: list[int] = []  # fix indices where a new segment starts
        self._seg_start = 0

    def __len__(self) -> int:
        return len(self.lon)

    def appenders(self):
        """Bound ``append`` methods (lon, lat, ele, time string, line) for a reader's inner loop."""
        return (
            self.lon.append,
            self.lat.append,
            self.ele.append,
            self.times.pending.append,
            self.lines.append,
        )

    def extend(self, lon, lat, ele, line: int | np.ndarray, times_ms: np.ndarray | None = None) -> None:
        """Append a block of fixes given as numpy arrays (times as int64 ms; None = no times)."""
        n = len(lon)
        self.lon.frombytes(np.ascontiguousarray(lon, dtype=np.float64).tobytes())
        self.lat.frombytes(np.ascontiguousarray(lat, dtype=np.float64).tobytes())
        self.ele.frombytes(np.ascontiguousarray(ele, dtype=np.float64).tobytes())
        self.lines.frombytes(np.broadcast_to(np.asarray(line, dtype=np.int32), (n,)).tobytes())
        self.times.extend_ms(np.full(n, NAT, dtype=np.int64) if times_ms is None else times_ms)
        self.check_count()

    def end_segment(self) -> None:
        """Close the current segment; the next fix starts a new one (empty segments vanish)."""
        n = len(self.lon)
        if n > self._seg_start:
            self._bounds.append(n)
            self._seg_start = n

    def check_count(self) -> None:
        if len(self.lon) > self.max_fixes:
            raise refuse(
                "too-many-fixes",
                f"the file holds more than {self.max_fixes:,} fixes, the most one upload may have; "
                "split the track into several files",
                limit=self.max_fixes,
            )

    def flush_times(self, *, full_chunks_only: bool = True) -> None:
        """Convert the time strings collected so far (only once a chunk is full, by default)."""
        if full_chunks_only and len(self.times.pending) < CHUNK:
            return
        try:
            self.times.flush()
        except BadTime as exc:
            raise self.bad_time(exc.index, exc.text, exc.reason) from None

    def warn(self, kind: str, message: str, **details) -> None:
        """Record a warning; past ``MAX_WARNINGS_PER_KIND`` of one kind they are only counted, so
        that what is stored with the patrol stays small whatever the file holds."""
        same = self._warned[kind] = self._warned.get(kind, 0) + 1
        if same <= MAX_WARNINGS_PER_KIND:
            self.warnings.append(Problem(kind, message, details))

    def _warnings(self) -> list[Problem]:
        more = [
            Problem(
                kind, f"… and {count - MAX_WARNINGS_PER_KIND:,} more warnings like these", {"count": count}
            )
            for kind, count in self._warned.items()
            if count > MAX_WARNINGS_PER_KIND
        ]
        return [*self.warnings, *more]

    # -- messages ---------------------------------------------------------------------------------

    def where(self, i: int) -> str:
        """'fix 12 (line 40)': 1-based fix number and, where known, its place in the file."""
        if i < len(self.lines):
            return f"fix {i + 1} ({self.where_label} {self.lines[i]})"
        return f"fix {i + 1}"

    def _details(self, i: int) -> dict:
        details = {"fix": i + 1}
        if i < len(self.lines):
            details[self.where_label.rsplit(" ", 1)[-1]] = self.lines[i]
        return details

    def bad_value(self, i: int, what: str, text) -> GeodataError:
        """An unreadable number for fix ``i`` (0-based; may be the fix being read)."""
        message = f"{self.where(i)}: the {what} {excerpt(text)} is not a number"
        return refuse("bad-number", message, **self._details(i))

    def bad_time(
        self, i: int, text: str, reason: str = "is not a date and time that can be read"
    ) -> GeodataError:
        message = f"{self.where(i)}: the time {excerpt(text)} {reason}"
        return refuse("bad-time", message, **self._details(i))

    def _fixes_refused(self, kind: str, bad: np.ndarray, describe) -> GeodataError:
        idx = np.flatnonzero(bad)
        problems = [
            Problem(kind, f"{self.where(int(i))}: {describe(int(i))}", self._details(int(i)))
            for i in idx[:MAX_LISTED]
        ]
        more = f" (and {len(idx) - 1:,} more fixes)" if len(idx) > 1 else ""
        return GeodataError(problems[0].message + more, problems=problems)

    # -- the end ----------------------------------------------------------------------------------

    def finish(self) -> TrackFixes:
        """Check the fixes and return them as ``TrackFixes`` (raises ``GeodataError`` if bad)."""
        self.check_count()
        n = len(self.lon)
        # Views on the collected arrays, not copies (the sink is done growing): a million fixes
        # would otherwise briefly cost twice their 30 MB.
        lon = np.frombuffer(self.lon, dtype=np.float64)
        lat = np.frombuffer(self.lat, dtype=np.float64)
        ele = np.frombuffer(self.ele, dtype=np.float64)
        try:
            time = self.times.array()
        except BadTime as exc:
            raise self.bad_time(exc.index, exc.text, exc.reason) from None
        if len(time) != n:  # a reader bug, not a user error
            raise AssertionError(f"{len(time)} times for {n} fixes")
        self._check(lon, lat, ele)

        starts = [0, *(b for b in self._bounds if b < n)]
        counts = np.diff([*starts, n])
        if self.times.sentinels:
            self.warn(
                "placeholder-time",
                f"{self.times.sentinels:,} fixes carry a placeholder instead of a time "
                f"({', '.join(f'{t} {what}' for t, what in SENTINELS.items())}, as devices write before "
                "they know the time); they were read as fixes without a time",
                count=self.times.sentinels,
            )
        segment = np.repeat(np.arange(len(starts), dtype=np.int32), counts)
        return TrackFixes(
            lon,
            lat,
            time,
            ele,
            segment,
            self.source_format,
            self._warnings(),
            naive_times=self.times.naive,
        )

    def _check(self, lon: np.ndarray, lat: np.ndarray, ele: np.ndarray) -> None:
        bad = ~(np.isfinite(lon) & np.isfinite(lat))
        if bad.any():
            raise self._fixes_refused(
                "bad-number", bad, lambda i: f"the position {lon[i]}, {lat[i]} is not a finite number"
            )
        bad = np.isinf(ele)
        if bad.any():
            raise self._fixes_refused("bad-number", bad, lambda i: f"the elevation {ele[i]} is not finite")

        # Checked before the ranges: swapped fixes here have "latitudes" of 108–110°.
        if len(lon) and np.all(np.abs(lon) <= 90) and not in_region(lon, lat).any():
            if in_region(lat, lon).mean() >= 0.5:
                message = (
                    "the longitude and latitude look swapped: as written, fix 1 is at longitude "
                    f"{lon[0]}, latitude {lat[0]}, but with the two exchanged the fixes fall in "
                    "Lianjiang/Hepu; check the column order or the exporting app's settings"
                )
                raise refuse("swapped-lon-lat", message, fix=1)

        bad = np.abs(lat) > 90
        if bad.any():
            raise self._fixes_refused(
                "coordinate-out-of-range", bad, lambda i: f"latitude {lat[i]} is beyond ±90 degrees"
            )
        bad = np.abs(lon) > 180
        if bad.any():
            raise self._fixes_refused(
                "coordinate-out-of-range", bad, lambda i: f"longitude {lon[i]} is beyond ±180 degrees"
            )
