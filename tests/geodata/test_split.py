"""Splitting a track by grids: distances, times, entries and exits that can be checked by hand.

Coordinates are metres in a local square world: grid A is the square 0..100 × 0..100, grid B the
square 100..200 × 0..100 (sharing A's east edge)."""

import numpy as np
import pytest
import shapely

from geodata.assign import GridIndex
from geodata.split import OUTSIDE, split_by_polygons

A, B = 0, 1


@pytest.fixture
def index():
    return GridIndex(["A", "B"], [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])


def split(index, xy, t=None, segment=None, min_pass_m=0.0):
    xy = np.asarray(xy, float)
    t = np.full(len(xy), np.nan) if t is None else np.asarray(t, float)
    segment = np.zeros(len(xy), int) if segment is None else np.asarray(segment)
    return split_by_polygons(xy[:, 0], xy[:, 1], t, segment, index, min_pass_m=min_pass_m)


def table(visits):
    return [
        (int(p), round(float(d), 6), None if np.isnan(s) else round(float(s), 6))
        for p, d, s in zip(visits.polygon, visits.distance_m, visits.duration_s)
    ]


def test_one_leg_through_a_grid_is_cut_at_its_edges(index):
    # 300 m at 1 m/s from x=-50 to x=250 across A and B.
    visits = split(index, [(-50, 50), (250, 50)], t=[0, 300])
    assert table(visits) == [(OUTSIDE, 50, 50), (A, 100, 100), (B, 100, 100), (OUTSIDE, 50, 50)]
    assert list(visits.enter_time) == [0, 50, 150, 250]
    assert list(visits.exit_time) == [50, 150, 250, 300]
    assert shapely.length(visits.geometry[1]) == pytest.approx(100)


def test_fixes_inside_add_up_and_visits_merge_across_legs(index):
    xy = [(10, 10), (20, 10), (30, 10), (90, 10)]
    visits = split(index, xy, t=[0, 10, 30, 90])
    assert table(visits) == [(A, 80, 90)]
    assert (visits.enter_time[0], visits.exit_time[0]) == (0, 90)


def test_out_and_back_on_the_same_path_counts_both_ways(index):
    xy = [(-50, 50), (50, 50), (-50, 50)]
    visits = split(index, xy, t=[0, 100, 200])
    assert table(visits) == [(OUTSIDE, 50, 50), (A, 100, 100), (OUTSIDE, 50, 50)]
    assert (visits.enter_time[1], visits.exit_time[1]) == (50, 150)


def test_leaving_and_returning_makes_two_visits(index):
    xy = [(50, 50), (50, 150), (60, 50)]
    visits = split(index, xy, t=[0, 100, 200])
    assert [int(p) for p in visits.polygon] == [A, OUTSIDE, A]
    assert visits.distance_m.sum() == pytest.approx(100 + np.hypot(10, 100))


def test_walking_along_the_shared_edge_goes_to_the_lower_code(index):
    visits = split(index, [(100, 10), (100, 90)], t=[0, 80])
    assert table(visits) == [(A, 80, 80)]


def test_without_times_distance_is_known_and_time_is_not(index):
    visits = split(index, [(-50, 50), (50, 50)])
    assert table(visits) == [(OUTSIDE, 50, None), (A, 50, None)]
    assert np.isnan(visits.enter_time).all()


def test_segments_are_not_joined_across_a_gap(index):
    xy = [(10, 10), (20, 10), (30, 10), (40, 10)]
    visits = split(index, xy, t=[0, 10, 1000, 1010], segment=[0, 0, 1, 1])
    assert table(visits) == [(A, 10, 10), (A, 10, 10)]
    assert list(visits.segment) == [0, 1]


def test_standing_still_counts_time_but_no_distance(index):
    visits = split(index, [(10, 10), (10, 10), (20, 10)], t=[0, 60, 70])
    assert table(visits) == [(A, 10, 70)]


def test_a_single_fix_or_none_makes_no_visit(index):
    assert len(split(index, [(10, 10)], t=[0])) == 0
    assert len(split(index, np.empty((0, 2)))) == 0


# -- GPS jitter along a boundary ------------------------------------------------------------------

# Walking north along the A|B edge with the fix wobbling 3 m either side of it, 10 m per fix.
ZIGZAG = [(97 if i % 2 else 103, 5 + 10 * i) for i in range(10)]


