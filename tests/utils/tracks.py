"""Hand-made tracks: straight walks at constant speed across a grid, written as GPX."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import shapely

from geodata import reference
from geodata.crs import METRIC, WGS84, transformer

START = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # 08:30 in Lianjiang


def grid_metric(code: str):
    grids = reference.load_grids().to_crs(METRIC)
    return grids.set_index("code").geometry[code]


def crossing(code: str, *, speed: float = 1.0, interval: float = 1.0, margin: float = 300.0):
    """A west → east walk through the middle of grid ``code``, from ``margin`` m outside it.

    Returns (lon, lat, times, expected): the metres and seconds inside the grid, the metres outside
    every grid, and the codes of all grids the walk touches (the reference grids are strips, so a
    walk across one usually clips a neighbour)."""
    grid = grid_metric(code)
    centre = grid.representative_point()
    minx, _, maxx, _ = grid.bounds
    line = shapely.LineString([(minx - margin, centre.y), (maxx + margin, centre.y)])
    distances = np.arange(0, line.length + 1e-9, speed * interval)
    points = shapely.line_interpolate_point(line, distances)
    x, y = shapely.get_x(points), shapely.get_y(points)
    walked = shapely.LineString(np.column_stack([x, y]))
    inside_m = shapely.intersection(walked, grid).length
    all_grids = reference.load_grids().to_crs(METRIC)
    touched = set(all_grids.code[all_grids.intersects(walked)])
    outside_m = shapely.difference(walked, shapely.union_all(all_grids.geometry.values)).length
    lon, lat = transformer(METRIC, WGS84).transform(x, y)
    times = [START + timedelta(seconds=float(d / speed)) for d in distances]
    return np.asarray(lon), np.asarray(lat), times, {"inside_m": inside_m, "inside_s": inside_m / speed,
                                                      "total_m": walked.length, "outside_m": outside_m,
                                                      "touched": touched}  # fmt: skip


def gpx(lon, lat, times=None, *, name: str = "track") -> bytes:
    points = []
    for i, (x, y) in enumerate(zip(lon, lat)):
        when = f"<time>{times[i].strftime('%Y-%m-%dT%H:%M:%SZ')}</time>" if times is not None else ""
        points.append(f'<trkpt lat="{y:.8f}" lon="{x:.8f}">{when}</trkpt>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="tests" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>'
        + name
        + "</name><trkseg>"
        + "".join(points)
        + "</trkseg></trk></gpx>"
    ).encode()


def kml(lon, lat, times) -> bytes:
    """The same walk as a KML gx:Track (how Google Earth and many phone apps write tracks)."""
    whens = "".join(f"<when>{t.strftime('%Y-%m-%dT%H:%M:%SZ')}</when>" for t in times)
    coords = "".join(f"<gx:coord>{x:.8f} {y:.8f} 0</gx:coord>" for x, y in zip(lon, lat))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2" '
        'xmlns:gx="http://www.google.com/kml/ext/2.2"><Document><Placemark><gx:Track>'
        + whens
        + coords
        + "</gx:Track></Placemark></Document></kml>"
    ).encode()


def kmz(lon, lat, times) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", kml(lon, lat, times))
    return buffer.getvalue()


def geojson_points(lon, lat, times) -> bytes:
    import json

    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            "properties": {"time": t.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        for x, y, t in zip(lon, lat, times)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def csv_chinese(lon, lat, times) -> bytes:
    """A spreadsheet export with Chinese headers and local (China) times, as UTF-8 with BOM."""
    from datetime import timedelta

    rows = ["时间,经度,纬度"] + [
        f"{(t + timedelta(hours=8)).strftime('%Y/%m/%d %H:%M:%S')},{x:.8f},{y:.8f}"
        for x, y, t in zip(lon, lat, times)
    ]
    return ("\ufeff" + "\n".join(rows) + "\n").encode("utf-8")
