"""Small inline SVG maps for pages that must work with no network (the phone report page):
grid outlines drawn by the server, no tiles, no scripts from elsewhere. Pure rendering: the
callers query the data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely

MAP_WIDTH = 1000.0  # SVG user units across; the height follows the shape of the area shown
MAP_MAX_ASPECT, MAP_MIN_ASPECT = 1.1, 0.4  # height / width


def _svg_path(geom) -> str:
    """SVG path data of (multi)polygons and lines already in SVG coordinates."""
    kind = geom.geom_type
    if kind.startswith("Multi") or kind == "GeometryCollection":
        return "".join(_svg_path(part) for part in geom.geoms)
    if kind == "Polygon":
        rings, close = [geom.exterior, *geom.interiors], True
    elif kind in ("LineString", "LinearRing"):
        rings, close = [geom], False
    else:
        return ""
    out = []
    for ring in rings:
        coords = np.asarray(ring.coords)[:, :2]
        if close:
            coords = coords[:-1]
        if len(coords) < 2:
            continue
        out.append("M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in coords) + ("Z" if close else ""))
    return "".join(out)


def tappable_map(records, framed: set[str], border=None) -> dict[str, Any] | None:
    """A tappable map as data for an inline SVG: grid outlines projected linearly from lon/lat
    (x shrunk by cos(latitude), so shapes look right at these latitudes), with the numbers the page's
    script needs to turn a tap back into lon/lat: lon = lon0 + x / kx, lat = lat0 - y / ky.

    ``records`` have ``code`` and a WGS84 shapely ``geometry``; ``framed`` are the codes to fit in
    view; ``border`` is the provincial border line (WGS84) or None."""
    if not records:
        return None
    minx, miny, maxx, maxy = shapely.total_bounds([r.geometry for r in records if r.code in framed])
    pad = max(maxx - minx, maxy - miny) * 0.06 + 0.003
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    cos = math.cos(math.radians((miny + maxy) / 2))
    # Keep the map between 5:2 and 1:1.1 (width:height) so that it fits a phone's screen; the
    # framed grids stay in the middle and neighbours come into view.
    aspect = (maxy - miny) / ((maxx - minx) * cos)
    if aspect > MAP_MAX_ASPECT:
        grow = ((maxy - miny) / (cos * MAP_MAX_ASPECT) - (maxx - minx)) / 2
        minx, maxx = minx - grow, maxx + grow
    elif aspect < MAP_MIN_ASPECT:
        grow = (MAP_MIN_ASPECT * cos * (maxx - minx) - (maxy - miny)) / 2
        miny, maxy = miny - grow, maxy + grow
    kx = MAP_WIDTH / (maxx - minx)
    ky = kx / cos
    height = (maxy - miny) * ky

    def to_svg(coords):
        return np.column_stack(((coords[:, 0] - minx) * kx, (maxy - coords[:, 1]) * ky))

    grids = []
    for record in records:
        geom = shapely.clip_by_rect(shapely.transform(record.geometry, to_svg), 0, 0, MAP_WIDTH, height)
        if geom.is_empty or geom.area == 0:
            continue
        geom = shapely.simplify(geom, 0.3, preserve_topology=True)
        x0, y0, x1, y1 = geom.bounds
        anchor = geom.representative_point()
        size = max(2.0, min(30.0, (x1 - x0) / len(record.code) * 1.7, (y1 - y0) * 0.45))
        grids.append(
            {
                "code": record.code,
                "path": _svg_path(geom),
                "own": record.code in framed,
                "x": round(anchor.x, 1),
                "y": round(anchor.y, 1),
                "size": round(size, 1),
            }
        )
    border_path = None
    if border is not None:
        line = shapely.clip_by_rect(shapely.transform(border, to_svg), 0, 0, MAP_WIDTH, height)
        border_path = _svg_path(line) or None
    return {
        "width": MAP_WIDTH,
        "height": round(height, 1),
        "lon0": round(minx, 7),
        "lat0": round(maxy, 7),
        "kx": kx,
        "ky": ky,
        "grids": grids,
        "border": border_path,
    }
