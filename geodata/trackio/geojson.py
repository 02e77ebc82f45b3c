"""GeoJSON tracks: LineString/MultiLineString features (each line a segment), or timed Point features.

GeoJSON has no streaming form worth the name, so the file is read with the ``json`` module under
a size cap. Per-vertex times are taken from ``properties.coordTimes`` or
``properties.coordinateProperties.times`` (what togeojson and Mapbox tools write) where present.
"""

from __future__ import annotations

import json
import os

import numpy as np

from geodata.fixes import TrackFixes
from geodata.trackio.sink import FixSink, refuse
from geodata.trackio.times import BadTime, parse_times

# json.loads needs ~8× the file size in memory (a 28 MB track peaked at 230 MB RSS): this keeps a
# GeoJSON read under ~300 MB. GPX and CSV stream and have no such cap.
MAX_GEOJSON_BYTES = 32 * 1024 * 1024
TIME_KEYS = {"time", "timestamp", "datetime", "date_time", "时间", "定位时间", "when"}


def read_geojson(path, *, max_fixes: int) -> TrackFixes:
    size = os.path.getsize(path)
    if size > MAX_GEOJSON_BYTES:
        raise refuse(
            "file-too-large",
            f"the GeoJSON file is {size / 2**20:,.0f} MiB; at most {MAX_GEOJSON_BYTES // 2**20} MiB "
            "can be read (GPX or CSV have no such limit)",
        )
    with open(path, "rb") as f:
        data = f.read()
    try:
        doc = json.loads(data)  # bytes: json detects UTF-8 (with or without BOM), UTF-16 and UTF-32
    except UnicodeDecodeError as exc:
        raise refuse(
            "encoding", f"not UTF-8 text: the byte at offset {exc.start} is not valid UTF-8", offset=exc.start
        ) from None
    except json.JSONDecodeError as exc:
        raise refuse(
            "malformed-json",
            f"the file is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    del data

    lines: list[tuple[object, object, int]] = []  # (coordinates, per-vertex times or None, feature no.)
    points: list[tuple[object, object, int]] = []  # (coordinates, time value or None, feature no.)
    for number, (geometry, properties) in enumerate(_features(doc), 1):
        _collect(geometry, properties, number, lines, points)

    sink = FixSink(max_fixes=max_fixes, source_format="GeoJSON", where_label="feature")
    if lines:
        for coords, times, number in lines:
            _add_line(sink, coords, times, number)
            sink.end_segment()
        if any(t is not None for _, t, _ in points):
            sink.warn("points-ignored", f"{len(points):,} point features were left out: the file has lines")
        return sink.finish()
    timed = [p for p in points if p[1] is not None]
    if timed:
        _add_points(sink, points)
        return sink.finish()
    if points:
        raise refuse(
            "no-track",
            f"no track in file: only {len(points):,} points without times (no LineString, and no "
            "point has a time property such as 'time' or 'timestamp')",
            points=len(points),
        )
    raise refuse("no-track", "no track in file: it has no LineString, MultiLineString or timed points")


def _features(doc):
    """(geometry, properties) for a FeatureCollection, a Feature or a bare geometry."""
    if not isinstance(doc, dict):
        raise refuse("no-track", "no track in file: the JSON is not a GeoJSON object")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        for feature in doc.get("features") or []:
            if isinstance(feature, dict):
                yield feature.get("geometry"), feature.get("properties") or {}
    elif kind == "Feature":
        yield doc.get("geometry"), doc.get("properties") or {}
    else:
        yield doc, {}


def _collect(geometry, properties, number, lines, points) -> None:
    if not isinstance(geometry, dict):
        return
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    times = properties.get("coordTimes")
    if times is None and isinstance(properties.get("coordinateProperties"), dict):
        times = properties["coordinateProperties"].get("times")
    if kind == "LineString":
        lines.append((coords, times, number))
    elif kind == "MultiLineString":
        for k, part in enumerate(coords or []):
            part_times = times[k] if isinstance(times, list) and k < len(times) else None
            lines.append((part, part_times if isinstance(part_times, list) else None, number))
    elif kind == "Point":
        when = next((v for k, v in properties.items() if str(k).strip().lower() in TIME_KEYS), None)
        points.append((coords, when, number))
    elif kind == "GeometryCollection":
        for part in geometry.get("geometries") or []:
            _collect(part, properties, number, lines, points)


def _vertices(coords, number: int, sink: FixSink) -> np.ndarray:
    """An (n, 3) float array (elevation NaN where absent) from a GeoJSON position list."""
    try:
        values = np.array(coords, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] < 2:
            raise ValueError
    except (ValueError, TypeError):
        values = _vertices_one_by_one(coords, number, sink)
    if values.shape[1] == 2:
        values = np.column_stack([values, np.full(len(values), np.nan)])
    return values[:, :3]


def _vertices_one_by_one(coords, number: int, sink: FixSink) -> np.ndarray:
    if not isinstance(coords, list):
        raise refuse(
            "bad-number", f"feature {number}: the coordinates are not a list of positions", feature=number
        )
    return np.array([_position(p, len(sink) + k, number) for k, p in enumerate(coords)]).reshape(-1, 3)


def _position(position, i: int, number: int) -> list[float]:
    """[lon, lat, ele or NaN] from one GeoJSON position; fix ``i`` (0-based) for the message."""
    try:
        if not isinstance(position, list) or len(position) < 2:
            raise ValueError
        return [float(position[0]), float(position[1]), float(position[2]) if len(position) > 2 else np.nan]
    except (ValueError, TypeError):
        message = f"fix {i + 1} (feature {number}): the position {position!r} is not [lon, lat(, ele)]"
        raise refuse("bad-number", message, fix=i + 1, feature=number) from None


def _times_ms(values: list, first: int, numbers) -> tuple[np.ndarray, int]:
    """Times (ISO strings or Unix seconds/milliseconds) of fixes ``first``…; ``numbers`` gives
    each one's feature number (or one number for all)."""
    try:
        return parse_times(["" if v is None else str(v) for v in values])
    except BadTime as exc:
        i = first + exc.index
        number = numbers if isinstance(numbers, int) else int(numbers[exc.index])
        message = (
            f"fix {i + 1} (feature {number}): the time {exc.text!r} is not a date and time that can be read"
        )
        raise refuse("bad-time", message, fix=i + 1, feature=number) from None


def _add_line(sink: FixSink, coords, times, number: int) -> None:
    values = _vertices(coords, number, sink)
    ms = None
    if isinstance(times, list) and len(times) == len(values):
        ms, naive = _times_ms(times, len(sink), number)
        sink.times.naive += naive
    elif times is not None:
        sink.warn(
            "times-ignored",
            f"feature {number}: its coordinate times do not pair up with its {len(values)} positions "
            "and were ignored",
            feature=number,
        )
    sink.extend(values[:, 0], values[:, 1], values[:, 2], number, ms)


def _add_points(sink: FixSink, points) -> None:
    values = np.array([_position(c, k, n) for k, (c, _, n) in enumerate(points)]).reshape(-1, 3)
    numbers = np.array([n for _, _, n in points], dtype=np.int32)
    ms, naive = _times_ms([t for _, t, _ in points], 0, numbers)
    sink.times.naive += naive
    sink.extend(values[:, 0], values[:, 1], values[:, 2], numbers, ms)