def test_jitter_across_a_shared_edge_is_one_visit_with_a_minimum_pass(index):
    walk = [(60, 0.5)] + [(97, 0.5)] + ZIGZAG  # 37 m in A first, then the zigzag
    raw = split(index, walk, t=np.arange(len(walk)) * 10.0)
    assert len(raw) > 8  # without the rule every wobble is an exit and an entry
    visits = split(index, walk, t=np.arange(len(walk)) * 10.0, min_pass_m=20)
    assert [int(p) for p in visits.polygon] == [A]
    assert visits.distance_m.sum() == pytest.approx(raw.distance_m.sum())
    assert visits.duration_s.sum() == pytest.approx((len(walk) - 1) * 10)


def test_a_real_crossing_is_kept_with_a_minimum_pass(index):
    visits = split(index, [(50, 50), (150, 50), (150, 60)], t=[0, 100, 110], min_pass_m=20)
    assert table(visits) == [(A, 50, 50), (B, 60, 60)]


def test_a_short_pass_at_the_start_joins_the_first_long_visit(index):
    visits = split(index, [(-5, 50), (60, 50)], t=[0, 65], min_pass_m=20)
    assert table(visits) == [(A, 65, 65)]


def test_a_segment_of_short_passes_only_keeps_them(index):
    visits = split(index, [(-5, 50), (5, 50)], t=[0, 10], min_pass_m=20)
    assert table(visits) == [(OUTSIDE, 5, 5), (A, 5, 5)]


def test_short_passes_do_not_borrow_across_segments(index):
    xy = [(50, 50), (99, 50), (99, 50), (105, 50), (160, 50)]
    visits = split(index, xy, t=[0, 49, 500, 506, 561], segment=[0, 0, 1, 1, 1], min_pass_m=20)
    assert table(visits) == [(A, 49, 49), (B, 61, 61)]


# -- against GEOS ---------------------------------------------------------------------------------


def test_random_walks_over_the_reference_grids_match_geos_intersections():
    """Per-grid distance of noisy random walks over real grid shapes (shared edges, holes,
    concave rings) equals the length of the GEOS intersection of the walked line with each grid.
    25,000 fixes: long enough for the lattice shortcut for legs inside one cell."""
    from geodata import reference
    from geodata.crs import METRIC

    grids = reference.load_grids().to_crs(METRIC)
    index = GridIndex(list(grids.code), list(grids.geometry.values))
    rng = np.random.default_rng(3)
    for town in ("GQ", "YZ", "CB"):
        minx, miny, maxx, maxy = grids[grids.town == town].total_bounds
        steps = rng.normal(0, 15, (25_000, 2)).cumsum(axis=0)
        xy = np.column_stack([minx, miny]) + np.abs(steps) % [maxx - minx, maxy - miny]
        visits = split_by_polygons(
            xy[:, 0], xy[:, 1], np.arange(len(xy), dtype=float), np.zeros(len(xy), int), index
        )
        walked = shapely.LineString(xy)
        for i, polygon in enumerate(index.polygons):
            expected = shapely.intersection(walked, polygon).length
            got = visits.distance_m[visits.polygon == i].sum()
            assert got == pytest.approx(expected, rel=1e-6, abs=1e-6), index.codes[i]
        assert visits.distance_m.sum() == pytest.approx(walked.length)


def _edge_walk(n: int, seed: int):
    """A walk along the Gaoqiao grids' edges with 4 m noise per fix (it crosses them at every
    other leg), plus some long legs and repeated fixes."""
    from geodata import reference
    from geodata.crs import METRIC

    grids = reference.load_grids().to_crs(METRIC)
    index = GridIndex(list(grids.code), list(grids.geometry.values))
    rng = np.random.default_rng(seed)
    rings = [shapely.get_exterior_ring(shapely.get_parts(g)[0]) for g in grids[grids.town == "GQ"].geometry]
    d = np.arange(n) * 1.1
    ring = rings[seed % len(rings)]
    p = shapely.line_interpolate_point(ring, d % ring.length)
    x, y = shapely.get_x(p) + rng.normal(0, 4, n), shapely.get_y(p) + rng.normal(0, 4, n)
    x[::97] += rng.normal(0, 300, len(x[::97]))  # long legs, both ways
    x[5::50], y[5::50] = x[4::50][: len(x[5::50])], y[4::50][: len(y[5::50])]  # standing still
    return index, x, y


