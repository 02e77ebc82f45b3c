"""Splitting a timed track by polygons: distance and time inside each polygon, with entry/exit times.

Works in a metric CRS on columnar arrays. The track is cut into legs (straight lines between
consecutive fixes of one segment); a leg is either inside one polygon, outside all of them, or
crosses boundaries. Only the crossing legs (a few per cent) are intersected exactly; time along a
leg is interpolated linearly, so a leg that spends 40 % of its length inside a grid spends 40 % of
its duration there. Consecutive pieces in the same polygon form a *visit*: the unit stored per
patrol and grid. A track that follows a boundary (a dike between two grids) zig-zags across it
with GPS noise; passes shorter than ``min_pass_m`` are counted in the polygon the track was in
before them, so jitter neither makes thousands of visits nor invents entries and exits. Measures along the whole line are never used, because patrols often walk out and
back along the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geodata.assign import EDGE, NO_GRID, GridIndex

OUTSIDE = NO_GRID  # visits outside every polygon carry this index
# Legs (and visit pieces) handled at a time: the cutting makes a few dozen arrays per leg, so a
# track of a million fixes is cut in pieces of this size instead of all at once (memory).
CHUNK_LEGS = 131_072


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
    *,
    min_pass_m: float = 0.0,
) -> Visits:
    """Visits of the track (x, y metric; t seconds with NaN unknown; segment ids) to ``index``'s
    polygons, which must be in the same metric CRS. Fixes must be the good ones, in order."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    t, segment = np.asarray(t, float), np.asarray(segment)
    leg = np.flatnonzero(segment[:-1] == segment[1:]) if len(x) > 1 else np.array([], dtype=np.int64)
    chunks = [_leg_pieces(x, y, t, segment, leg, a, index) for a in range(0, len(leg), CHUNK_LEGS)]
    if chunks:
        p_leg, p_poly, f0, f1, p_len, p_t0, p_t1, p_seg = (np.concatenate(c) for c in zip(*chunks))
    else:
        p_leg, p_poly, p_seg = (np.array([], dtype=np.int64) for _ in range(3))
        f0, f1, p_len, p_t0, p_t1 = (np.array([]) for _ in range(5))
    del chunks
    if min_pass_m > 0 and len(p_leg) > 1:
        p_poly = _absorb_short_passes(p_poly, p_seg, p_leg, p_len, min_pass_m)
    visit, starts = _runs(p_poly, p_seg, p_leg)
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

    geometry = _visit_lines(x, y, leg, p_leg, f0, f1, visit, starts, distance)
    return Visits(
        polygon=p_poly[starts] if n else np.array([], dtype=np.int64),
        segment=p_seg[starts].astype(np.int32) if n else np.array([], dtype=np.int32),
        distance_m=distance,
        duration_s=duration,
        enter_time=enter,
        exit_time=leave,
        geometry=geometry,
    )


def _leg_pieces(x, y, t, segment, leg, first: int, index: GridIndex):
    """The pieces of legs ``leg[first : first + CHUNK_LEGS]``: (leg, polygon, start and end
    fraction, length, start and end time, segment) per piece, legs numbered as in ``leg``."""
    ids = leg[first : first + CHUNK_LEGS]
    x0, y0, x1, y1 = x[ids], y[ids], x[ids + 1], y[ids + 1]
    length = np.hypot(x1 - x0, y1 - y0)
    p_leg, p_poly, f0, f1 = _pieces(x0, y0, x1, y1, length, index)
    del x0, y0, x1, y1
    # A piece's share of its leg gives its length and duration; its ends give entry and exit.
    start = t[ids][p_leg]
    dt = (t[ids + 1] - t[ids])[p_leg]
    return (
        p_leg + first,
        p_poly,
        f0,
        f1,
        (f1 - f0) * length[p_leg],
        start + f0 * dt,
        start + f1 * dt,
        segment[ids][p_leg],
    )


def _runs(p_poly, p_seg, p_leg):
    """Pieces of the same polygon on consecutive legs of one segment make one run (visit):
    (run of each piece, index of each run's first piece)."""
    new_run = np.ones(len(p_leg), dtype=bool)
    if len(p_leg) > 1:
        new_run[1:] = (p_poly[1:] != p_poly[:-1]) | (p_seg[1:] != p_seg[:-1]) | (p_leg[1:] - p_leg[:-1] > 1)
    return np.cumsum(new_run) - 1, np.flatnonzero(new_run)


