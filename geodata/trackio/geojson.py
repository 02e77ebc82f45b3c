"""GeoJSON tracks: LineString/MultiLineString features (each line a segment), or timed Point features.

The file is streamed (``jsonstream``): the features of a FeatureCollection are decoded one at a
time and their positions go straight into flat arrays, so a file of a million point features
costs about as much memory as its fixes. One feature may hold at most
``jsonstream.MAX_VALUE_CHARS`` characters. Per-vertex times are taken from
``properties.coordTimes`` or ``properties.coordinateProperties.times`` (what togeojson and Mapbox
tools write) where present.

Anything that is not the GeoJSON a track needs — properties that are not an object, coordinates
that are not lists, features that are not objects — is skipped or refused with its feature number,
never met with an exception of Python's.
"""

from __future__ import annotations

import numpy as np

from geodata.errors import GeodataError
from geodata.fixes import TrackFixes
from geodata.trackio.jsonstream import JsonStream
from geodata.trackio.sink import FixSink, refuse
from geodata.trackio.times import CHUNK, BadTime, excerpt

TIME_KEYS = {"time", "timestamp", "datetime", "date_time", "时间", "定位时间", "when"}
MAX_COLLECTION_DEPTH = 8  # GeometryCollections inside GeometryCollections (RFC 7946 discourages any)


def read_geojson(path, *, max_fixes: int) -> TrackFixes:
    collector = _Collector(max_fixes)
    with open(path, "rb") as f:
        top = JsonStream(f).members("features", collector.feature)
    if top is None:
        raise refuse("no-track", "no track in file: the JSON is not a GeoJSON object")
    kind = top.get("type")
    if kind == "Feature":
        collector.feature(top)
    elif kind != "FeatureCollection":
        collector.geometry(top, {}, 1, 0)  # a bare geometry
    return collector.finish()


