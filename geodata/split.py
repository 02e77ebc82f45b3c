"""Splitting a timed track by polygons: distance and time inside each polygon, with entry/exit times.

Works in a metric CRS on columnar arrays. The track is cut into legs (straight lines between
consecutive fixes of one segment); a leg is either inside one polygon, outside all of them, or
crosses boundaries. Only the crossing legs (a few per cent) are intersected exactly; time along a
leg is interpolated linearly, so a leg that spends 40 % of its length inside a grid spends 40 % of
its duration there. Consecutive pieces in the same polygon form a *visit*: the unit stored per
patrol and grid. Measures along the whole line are never used, because patrols often walk out and
back along the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geodata.assign import NO_GRID, GridIndex

OUTSIDE = NO_GRID  # visits outside every polygon carry this index


@dataclass
class Visits:
    """One row per visit, as parallel arrays, in track order."""

    polygon: np.ndarray  # int64 index into the polygons, OUTSIDE (-1) for outside all of them
    segment: np.ndarray  # int32 track segment of the visit
    distance_m: np.ndarray  # float64
    duration_s: np.ndarray  # float64, NaN where the fixes had no time
    enter_time: np.ndarray  # float64 seconds (same clock as the input), NaN when unknown
    exit_time: np.ndarray  # float64
    geometry: np.ndarray  # shapely LineStrings in the metric CRS (None for a visit of zero length)

    def __len__(self) -> int:
        return len(self.polygon)


def split_by_polygons(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    segment: np.ndarray,
    index: GridIndex,
) -> Visits:
    """Visits of the track (x, y metric; t seconds with NaN unknown; segment ids) to ``index``'s
    polygons, which must be in the same metric CRS. Fixes must be the good ones, in order."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    t, segment = np.asarray(t, float), np.asarray(segment)
    leg = np.flatnonzero(segment[:-1] == segment[1:]) if len(x) > 1 else np.array([], dtype=np.int64)
    x0, y0, x1, y1 = x[leg], y[leg], x[leg + 1], y[leg + 1]
    dt = t[leg + 1] - t[leg]
    length = np.hypot(x1 - x0, y1 - y0)

    pieces = _pieces(x0, y0, x1, y1, length, index)
    p_leg, p_poly, f0, f1 = pieces
    # A piece's share of its leg gives its length and duration; its ends give entry and exit.
    p_len = (f1 - f0) * length[p_leg]
    p_t0 = t[leg][p_leg] + f0 * dt[p_leg]
    p_t1 = t[leg][p_leg] + f1 * dt[p_leg]
    p_seg = segment[leg][p_leg]
    # Pieces of the same polygon on consecutive legs of one segment make one visit.
    new_visit = np.ones(len(p_leg), dtype=bool)
    if len(p_leg) > 1:
        new_visit[1:] = (p_poly[1:] != p_poly[:-1]) | (p_seg[1:] != p_seg[:-1]) | (p_leg[1:] - p_leg[:-1] > 1)
    visit = np.cumsum(new_visit) - 1
    starts = np.flatnonzero(new_visit)
    n = len(starts)

    distance = np.bincount(visit, weights=p_len, minlength=n).astype(float)
    known = ~np.isnan(p_t1 - p_t0)
    duration = np.bincount(visit, weights=np.where(known, p_t1 - p_t0, 0.0), minlength=n).astype(float)
    has_time = np.bincount(visit, weights=known.astype(float), minlength=n) > 0
    duration[~has_time] = np.nan
    enter = np.full(n, np.nan)
    leave = np.full(n, np.nan)
    if n:
        enter = np.fmin.reduceat(p_t0, starts)
        leave = np.fmax.reduceat(p_t1, starts)

    geometry = _visit_lines(x0, y0, x1, y1, p_leg, f0, f1, visit, starts, distance)
    return Visits(
        polygon=p_poly[starts] if n else np.array([], dtype=np.int64),
        segment=p_seg[starts].astype(np.int32) if n else np.array([], dtype=np.int32),
        distance_m=distance,
        duration_s=duration,
        enter_time=enter,
        exit_time=leave,
        geometry=geometry,
    )