def _absorb_short_passes(p_poly, p_seg, p_leg, p_len, min_pass_m: float) -> np.ndarray:
    """Relabel the pieces of runs shorter than ``min_pass_m`` with the polygon of the last long
    run before them in their segment (or, at a segment's start, the first long run after)."""
    run, starts = _runs(p_poly, p_seg, p_leg)
    n = len(starts)
    run_len = np.bincount(run, weights=p_len, minlength=n)
    run_seg = p_seg[starts]
    long_run = np.where(run_len >= min_pass_m, np.arange(n), -1)
    before = np.maximum.accumulate(long_run)
    after = np.where(long_run >= 0, long_run, n)[::-1]
    after = np.minimum.accumulate(after)[::-1]
    first_of_segment = np.maximum.accumulate(
        np.where(np.r_[True, run_seg[1:] != run_seg[:-1]], np.arange(n), 0)
    )
    last_of_segment = np.minimum.accumulate(
        np.where(np.r_[run_seg[:-1] != run_seg[1:], True], np.arange(n), n)[::-1]
    )[::-1]
    source = np.arange(n)
    use_before = (before >= first_of_segment) & (long_run < 0)
    use_after = ~use_before & (after <= last_of_segment) & (long_run < 0)
    source[use_before] = before[use_before]
    source[use_after] = after[use_after]
    # A segment with no long run at all keeps its labels.
    return p_poly[starts][source][run]


def _pieces(x0, y0, x1, y1, length, index: GridIndex):
    """(leg, polygon, start fraction, end fraction) for every piece of every leg, in track order."""
    # Long tracks: most legs have both ends in one lattice cell that is inside a grid or touches
    # none, so the whole leg is settled without building its geometry.
    settled = index.settled_legs(x0, y0, x1, y1)
    done = np.flatnonzero(settled != EDGE)
    todo = np.flatnonzero(settled == EDGE)
    leg_ids, poly_ids = [done], [settled[done]]
    f0s, f1s = [np.zeros(len(done))], [np.ones(len(done))]

    # Of the rest, a leg that touches no polygon edge is wholly inside the polygon holding its
    # first point, or outside all of them: one point test, no geometry (a vectorised leg × nearby
    # edge test, exact to TOUCH_EPS and erring towards "touches"). Only the legs that touch an
    # edge (a boundary-hugging walk has many) take the exact path below.
    if len(todo):
        clear = ~index.edges.touching(x0[todo], y0[todo], x1[todo], y1[todo])
        free = todo[clear]
        where = index.assign_index(x0[free], y0[free])
        leg_ids.append(free)
        poly_ids.append(where)
        f0s.append(np.zeros(len(free)))
        f1s.append(np.ones(len(free)))
        todo = todo[~clear]

    x0, y0, x1, y1, length = x0[todo], y0[todo], x1[todo], y1[todo], length[todo]
    a = index.assign_index(x0, y0)
    b = index.assign_index(x1, y1)
    # Most remaining legs lie wholly inside one polygon (same polygon at both ends, and covered by
    # it) or touch none; everything else is cut exactly below. Only the former need a geometry.
    same = (a == b) & (a != NO_GRID)
    inside = np.zeros(len(todo), dtype=bool)
    if same.any():
        s = np.flatnonzero(same)
        legs = shapely.linestrings(
            np.stack([np.column_stack([x0[s], x1[s]]), np.column_stack([y0[s], y1[s]])], axis=-1)
        )
        inside[s] = shapely.contains_properly(index.polygons[a[s]], legs) | (length[s] == 0)
    rest = np.flatnonzero(~inside)
    # Polygons whose box meets the leg's: a superset of those it meets, and cheaper than GEOS's
    # test, which the exact cut repeats anyway (a pair that does not meet yields no piece, and a
    # leg whose pairs all yield none is outside, as an untouched leg is).
    hit_leg, hit_poly = (
        _box_pairs(x0[rest], y0[rest], x1[rest], y1[rest], index.bounds) if rest.size else ([], [])
    )
    hit_leg = rest[np.asarray(hit_leg, dtype=np.int64)]
    hit_poly = np.asarray(hit_poly, dtype=np.int64)
    untouched = np.setdiff1d(rest, hit_leg)
    leg_ids += [todo[inside], todo[untouched]]
    poly_ids += [a[inside], np.full(len(untouched), NO_GRID)]
    f0s += [np.zeros(inside.sum()), np.zeros(len(untouched))]
    f1s += [np.ones(inside.sum()), np.ones(len(untouched))]
    if hit_leg.size:
        cut_leg, cut_poly, c0, c1 = _cut(x0, y0, x1, y1, hit_leg, hit_poly, index, a)
        leg_ids.append(todo[cut_leg])
        poly_ids.append(cut_poly)
        f0s.append(c0)
        f1s.append(c1)
    p_leg = np.concatenate(leg_ids).astype(np.int64)
    p_poly = np.concatenate(poly_ids).astype(np.int64)
    f0 = np.concatenate(f0s)
    f1 = np.concatenate(f1s)
    order = np.lexsort((f0, p_leg))
    return p_leg[order], p_poly[order], f0[order], f1[order]