class _Collector:
    """Lines and timed points, as the features go by. Points are only used when the file has no
    line, so a problem with a point is kept and raised only then."""

    def __init__(self, max_fixes: int):
        self.lines = FixSink(max_fixes=max_fixes, source_format="GeoJSON", where_label="feature")
        self.points = FixSink(max_fixes=max_fixes, source_format="GeoJSON", where_label="feature")
        self.point_problem: GeodataError | None = None
        self._point_adders = self.points.appenders()
        self.timed_points = 0
        self.features = 0

    def feature(self, feature) -> None:
        self.features += 1
        if isinstance(feature, dict):
            properties = feature.get("properties")
            self.geometry(
                feature.get("geometry"), properties if isinstance(properties, dict) else {}, self.features, 0
            )

    def geometry(self, geometry, properties: dict, number: int, depth: int) -> None:
        if not isinstance(geometry, dict):
            return
        kind = geometry.get("type")
        coords = geometry.get("coordinates")
        times = properties.get("coordTimes")
        if times is None and isinstance(properties.get("coordinateProperties"), dict):
            times = properties["coordinateProperties"].get("times")
        if kind == "LineString":
            self._line(coords, times, number)
        elif kind == "MultiLineString":
            if not isinstance(coords, list):
                raise _not_positions(number)
            for k, part in enumerate(coords):
                part_times = times[k] if isinstance(times, list) and k < len(times) else None
                self._line(part, part_times if isinstance(part_times, list) else None, number)
        elif kind == "Point":
            when = next((v for k, v in properties.items() if str(k).strip().lower() in TIME_KEYS), None)
            self._point(coords, when, number)
        elif kind == "GeometryCollection":
            if depth >= MAX_COLLECTION_DEPTH:
                raise refuse(
                    "geometry-too-deep",
                    f"feature {number}: GeometryCollections are nested more than {MAX_COLLECTION_DEPTH} deep",
                    feature=number,
                    limit=MAX_COLLECTION_DEPTH,
                )
            parts = geometry.get("geometries")
            for part in parts if isinstance(parts, list) else ():
                self.geometry(part, properties, number, depth + 1)

    def _line(self, coords, times, number: int) -> None:
        sink = self.lines
        values = _vertices(coords, number, len(sink))
        ms = None
        if isinstance(times, list) and len(times) == len(values):
            try:
                ms = sink.times.convert(["" if v is None else str(v) for v in times])
            except BadTime as exc:
                i = len(sink) + exc.index
                message = f"fix {i + 1} (feature {number}): the time {excerpt(exc.text)} {exc.reason}"
                raise refuse("bad-time", message, fix=i + 1, feature=number) from None
        elif times is not None:
            sink.warn(
                "times-ignored",
                f"feature {number}: its coordinate times do not pair up with its {len(values)} positions "
                "and were ignored",
                feature=number,
            )
        sink.extend(values[:, 0], values[:, 1], values[:, 2], number, ms)
        sink.end_segment()

    def _point(self, coords, when, number: int) -> None:
        sink = self.points
        i = len(sink)
        try:
            x, y, ele = _position(coords, i, number)
        except GeodataError as exc:
            self.point_problem = self.point_problem or exc
            x = y = ele = np.nan
        lon_add, lat_add, ele_add, time_add, line_add = self._point_adders
        lon_add(x)
        lat_add(y)
        ele_add(ele)
        line_add(number)
        time_add("" if when is None else str(when))
        self.timed_points += when is not None
        if not len(sink) % CHUNK:
            sink.check_count()
            self._flush_point_times()

    def _flush_point_times(self) -> None:
        try:
            self.points.flush_times(full_chunks_only=False)
        except GeodataError as exc:
            self.point_problem = self.point_problem or exc
            self.points.times.pending = [""] * len(self.points.times.pending)
            self.points.times.flush()

    def finish(self) -> TrackFixes:
        if len(self.lines):
            if self.timed_points:
                self.lines.warn(
                    "points-ignored", f"{len(self.points):,} point features were left out: the file has lines"
                )
            return self.lines.finish()
        if self.timed_points:
            self._flush_point_times()
            if self.point_problem:
                raise self.point_problem
            self.points.end_segment()
            return self.points.finish()
        if len(self.points):
            raise refuse(
                "no-track",
                f"no track in file: only {len(self.points):,} points without times (no LineString, and no "
                "point has a time property such as 'time' or 'timestamp')",
                points=len(self.points),
            )
        raise refuse("no-track", "no track in file: it has no LineString, MultiLineString or timed points")


def _not_positions(number: int) -> GeodataError:
    return refuse(
        "bad-number", f"feature {number}: the coordinates are not a list of positions", feature=number
    )


def _vertices(coords, number: int, first: int) -> np.ndarray:
    """An (n, 3) float array (elevation NaN where absent) from a GeoJSON position list."""
    if not isinstance(coords, list):
        raise _not_positions(number)
    try:
        values = np.array(coords, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] < 2:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        values = np.array([_position(p, first + k, number) for k, p in enumerate(coords)]).reshape(-1, 3)
    if values.shape[1] == 2:
        values = np.column_stack([values, np.full(len(values), np.nan)])
    return values[:, :3]


def _position(position, i: int, number: int) -> tuple[float, float, float]:
    """(lon, lat, ele or NaN) from one GeoJSON position; fix ``i`` (0-based) for the message."""
    try:
        if not isinstance(position, list) or len(position) < 2:
            raise ValueError
        if not all(isinstance(p, int | float) and not isinstance(p, bool) for p in position[:3]):
            raise ValueError
        return float(position[0]), float(position[1]), float(position[2]) if len(position) > 2 else np.nan
    except (ValueError, TypeError, OverflowError):
        shown = excerpt(repr(position))
        message = f"fix {i + 1} (feature {number}): the position {shown} is not [lon, lat(, ele)]"
        raise refuse("bad-number", message, fix=i + 1, feature=number) from None
