"""Point → grid assignment: one vectorised call, the same answer as testing each point against
each polygon, and deterministic on shared edges."""

import numpy as np
import shapely
from shapely.geometry import Point

from geodata import reference
from geodata.assign import LATTICE_MIN_POINTS, NO_GRID, GridIndex


def _reference_index():
    grids = reference.load_grids()
    return GridIndex(grids.code.to_numpy(), grids.geometry.values), grids


def test_agrees_with_a_per_point_loop_on_the_reference_grids():
    index, grids = _reference_index()
    rng = np.random.default_rng(42)
    minx, miny, maxx, maxy = grids.total_bounds
    lon, lat = rng.uniform(minx, maxx, 5000), rng.uniform(miny, maxy, 5000)
    # Add points known to be inside: one per grid.
    inside = shapely.point_on_surface(grids.geometry.values)
    lon = np.concatenate([lon, shapely.get_x(inside)])
    lat = np.concatenate([lat, shapely.get_y(inside)])
    expected = [
        next((code for code, poly in zip(grids.code, grids.geometry) if poly.intersects(Point(x, y))), None)
        for x, y in zip(lon, lat)
    ]
    assert list(index.assign(lon, lat)) == expected
    assert list(index.assign(lon[-len(grids) :], lat[-len(grids) :])) == list(grids.code)


def test_shared_edge_goes_to_the_lower_code_whatever_the_order():
    left, right = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    for codes, polys in [(["A", "B"], [left, right]), (["B", "A"], [right, left])]:
        index = GridIndex(codes, polys)
        assert list(index.assign(np.array([1.0, 0.5, 1.5]), np.array([0.5, 0.5, 0.5]))) == ["A", "A", "B"]


def test_outside_nan_and_empty_input():
    index = GridIndex(["A"], [shapely.box(0, 0, 1, 1)])
    got = index.assign_index(np.array([5.0, np.nan, 0.5]), np.array([5.0, 0.5, np.nan]))
    assert list(got) == [NO_GRID, NO_GRID, NO_GRID]
    assert index.assign(np.array([]), np.array([])).shape == (0,)
    assert list(GridIndex([], []).assign(np.array([0.5]), np.array([0.5]))) == [None]


def test_polygon_holes_are_respected():
    ring = shapely.box(0, 0, 10, 10).difference(shapely.box(4, 4, 6, 6))
    index = GridIndex(["R"], [ring])
    assert list(index.assign(np.array([5.0, 1.0]), np.array([5.0, 1.0]))) == [None, "R"]


def test_large_batches_use_the_lattice_and_agree_with_the_exact_test():
    index, grids = _reference_index()
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = grids.total_bounds
    n = LATTICE_MIN_POINTS * 3
    lon, lat = rng.uniform(minx - 0.01, maxx + 0.01, n), rng.uniform(miny - 0.01, maxy + 0.01, n)
    # Every polygon vertex (points exactly on edges, shared or not) and some NaN.
    vertices = shapely.get_coordinates(grids.geometry.values)
    lon = np.concatenate([lon, vertices[:, 0], [np.nan, 110.0]])
    lat = np.concatenate([lat, vertices[:, 1], [21.5, np.nan]])
    assert index._lattice is None
    lattice = index.assign_index(lon, lat)
    assert index._lattice is not None
    exact = index._exact(lon, lat)
    assert np.array_equal(lattice, exact)
    assert (lattice[-len(vertices) - 2 : -2] != NO_GRID).all()  # vertices belong to their grid


def test_lattice_resolves_shared_edges_like_the_exact_test():
    index = GridIndex(["B", "A"], [shapely.box(1, 0, 2, 1), shapely.box(0, 0, 1, 1)])
    y = np.linspace(0, 1, LATTICE_MIN_POINTS)
    got = index.assign(np.full_like(y, 1.0), y)
    assert set(got) == {"A"}