def test_legs_said_not_to_touch_an_edge_do_not_touch_one():
    index, x, y = _edge_walk(20_000, 1)
    # Vertices of the grids themselves as leg ends, and legs along an edge, touch exactly.
    e = index.edges
    x = np.r_[x, e.x0[:200], e.x0[:200] + 0.3 * (e.x1[:200] - e.x0[:200])]
    y = np.r_[y, e.y0[:200], e.y0[:200] + 0.3 * (e.y1[:200] - e.y0[:200])]
    touching = e.touching(x[:-1], y[:-1], x[1:], y[1:])
    legs = shapely.linestrings(
        np.stack([np.column_stack([x[:-1], x[1:]]), np.column_stack([y[:-1], y[1:]])], axis=-1)
    )
    boundary = shapely.union_all(shapely.boundary(index.polygons))
    geos = shapely.intersects(legs, boundary)
    assert not (geos & ~touching).any()
    assert touching.mean() < 0.8 and geos.sum() > 1000  # the test is not vacuous either way


@pytest.mark.parametrize("seed", [1, 2])
def test_splitting_with_and_without_the_touch_prefilter_is_the_same(monkeypatch, seed):
    from geodata.assign import PolygonEdges

    index, x, y = _edge_walk(30_000, seed)
    t = np.arange(len(x), dtype=float)
    segment = np.repeat([0, 1], [len(x) // 3, len(x) - len(x) // 3])
    fast = split_by_polygons(x, y, t, segment, index, min_pass_m=20)
    monkeypatch.setattr(PolygonEdges, "touching", lambda self, x0, *_: np.ones(len(x0), dtype=bool))
    exact = split_by_polygons(x, y, t, segment, index, min_pass_m=20)
    for name in ("polygon", "segment", "distance_m", "duration_s", "enter_time", "exit_time"):
        assert np.array_equal(getattr(fast, name), getattr(exact, name), equal_nan=True), name
    assert all(
        shapely.equals_exact(a, b, 0) if a is not None else b is None
        for a, b in zip(fast.geometry, exact.geometry)
    )


def test_points_within_a_distance_of_an_edge_are_those_geos_finds():
    index, x, y = _edge_walk(20_000, 3)
    x = x + np.random.default_rng(4).normal(0, 60, len(x))
    _, distance = index.edges.tree.query_nearest(
        shapely.points(x, y), return_distance=True, all_matches=False
    )
    for band in (0.5, 60.0, 333.0):
        within = index.edges.within(x, y, band)
        close = np.abs(distance - band) < 1e-6  # rounding may differ exactly at the band
        assert np.array_equal(within[~close], (distance <= band)[~close]), band
        assert 0 < within.sum() < len(x)
    assert not index.edges.within(np.array([np.nan]), np.array([1.0]), 60.0).any()


@pytest.mark.parametrize("seed", [1, 2])
def test_cutting_box_candidates_gives_what_cutting_geos_hits_gives(monkeypatch, seed):
    index, x, y = _edge_walk(30_000, seed)
    t = np.arange(len(x), dtype=float)
    segment = np.zeros(len(x), dtype=int)
    boxes = split_by_polygons(x, y, t, segment, index, min_pass_m=20)
    import geodata.split as split_module

    def geos_hits(x0, y0, x1, y1, _bounds):
        legs = shapely.linestrings(np.stack([np.column_stack([x0, x1]), np.column_stack([y0, y1])], axis=-1))
        return index.query(legs, "intersects")

    monkeypatch.setattr(split_module, "_box_pairs", geos_hits)
    hits = split_by_polygons(x, y, t, segment, index, min_pass_m=20)
    for name in ("polygon", "segment", "distance_m", "duration_s", "enter_time", "exit_time"):
        assert np.array_equal(getattr(boxes, name), getattr(hits, name), equal_nan=True), name
    assert all(
        shapely.equals_exact(a, b, 0) if a is not None else b is None
        for a, b in zip(boxes.geometry, hits.geometry)
    )


def test_box_pairs_are_the_tree_s():
    index, x, y = _edge_walk(20_000, 5)
    e = index.edges
    legs = shapely.linestrings(
        np.stack([np.column_stack([x[:-1], x[1:]]), np.column_stack([y[:-1], y[1:]])], axis=-1)
    )
    leg, edge = e.box_pairs(x[:-1], y[:-1], x[1:], y[1:])
    want_leg, want_edge = e.tree.query(legs)
    assert sorted(zip(leg.tolist(), edge.tolist())) == sorted(zip(want_leg.tolist(), want_edge.tolist()))
    from geodata.split import _box_pairs

    leg, poly = _box_pairs(x[:-1], y[:-1], x[1:], y[1:], index.bounds)
    want_leg, want_poly = index.query(legs, predicate=None)
    assert sorted(zip(leg.tolist(), poly.tolist())) == sorted(zip(want_leg.tolist(), want_poly.tolist()))