def _box_pairs(x0, y0, x1, y1, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(leg, polygon) wherever the leg's bounding box meets the polygon's (closed), leg by leg
    and polygon by polygon: what STRtree.query without predicate gives, without leg geometries."""
    lminx, lmaxx = np.minimum(x0, x1), np.maximum(x0, x1)
    lminy, lmaxy = np.minimum(y0, y1), np.maximum(y0, y1)
    meets = (
        (lminx[:, None] <= bounds[None, :, 2]) & (lmaxx[:, None] >= bounds[None, :, 0])
        & (lminy[:, None] <= bounds[None, :, 3]) & (lmaxy[:, None] >= bounds[None, :, 1])
    )  # fmt: skip
    leg, poly = np.nonzero(meets)
    return leg.astype(np.int64), poly.astype(np.int64)


def _cut(x0, y0, x1, y1, hit_leg, hit_poly, index: GridIndex, start_poly):
    """Exact pieces of the legs that cross polygon boundaries, gaps filled with OUTSIDE pieces."""
    crossing = np.unique(hit_leg)
    pair, f0, f1 = _inside_intervals(x0, y0, x1, y1, hit_leg, hit_poly, index)
    leg, poly = hit_leg[pair], hit_poly[pair]
    length = np.hypot(x1 - x0, y1 - y0)
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


def _inside_intervals(x0, y0, x1, y1, hit_leg, hit_poly, index: GridIndex):
    """For each (leg, polygon) pair, the parts of the leg inside the polygon as fractions of the
    leg: (pair, start, end). Vectorised instead of one GEOS intersection per pair: the leg is
    broken wherever it meets one of the polygon's edges (found through an STRtree of edges), and
    each part between breaks is inside when its midpoint is covered by the polygon (edges
    included, so a leg along a shared edge is in both, and the lower code keeps it). A spurious
    break only splits a part in two, so the tolerances err on the side of breaking."""
    edges = index.edges
    n = len(hit_leg)
    npoly = len(index)
    pair_key = hit_leg * npoly + hit_poly
    pair_order = np.argsort(pair_key)
    # Edges whose box meets a leg's box, kept where that edge's polygon is one the leg hits.
    crossing = np.unique(hit_leg)
    leg, edge = edges.box_pairs(x0[crossing], y0[crossing], x1[crossing], y1[crossing])
    leg = crossing[leg]
    key = leg * npoly + edges.polygon[edge]
    slot = np.minimum(np.searchsorted(pair_key[pair_order], key), n - 1)
    known = pair_key[pair_order][slot] == key
    pair, leg, edge = pair_order[slot][known], leg[known], edge[known]
    px, py = x0[leg], y0[leg]
    rx, ry = x1[leg] - px, y1[leg] - py
    qx, qy = edges.x0[edge], edges.y0[edge]
    sx, sy = edges.x1[edge] - qx, edges.y1[edge] - qy
    wx, wy = qx - px, qy - py
    denom = rx * sy - ry * sx
    r_len = np.hypot(rx, ry)
    s_len = np.hypot(sx, sy)
    parallel = np.abs(denom) <= 1e-10 * r_len * s_len
    with np.errstate(divide="ignore", invalid="ignore"):  # parallel pairs are masked out below
        t = (wx * sy - wy * sx) / denom
        u = (wx * ry - wy * rx) / denom
        eps = 1e-9
        crosses = ~parallel & (t >= -eps) & (t <= 1 + eps) & (u >= -eps) & (u <= 1 + eps)
        # An edge along the leg: break at its ends, projected onto the leg.
        along = parallel & (np.abs(wx * ry - wy * rx) <= 1e-9 * r_len * np.maximum(r_len, s_len))
        sq = np.maximum(r_len**2, 1e-300)
        t_start = (wx * rx + wy * ry) / sq
        t_end = ((qx + sx - px) * rx + (qy + sy - py) * ry) / sq
    break_pair = np.concatenate([pair[crosses], pair[along], pair[along], np.arange(n), np.arange(n)])
    break_at = np.clip(
        np.concatenate([t[crosses], t_start[along], t_end[along], np.zeros(n), np.ones(n)]), 0.0, 1.0
    )
    order = np.lexsort((break_at, break_pair))
    break_pair, break_at = break_pair[order], break_at[order]
    # The parts between consecutive breaks of one pair, and whether each is inside.
    same = (break_pair[1:] == break_pair[:-1]) & (break_at[1:] - break_at[:-1] > 1e-12)
    part_pair, f0, f1 = break_pair[:-1][same], break_at[:-1][same], break_at[1:][same]
    mid = (f0 + f1) / 2
    part_leg = hit_leg[part_pair]
    mx = x0[part_leg] + mid * (x1[part_leg] - x0[part_leg])
    my = y0[part_leg] + mid * (y1[part_leg] - y0[part_leg])
    inside = shapely.intersects_xy(index.polygons[hit_poly[part_pair]], mx, my)
    part_pair, f0, f1 = part_pair[inside], f0[inside], f1[inside]
    # Adjacent inside parts of one pair are one piece.
    new = np.ones(len(part_pair), dtype=bool)
    new[1:] = (part_pair[1:] != part_pair[:-1]) | (f0[1:] > f1[:-1] + 1e-12)
    starts = np.flatnonzero(new)
    if not len(starts):
        return np.array([], dtype=np.int64), np.array([]), np.array([])
    return part_pair[starts], f0[starts], np.maximum.reduceat(f1, starts)


def _lowest_code_on_shared_edges(leg, poly, f0, f1):
    """A leg running along an edge shared by two grids is inside both: keep the lower code's
    piece (grids are in code order), as point assignment does. Only legs whose pieces overlap
    (rare) go through the interval loop."""
    order = np.lexsort((f0, leg))
    leg, poly, f0, f1 = leg[order], poly[order], f0[order], f1[order]
    overlaps = (leg[1:] == leg[:-1]) & (f0[1:] < f1[:-1] - 1e-9)
    if not overlaps.any():
        return leg, poly, f0, f1
    tangled = np.isin(leg, np.unique(leg[1:][overlaps]))
    fixed = _lowest_code_loop(leg[tangled], poly[tangled], f0[tangled], f1[tangled])
    return tuple(np.concatenate([a[~tangled], b]) for a, b in zip((leg, poly, f0, f1), fixed))


def _lowest_code_loop(leg, poly, f0, f1):
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


def _visit_lines(x, y, leg, p_leg, f0, f1, visit, starts, distance):
    """One LineString per visit through its pieces' ends (None for visits of zero length), built
    for about ``CHUNK_LEGS`` pieces at a time."""
    n = len(starts)
    lines = np.empty(n, dtype=object)
    bounds = np.r_[starts, len(p_leg)]
    v = 0
    while v < n:
        w = min(n, max(v + 1, int(np.searchsorted(bounds, bounds[v] + CHUNK_LEGS, side="right")) - 1))
        a, b = bounds[v], bounds[w]
        lines[v:w] = _lines_of(x, y, leg[p_leg[a:b]], f0[a:b], f1[a:b], visit[a:b] - v, starts[v:w] - a)
        v = w
    lines[distance <= 0] = None
    return lines


def _lines_of(x, y, first_fix, f0, f1, visit, starts):
    """The lines of consecutive visits (numbered from 0) from their pieces (the leg of each
    piece given by its first fix)."""
    x0, y0 = x[first_fix], y[first_fix]
    dx, dy = x[first_fix + 1] - x0, y[first_fix + 1] - y0
    sx, sy = x0 + f0 * dx, y0 + f0 * dy
    ex, ey = x0 + f1 * dx, y0 + f1 * dy
    # Coordinates: the start of each visit's first piece, then the end of every piece.
    xs = np.concatenate([sx[starts], ex])
    ys = np.concatenate([sy[starts], ey])
    owner = np.concatenate([np.arange(len(starts)), visit])
    position = np.concatenate([np.full(len(starts), -1), np.arange(len(f0))])
    order = np.lexsort((position, owner))
    return shapely.linestrings(xs[order], ys[order], indices=owner[order])
