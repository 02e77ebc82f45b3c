"""Points with known answers on the reference grids: inside, on a shared edge, near, far, by the
border. Computed from the shipped geometry so the tests follow it if it is redrawn."""

from __future__ import annotations

import numpy as np
import shapely
import shapely.ops

from geodata import reference
from geodata.crs import METRIC, WGS84, transformer


def _grids():
    return reference.load_grids().to_crs(METRIC).set_index("code").geometry


def _lonlat(point) -> tuple[float, float]:
    lon, lat = transformer(METRIC, WGS84).transform(point.x, point.y)
    return float(lon), float(lat)


def inside(code: str) -> tuple[float, float]:
    return _lonlat(_grids()[code].representative_point())


def on_shared_edge(a: str, b: str) -> tuple[float, float]:
    """A vertex the stored (WGS84) outlines of grids ``a`` and ``b`` share, in the middle of their
    common edge: exactly on both boundaries in every CRS, unlike a point between vertices."""
    grids = reference.load_grids().set_index("code").geometry
    coords_a = {tuple(c) for c in shapely.get_coordinates(grids[a])}
    shared = [tuple(c) for c in shapely.get_coordinates(grids[b]) if tuple(c) in coords_a]
    assert shared, f"{a} and {b} share no vertex"
    lon, lat = shared[len(shared) // 2]
    return float(lon), float(lat)


def near(code: str, metres: float) -> tuple[float, float]:
    """A point ``metres`` outside grid ``code`` whose nearest grid is ``code`` by a clear margin."""
    grids = _grids()
    others = shapely.union_all([g for c, g in grids.items() if c != code])
    outline = shapely.get_parts(shapely.boundary(grids[code].buffer(metres)))
    for line in outline:
        for f in np.linspace(0, 1, 400, endpoint=False):
            p = line.interpolate(f, normalized=True)
            if p.distance(others) > 2 * metres and not grids.intersects(p).any():
                return _lonlat(p)
    raise AssertionError(f"no point {metres} m outside {code} clear of the other grids")


def far_from_grids(metres: float = 5000) -> tuple[float, float]:
    """A point at sea south of Lianjiang, far from every grid but inside the service region."""
    grids = _grids()
    everything = shapely.union_all(grids.values)
    minx, miny, maxx, _ = everything.bounds
    p = shapely.Point((minx + maxx) / 2 + 20000, miny - metres)
    assert p.distance(everything) >= metres * 0.9
    return _lonlat(p)


def inside_near_border(code: str) -> tuple[float, float]:
    """A point just inside grid ``code`` (20 m in) at its closest to the provincial border."""
    grid = _grids()[code]
    border = reference.load_border().to_crs(METRIC).geometry.iloc[0]
    edge_point = shapely.ops.nearest_points(grid, border)[0]
    centre = grid.representative_point()
    step = 20 / edge_point.distance(centre)
    p = shapely.Point(
        edge_point.x + (centre.x - edge_point.x) * step, edge_point.y + (centre.y - edge_point.y) * step
    )
    assert grid.contains(p)
    return _lonlat(p)
