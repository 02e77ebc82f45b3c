"""Swath coverage: the share of a grid's area lying within half a swath width of a track.

The exact figure is the area of the union of the tracks' buffers inside the grid. Buffering and
unioning every full-resolution visit line cost about 80 s and a gigabyte for the demo's 90 days,
and grows with the swath. The share is estimated instead on a lattice of points spread evenly over
the grid (at most ``MAX_POINTS`` per grid, at most a fifth of the swath apart): a point is covered
when some line passes within half the swath of it. All of a grid's lines are tested at once as one
prepared multi-line (GEOS answers the distance test from an index of its segments), so the cost
grows with points × log(segments) and the memory with the lines, whatever the swath.

All coordinates are metric (a projected CRS).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely

MAX_POINTS = 20_000  # per grid: a 500 ha grid is sampled every 16 m
SWATH_FRACTION = 5  # points at most swath / 5 apart: the estimate is within a few per cent


def spacing_for(area_m2: float, swath_width_m: float) -> float:
    """Distance between lattice points for a grid of ``area_m2`` and the given swath."""
    return max(swath_width_m / SWATH_FRACTION, float(np.sqrt(area_m2 / MAX_POINTS)), 0.5)


@lru_cache(maxsize=256)
def _lattice(polygon_wkb: bytes, spacing: float) -> np.ndarray:
    polygon = shapely.from_wkb(polygon_wkb)
    xmin, ymin, xmax, ymax = polygon.bounds
    # Points at the centres of spacing × spacing cells, so each stands for one cell's area.
    xs = np.arange(xmin + spacing / 2, xmax, spacing)
    ys = np.arange(ymin + spacing / 2, ymax, spacing)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    shapely.prepare(polygon)
    inside = shapely.contains_xy(polygon, x, y)
    points = np.column_stack([x[inside], y[inside]])
    points.setflags(write=False)  # shared between requests and threads
    return points


def lattice(polygon: shapely.Polygon | shapely.MultiPolygon, spacing: float) -> np.ndarray:
    """(N, 2) points inside ``polygon``, ``spacing`` apart (cached per polygon and spacing)."""
    return _lattice(shapely.to_wkb(polygon), float(spacing))


def covered_share(
    polygon: shapely.Polygon | shapely.MultiPolygon, lines: np.ndarray, swath_width_m: float
) -> float:
    """Share (0–1) of ``polygon``'s area within ``swath_width_m / 2`` of any of ``lines``."""
    if swath_width_m <= 0:
        raise ValueError("the swath width must be positive")
    lines = np.asarray(lines, dtype=object)
    lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
    if not len(lines) or polygon.is_empty:
        return 0.0
    spacing = spacing_for(polygon.area, swath_width_m)
    points = lattice(polygon, spacing)
    if not len(points):  # a sliver narrower than the spacing: test its centre
        points = np.array([shapely.get_coordinates(polygon.representative_point())[0]])
    # Vertices closer than a tenth of the spacing change nothing the lattice can see.
    track = shapely.multilinestrings(shapely.simplify(lines, spacing / 10, preserve_topology=False))
    half = swath_width_m / 2
    xmin, ymin, xmax, ymax = track.bounds
    near = (
        (points[:, 0] >= xmin - half)
        & (points[:, 0] <= xmax + half)
        & (points[:, 1] >= ymin - half)
        & (points[:, 1] <= ymax + half)
    )
    if not near.any():
        return 0.0
    shapely.prepare(track)
    candidates = shapely.points(points[near])
    covered = np.count_nonzero(shapely.dwithin(track, candidates, half))
    return covered / len(points)