def _pieces(x0, y0, x1, y1, length, index: GridIndex):
    """(leg, polygon, start fraction, end fraction) for every piece of every leg, in track order."""
    n = len(x0)
    a = index.assign_index(x0, y0)
    b = index.assign_index(x1, y1)
    legs = shapely.linestrings(np.stack([np.column_stack([x0, x1]), np.column_stack([y0, y1])], axis=-1))
    polygons = index.polygons
    # Most legs lie wholly inside one polygon (same polygon at both ends, and covered by it) or
    # touch none; everything else is cut exactly below.
    same = (a == b) & (a != NO_GRID)
    inside = np.zeros(n, dtype=bool)
    if same.any():
        inside[same] = shapely.contains_properly(polygons[a[same]], legs[same]) | (length[same] == 0)
    rest = np.flatnonzero(~inside)
    hit_leg, hit_poly = index.query(legs[rest]) if rest.size else ([], [])
    hit_leg = rest[np.asarray(hit_leg, dtype=np.int64)]
    hit_poly = np.asarray(hit_poly, dtype=np.int64)
    untouched = np.setdiff1d(rest, hit_leg)
    crossing = np.unique(hit_leg)

    leg_ids = [np.flatnonzero(inside), untouched]
    poly_ids = [a[inside], np.full(len(untouched), NO_GRID)]
    f0s = [np.zeros(inside.sum()), np.zeros(len(untouched))]
    f1s = [np.ones(inside.sum()), np.ones(len(untouched))]

    if crossing.size:
        cut_leg, cut_poly, c0, c1 = _cut(legs, x0, y0, x1, y1, length, hit_leg, hit_poly, polygons, a)
        leg_ids.append(cut_leg)
        poly_ids.append(cut_poly)
        f0s.append(c0)
        f1s.append(c1)
    p_leg = np.concatenate(leg_ids).astype(np.int64)
    p_poly = np.concatenate(poly_ids).astype(np.int64)
    f0 = np.concatenate(f0s)
    f1 = np.concatenate(f1s)
    order = np.lexsort((f0, p_leg))
    return p_leg[order], p_poly[order], f0[order], f1[order]


def _cut(legs, x0, y0, x1, y1, length, hit_leg, hit_poly, polygons, start_poly):
    """Exact pieces of the legs that cross polygon boundaries, gaps filled with OUTSIDE pieces."""
    crossing = np.unique(hit_leg)
    parts, which = shapely.get_parts(
        shapely.intersection(legs[hit_leg], polygons[hit_poly]), return_index=True
    )
    lines = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    parts, which = parts[lines], which[lines]
    leg, poly = hit_leg[which], hit_poly[which]
    # A piece of a straight leg is a straight sub-line: its ends project to fractions of the leg.
    dx, dy, sq = x1[leg] - x0[leg], y1[leg] - y0[leg], np.maximum(length[leg] ** 2, 1e-12)
    ends = [shapely.get_coordinates(shapely.get_point(parts, i)) for i in (0, -1)]
    fa, fb = (((e[:, 0] - x0[leg]) * dx + (e[:, 1] - y0[leg]) * dy) / sq for e in ends)
    f0, f1 = np.clip(np.minimum(fa, fb), 0, 1), np.clip(np.maximum(fa, fb), 0, 1)
    # A zero-length leg on a boundary belongs wholly to the grid its point was assigned to.
    still = crossing[(length[crossing] == 0) & (start_poly[crossing] != NO_GRID)]
    leg = np.concatenate([leg, still])
    poly = np.concatenate([poly, start_poly[still]])
    f0 = np.concatenate([f0, np.zeros(len(still))])
    f1 = np.concatenate([f1, np.ones(len(still))])

    leg, poly, f0, f1 = _lowest_code_on_shared_edges(leg, poly, f0, f1)
    order = np.lexsort((f0, leg))
    leg, poly, f0, f1 = leg[order], poly[order], f0[order], f1[order]
    # Gaps between pieces (and before the first / after the last) are outside every polygon.
    first = np.ones(len(leg), dtype=bool)
    first[1:] = leg[1:] != leg[:-1]
    last = np.ones(len(leg), dtype=bool)
    last[:-1] = leg[1:] != leg[:-1]
    prev_end = np.where(first, 0.0, np.concatenate([[0.0], f1[:-1]]))
    eps = 1e-9
    gap = f0 > prev_end + eps
    tail = last & (f1 < 1 - eps)
    empty = np.setdiff1d(crossing, leg)  # touched a polygon only at a point
    out_leg = np.concatenate([leg[gap], leg[tail], empty])
    out_f0 = np.concatenate([prev_end[gap], f1[tail], np.zeros(len(empty))])
    out_f1 = np.concatenate([f0[gap], np.ones(tail.sum()), np.ones(len(empty))])
    return (
        np.concatenate([leg, out_leg]),
        np.concatenate([poly, np.full(len(out_leg), NO_GRID)]),
        np.concatenate([f0, out_f0]),
        np.concatenate([f1, out_f1]),
    )


