"""Point → grid assignment: vectorised GridIndex against per-point shapely loops, in one run.

    .venv/bin/python bench/bench_assign.py [--points 1000000] [--loop-points 20000]

Points are uniform random in the bounding box of all shipped grids (Lianjiang + Hepu), which is
denser around grids than the whole service region and so the harder case. The loops are timed on
a subsample (they take minutes on a million points) and reported as points/s; the results of all
methods are checked to agree on that subsample.
Targets (issue 2): ≥ 2,000,000 points/s and ≥ 50× the per-point loop.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import Point

from geodata import reference
from geodata.assign import GridIndex
from geodata.region import REGION_BBOX


def best_of(repeats: int, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--loop-points", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    grids = reference.load_grids()
    codes, polygons = grids.code.to_numpy(), grids.geometry.values
    minx, miny, maxx, maxy = grids.total_bounds
    rng = np.random.default_rng(2026)
    lon = rng.uniform(minx, maxx, args.points)
    lat = rng.uniform(miny, maxy, args.points)

    build_time, index = best_of(args.repeats, lambda: GridIndex(codes, polygons))
    cold_time, _ = best_of(args.repeats, lambda: GridIndex(codes, polygons).assign(lon, lat))
    vec_time, vec_codes = best_of(args.repeats, lambda: index.assign(lon, lat))
    vec_rate = args.points / vec_time
    exact_time, exact_index = best_of(args.repeats, lambda: index._exact(lon, lat))
    assert np.array_equal(index.codes[exact_index[exact_index >= 0]], vec_codes[exact_index >= 0])
    region_lon = rng.uniform(REGION_BBOX[0], REGION_BBOX[2], args.points)
    region_lat = rng.uniform(REGION_BBOX[1], REGION_BBOX[3], args.points)
    region_time, _ = best_of(args.repeats, lambda: index.assign(region_lon, region_lat))

    n = args.loop_points
    sub_lon, sub_lat = lon[:n], lat[:n]
    order = np.argsort(codes)
    sorted_codes, sorted_polys = codes[order], list(polygons[order])

    def naive_loop():
        out = []
        for x, y in zip(sub_lon, sub_lat):
            p = Point(x, y)
            out.append(next((c for c, poly in zip(sorted_codes, sorted_polys) if poly.intersects(p)), None))
        return out

    tree = STRtree(sorted_polys)
    shapely.prepare(np.asarray(sorted_polys, dtype=object))

    def tree_loop():
        out = []
        for x, y in zip(sub_lon, sub_lat):
            hits = tree.query(Point(x, y), predicate="intersects")
            out.append(sorted_codes[hits.min()] if hits.size else None)
        return out

    naive_time, naive_codes = best_of(1, naive_loop)
    tree_time, tree_codes = best_of(1, tree_loop)
    assert naive_codes == tree_codes == list(vec_codes[:n]), "methods disagree"

    naive_rate, tree_rate = n / naive_time, n / tree_time
    inside = np.count_nonzero(vec_codes != None)  # noqa: E711 - object array comparison
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}, "
        f"shapely {shapely.__version__}, numpy {np.__version__}"
    )
    print(f"grids: {len(codes)}; points: {args.points:,} ({inside / args.points:.1%} inside a grid)")
    print(f"index build:                          {build_time * 1000:8.2f} ms")
    print(f"vectorised GridIndex.assign:          {vec_time * 1000:8.1f} ms  {vec_rate:14,.0f} points/s")
    print(
        f"  first call on a new index (+lattice): {cold_time * 1000:8.1f} ms  {args.points / cold_time:14,.0f} points/s"
    )
    print(
        f"  exact test only (no lattice):         {exact_time * 1000:8.1f} ms  {args.points / exact_time:14,.0f} points/s"
    )
    print(
        f"  points over the whole region bbox:    {region_time * 1000:8.1f} ms  {args.points / region_time:14,.0f} points/s"
    )
    print(f"per-point loop, all polygons ({n:,}): {naive_time * 1000:8.1f} ms  {naive_rate:14,.0f} points/s")
    print(f"per-point loop, STRtree ({n:,}):      {tree_time * 1000:8.1f} ms  {tree_rate:14,.0f} points/s")
    print(f"speed-up vs per-point loop (all polygons): {vec_rate / naive_rate:8.1f}x")
    print(f"speed-up vs per-point loop (STRtree):      {vec_rate / tree_rate:8.1f}x")
    ok = vec_rate >= 2_000_000 and vec_rate / max(naive_rate, tree_rate) >= 50
    print(f"targets (>= 2,000,000 points/s and >= 50x the faster loop): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