def _lowest_code_on_shared_edges(leg, poly, f0, f1):
    """A leg running along an edge shared by two grids intersects both: keep the lower code's
    piece (grids are in code order), as point assignment does. Loops over crossing pieces only."""
    order = np.lexsort((f0, poly, leg))
    keep_leg, keep_poly, keep_f0, keep_f1 = [], [], [], []
    covered: list[tuple[float, float]] = []
    current = None
    for i in order:
        if leg[i] != current:
            current, covered = leg[i], []
        for a, b in _subtract(f0[i], f1[i], covered):
            keep_leg.append(leg[i])
            keep_poly.append(poly[i])
            keep_f0.append(a)
            keep_f1.append(b)
        covered.append((f0[i], f1[i]))
    return (
        np.asarray(keep_leg, dtype=np.int64),
        np.asarray(keep_poly, dtype=np.int64),
        np.asarray(keep_f0, dtype=float),
        np.asarray(keep_f1, dtype=float),
    )


def _subtract(a: float, b: float, covered: list[tuple[float, float]], eps: float = 1e-9):
    """Parts of [a, b] not in any covered interval."""
    parts = [(a, b)]
    for c0, c1 in covered:
        parts = [p for lo, hi in parts for p in ((lo, min(hi, c0)), (max(lo, c1), hi)) if p[1] - p[0] > eps]
    return parts


def _visit_lines(x0, y0, x1, y1, p_leg, f0, f1, visit, starts, distance):
    """One LineString per visit through its pieces' ends (None for visits of zero length)."""
    if not len(p_leg):
        return np.array([], dtype=object)
    dx, dy = x1[p_leg] - x0[p_leg], y1[p_leg] - y0[p_leg]
    sx, sy = x0[p_leg] + f0 * dx, y0[p_leg] + f0 * dy
    ex, ey = x0[p_leg] + f1 * dx, y0[p_leg] + f1 * dy
    # Coordinates: the start of each visit's first piece, then the end of every piece.
    xs = np.concatenate([sx[starts], ex])
    ys = np.concatenate([sy[starts], ey])
    owner = np.concatenate([np.arange(len(starts)), visit])
    position = np.concatenate([np.full(len(starts), -1), np.arange(len(p_leg))])
    order = np.lexsort((position, owner))
    lines = shapely.linestrings(xs[order], ys[order], indices=owner[order])
    lines = np.asarray(lines, dtype=object)
    lines[distance <= 0] = None
    return lines
