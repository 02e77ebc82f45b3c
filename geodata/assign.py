"""Point → grid assignment, vectorised: arrays of lon/lat in, grid codes out.

Tracks (tens of thousands of fixes per upload) and incidents (one at a time, or millions in a
re-assignment after a grid import) both go through :class:`GridIndex`.

How: points are first looked up in a lattice of small cells laid over the grids, each cell known
to be inside exactly one grid, outside every grid, or on an edge. Only points in edge cells (a few
per cent) get the exact, prepared ``intersects_xy`` test, against the grids whose bounding box holds
them. A point on an edge shared by two grids intersects both; it goes to the grid that comes first
in code order, so the answer never depends on storage order. Small batches (an incident, a short
track) skip the lattice, which is built on first need.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import shapely
from shapely import STRtree

NO_GRID = -1
EDGE = -2  # lattice cell (or leg) that needs the exact test

# Below this many points the exact test alone is cheaper than building the lattice.
LATTICE_MIN_POINTS = 20_000
LATTICE_MAX_CELLS = 4_000_000  # 8 MB of int16
LATTICE_TARGET_CELLS = 30_000  # cells inside the grids' bounding boxes, classified at build time


class GridIndex:
    """An immutable spatial index of grid polygons in WGS84 lon/lat."""

    def __init__(self, codes: Sequence[str], polygons: Sequence | np.ndarray):
        codes = np.asarray(codes, dtype=object)
        polygons = np.asarray(polygons, dtype=object)
        if codes.shape != polygons.shape:
            raise ValueError("codes and polygons must have the same length")
        order = np.argsort(codes.astype(str), kind="stable")  # code order decides shared edges
        self.codes = codes[order]
        self._shared = polygons[order]
        self._tree = STRtree(self._shared)
        self._bounds = shapely.bounds(self._shared)
        self._per_thread = threading.local()
        self._lattice: _Lattice | None = None
        self._edges: PolygonEdges | None = None

    @property
    def polygons(self) -> np.ndarray:
        """The grid polygons, prepared, as the calling thread's own copy.

        GEOS prepared geometries are not thread-safe (libgeos/geos#825): the service runs requests
        in threads that share one cached index, and concurrent uploads crashed the process in
        ``contains_properly``. A copy per thread costs a few MB at most."""
        mine = getattr(self._per_thread, "polygons", None)
        if mine is None:
            mine = shapely.from_wkb(shapely.to_wkb(self._shared))  # exact: WKB keeps every double
            shapely.prepare(mine)
            self._per_thread.polygons = mine
        return mine

    @property
    def bounds(self) -> np.ndarray:
        """(minx, miny, maxx, maxy) of each polygon, in code order."""
        return self._bounds

    @property
    def edges(self) -> PolygonEdges:
        """Every ring edge of every polygon, grouped by polygon (built on first need)."""
        if self._edges is None:
            self._edges = PolygonEdges(self.polygons)
        return self._edges

    def __len__(self) -> int:
        return len(self.codes)

    def assign_index(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into ``self.codes`` of the grid holding each point, or ``NO_GRID`` (-1)."""
        x = np.ascontiguousarray(lon, dtype=np.float64)
        y = np.ascontiguousarray(lat, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError("lon and lat must have the same shape")
        result = np.full(x.shape, NO_GRID, dtype=np.int64)
        if x.size == 0 or len(self) == 0:
            return result
        if x.size >= LATTICE_MIN_POINTS:
            if self._lattice is None:
                self._lattice = _Lattice(self.polygons, self._bounds)
            result = self._lattice.lookup(x, y)
            edge = np.flatnonzero(result == EDGE)
            result[edge] = NO_GRID
            result[edge] = self._exact(x[edge], y[edge])
            return result
        return self._exact(x, y)

    def settled_legs(self, x0, y0, x1, y1) -> np.ndarray:
        """For straight legs (x0, y0) → (x1, y1): the grid index when both ends lie in one lattice
        cell that is wholly inside a grid or touches none (NO_GRID), so the whole leg is too (a
        cell is convex); ``EDGE`` (-2) for every other leg, which needs the exact test. Short
        batches skip the lattice and get -2 throughout."""
        result = np.full(np.shape(x0), EDGE, dtype=np.int64)
        if np.size(x0) < LATTICE_MIN_POINTS or len(self) == 0:
            return result
        if self._lattice is None:
            self._lattice = _Lattice(self.polygons, self._bounds)
        start = self._lattice.cell_of(np.asarray(x0, float), np.asarray(y0, float))
        end = self._lattice.cell_of(np.asarray(x1, float), np.asarray(y1, float))
        same = (start == end) & (start >= 0)
        result[same] = self._lattice.state[start[same]]
        return result

    def _exact(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = np.full(x.shape, NO_GRID, dtype=np.int64)
        if x.size == 0:
            return result
        # Grids in code order: the first hit wins, so a shared edge goes to the lower code.
        for grid, points in self._candidates(x, y):
            free = points[result[points] == NO_GRID]
            if free.size:
                hit = shapely.intersects_xy(self.polygons[grid], x[free], y[free])
                result[free[hit]] = grid
        return result

    def _candidates(self, x: np.ndarray, y: np.ndarray):
        """Yield (grid, point indices inside the grid's bounding box), grids in code order.

        Points are sorted by longitude once so each grid's candidates come from a binary search
        and a slice, not a pass over every point: cost grows with the points near a grid.
        """
        finite = np.isfinite(x) & np.isfinite(y)
        by_x = np.flatnonzero(finite)[np.argsort(x[finite], kind="stable")]
        xs = x[by_x]
        minx, miny, maxx, maxy = self._bounds.T
        lo = np.searchsorted(xs, minx, side="left")
        hi = np.searchsorted(xs, maxx, side="right")
        for grid in range(len(self)):
            if hi[grid] <= lo[grid]:
                continue
            points = by_x[lo[grid] : hi[grid]]
            py = y[points]
            yield grid, points[(py >= miny[grid]) & (py <= maxy[grid])]

    def nearest(self, x: np.ndarray, y: np.ndarray, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
        """Per point: (index of the nearest grid within ``max_distance``, or NO_GRID; distance,
        NaN where none). Ties go to the lower code."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        y = np.atleast_1d(np.asarray(y, dtype=float))
        grid = np.full(x.shape, NO_GRID, dtype=np.int64)
        distance = np.full(x.shape, np.nan)
        if x.size == 0 or len(self) == 0 or max_distance <= 0:
            return grid, distance
        (point, hit), found = self._tree.query_nearest(
            shapely.points(x, y), max_distance=max_distance, return_distance=True, all_matches=True
        )
        order = np.lexsort((hit, point))  # per point, the lowest index (code) first among ties
        point, hit, found = point[order], hit[order], found[order]
        first = np.ones(len(point), dtype=bool)
        first[1:] = point[1:] != point[:-1]
        grid[point[first]] = hit[first]
        distance[point[first]] = found[first]
        return grid, distance

    def query(
        self, geometries: np.ndarray, predicate: str | None = "intersects"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(geometry index, grid index) pairs where ``predicate`` holds (None: where the bounding
        boxes meet), as STRtree.query."""
        pairs = self._tree.query(geometries, predicate=predicate)
        return pairs[0], pairs[1]

    def assign(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Grid code of each point (object array), ``None`` outside every grid."""
        index = self.assign_index(lon, lat)
        codes = np.empty(index.shape, dtype=object)
        inside = index != NO_GRID
        codes[inside] = self.codes[index[inside]]
        return codes


class PolygonEdges:
    """The edges (exterior and hole rings) of an array of (multi)polygons as flat arrays, each
    with the index of its polygon, and an STRtree over them."""

    def __init__(self, polygons: np.ndarray):
        parts, part_of = shapely.get_parts(polygons, return_index=True)
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        coords, coord_of = shapely.get_coordinates(rings, return_index=True)
        same_ring = coord_of[:-1] == coord_of[1:]  # consecutive vertices of one ring make an edge
        first = np.flatnonzero(same_ring)
        self.x0, self.y0 = coords[first, 0], coords[first, 1]
        self.x1, self.y1 = coords[first + 1, 0], coords[first + 1, 1]
        owner = part_of[ring_of[coord_of[first]]]
        order = np.argsort(owner, kind="stable")
        self.x0, self.y0, self.x1, self.y1 = self.x0[order], self.y0[order], self.x1[order], self.y1[order]
        self.polygon = owner[order]
        lines = shapely.linestrings(
            np.stack([np.column_stack([self.x0, self.x1]), np.column_stack([self.y0, self.y1])], axis=-1)
        ) if len(first) else np.array([], dtype=object)  # fmt: skip
        self.tree = STRtree(lines)  # bounding-box queries: which edges can a leg meet
        self._cells: _EdgeCells | None = None

    def touching(self, x0, y0, x1, y1) -> np.ndarray:
        """Per straight leg (x0, y0) → (x1, y1): False only where the leg surely touches no edge
        (it is farther than ``TOUCH_EPS`` from every edge); True where it does or may (long legs,
        non-finite coordinates). A leg that touches no edge lies wholly inside or wholly outside
        each polygon, so its first point alone says where it is."""
        if self._cells is None:
            self._cells = _EdgeCells(self)
        return self._cells.touching(
            np.asarray(x0, float), np.asarray(y0, float), np.asarray(x1, float), np.asarray(y1, float)
        )

    def box_pairs(self, x0, y0, x1, y1) -> tuple[np.ndarray, np.ndarray]:
        """(leg, edge) wherever the boxes of a straight leg and an edge meet: the pairs
        ``self.tree.query`` gives for the legs' lines, in another order, without building them."""
        if self._cells is None:
            self._cells = _EdgeCells(self)
        return self._cells.box_pairs(
            np.asarray(x0, float), np.asarray(y0, float), np.asarray(x1, float), np.asarray(y1, float)
        )

    def within(self, x, y, distance: float) -> np.ndarray:
        """Per point: whether some edge lies within ``distance`` (closed), as
        ``STRtree.query_nearest``'s distance ≤ ``distance`` says, without building points."""
        if self._cells is None:
            self._cells = _EdgeCells(self)
        return self._cells.within(np.asarray(x, float), np.asarray(y, float), float(distance))


TOUCH_EPS = 1e-3  # metres: far above the rounding of the touch test, far below any GPS precision


class _EdgeCells:
    """Edges bucketed by the square cells their (padded) boxes cover, for a vectorised test of
    short legs against the few edges near them, with no geometry objects built."""

    def __init__(self, edges: PolygonEdges):
        self.edges = edges
        x0, y0, x1, y1 = edges.x0, edges.y0, edges.x1, edges.y1
        n = len(x0)
        length = np.hypot(x1 - x0, y1 - y0)
        self.size = float(np.clip(np.median(length) / 2, 5.0, 500.0)) if n else 1.0
        pad = 2 * TOUCH_EPS
        minx, maxx = np.minimum(x0, x1) - pad, np.maximum(x0, x1) + pad
        miny, maxy = np.minimum(y0, y1) - pad, np.maximum(y0, y1) + pad
        self.ox, self.oy = (minx.min(), miny.min()) if n else (0.0, 0.0)
        i0, i1 = self._cell(minx, self.ox), self._cell(maxx, self.ox)
        j0, j1 = self._cell(miny, self.oy), self._cell(maxy, self.oy)
        self.ni = int(i1.max()) + 1 if n else 1
        self.nj = int(j1.max()) + 1 if n else 1
        wide = i1 - i0 + 1
        counts = wide * (j1 - j0 + 1)
        edge = np.repeat(np.arange(n), counts)
        k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        w = np.repeat(wide, counts)
        key = (np.repeat(j0, counts) + k // w) * self.ni + np.repeat(i0, counts) + k % w
        order = np.argsort(key, kind="stable")
        key, self.edge = key[order], edge[order]
        self.keys, self.first = np.unique(key, return_index=True)
        self.last = np.r_[self.first[1:], len(key)]

    def _cell(self, value: np.ndarray, origin: float) -> np.ndarray:
        return np.floor((value - origin) / self.size).astype(np.int64)

    def _pairs(self, items: np.ndarray, i0, i1, j0, j1) -> tuple[np.ndarray, np.ndarray]:
        """(item, edge) for every edge registered in a cell of each item's cell range."""
        items_, first, last = [], [], []
        for di in range(int((i1 - i0).max(initial=0)) + 1):
            for dj in range(int((j1 - j0).max(initial=0)) + 1):
                i, j = i0 + di, j0 + dj
                use = (i <= i1) & (j <= j1) & (i >= 0) & (i < self.ni) & (j >= 0) & (j < self.nj)
                key = j[use] * self.ni + i[use]
                if not len(self.keys):
                    continue
                at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
                found = self.keys[at] == key
                items_.append(items[use][found])
                first.append(self.first[at[found]])
                last.append(self.last[at[found]])
        if not items_:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        item, first, last = np.concatenate(items_), np.concatenate(first), np.concatenate(last)
        counts = last - first
        pair_item = np.repeat(item, counts)
        pair_edge = self.edge[
            np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        ]
        return pair_item, pair_edge

    def within(self, x, y, distance: float) -> np.ndarray:
        result = np.zeros(len(x), dtype=bool)
        with np.errstate(invalid="ignore"):
            cells = [
                np.floor((v + d - o) / self.size)
                for v, o in ((x, self.ox), (y, self.oy))
                for d in (-distance - TOUCH_EPS, distance + TOUCH_EPS)
            ]
            ok = np.isfinite(x) & np.isfinite(y)
        i0, i1, j0, j1 = (c[ok].astype(np.int64) for c in cells)
        point, edge = self._pairs(np.flatnonzero(ok), i0, i1, j0, j1)
        e = self.edges
        near = _point_segment_distance(x[point], y[point], e.x0[edge], e.y0[edge], e.x1[edge], e.y1[edge])
        result[point[near <= distance]] = True
        return result

    def box_pairs(self, x0, y0, x1, y1) -> tuple[np.ndarray, np.ndarray]:
        minx, maxx = np.minimum(x0, x1), np.maximum(x0, x1)
        miny, maxy = np.minimum(y0, y1), np.maximum(y0, y1)
        with np.errstate(invalid="ignore"):
            i0, i1 = np.floor((minx - self.ox) / self.size), np.floor((maxx - self.ox) / self.size)
            j0, j1 = np.floor((miny - self.oy) / self.size), np.floor((maxy - self.oy) / self.size)
            short = (i1 - i0 <= 1) & (j1 - j0 <= 1)  # the cells of longer legs are many: the tree
        near = np.flatnonzero(short)
        leg, edge = self._pairs(near, *(a[near].astype(np.int64) for a in (i0, i1, j0, j1)))
        e = self.edges
        meets = (
            (minx[leg] <= np.maximum(e.x0, e.x1)[edge]) & (maxx[leg] >= np.minimum(e.x0, e.x1)[edge])
            & (miny[leg] <= np.maximum(e.y0, e.y1)[edge]) & (maxy[leg] >= np.minimum(e.y0, e.y1)[edge])
        )  # fmt: skip
        key = np.unique(leg[meets] * max(len(e.x0), 1) + edge[meets])  # an edge may be in two of the cells
        leg, edge = key // max(len(e.x0), 1), key % max(len(e.x0), 1)
        far = np.flatnonzero(~short)
        if far.size:
            lines = shapely.linestrings(
                np.stack([np.column_stack([x0[far], x1[far]]), np.column_stack([y0[far], y1[far]])], axis=-1)
            )
            which, far_edge = e.tree.query(lines)
            leg, edge = np.r_[leg, far[which]], np.r_[edge, far_edge]
        return leg.astype(np.int64), edge.astype(np.int64)

    def touching(self, x0, y0, x1, y1) -> np.ndarray:
        pad = 2 * TOUCH_EPS
        with np.errstate(invalid="ignore"):
            i0 = np.floor((np.minimum(x0, x1) - pad - self.ox) / self.size)
            i1 = np.floor((np.maximum(x0, x1) + pad - self.ox) / self.size)
            j0 = np.floor((np.minimum(y0, y1) - pad - self.oy) / self.size)
            j1 = np.floor((np.maximum(y0, y1) + pad - self.oy) / self.size)
            # Legs over more than 2 × 2 cells (long ones), and NaN, are left to the exact test.
            result = ~((i1 - i0 <= 1) & (j1 - j0 <= 1))
        short = np.flatnonzero(~result)
        i0, i1, j0, j1 = (a[short].astype(np.int64) for a in (i0, i1, j0, j1))
        pair_leg, pair_edge = self._pairs(short, i0, i1, j0, j1)
        e = self.edges
        hit = _segments_touch(
            x0[pair_leg], y0[pair_leg], x1[pair_leg], y1[pair_leg],
            e.x0[pair_edge], e.y0[pair_edge], e.x1[pair_edge], e.y1[pair_edge],
        )  # fmt: skip
        result[pair_leg[hit]] = True
        return result


def _point_segment_distance(px, py, sx, sy, ex, ey) -> np.ndarray:
    vx, vy = ex - sx, ey - sy
    vv = vx * vx + vy * vy
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(vv > 0, np.clip(((px - sx) * vx + (py - sy) * vy) / vv, 0.0, 1.0), 0.0)
    return np.hypot(px - (sx + t * vx), py - (sy + t * vy))


def _segments_touch(ax, ay, bx, by, cx, cy, dx, dy) -> np.ndarray:
    """Whether segments AB and CD cross or come within ``TOUCH_EPS`` of each other (coordinates
    taken relative to C, so that the products stay small)."""
    ax, ay, bx, by, dx, dy = ax - cx, ay - cy, bx - cx, by - cy, dx - cx, dy - cy
    cx = cy = 0.0

    def orient(px, py, qx, qy, rx, ry):
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)

    distance = _point_segment_distance

    cross = (orient(ax, ay, bx, by, cx, cy) * orient(ax, ay, bx, by, dx, dy) < 0) & (
        orient(cx, cy, dx, dy, ax, ay) * orient(cx, cy, dx, dy, bx, by) < 0
    )
    near = np.minimum(
        np.minimum(distance(ax, ay, cx, cy, dx, dy), distance(bx, by, cx, cy, dx, dy)),
        np.minimum(distance(cx, cy, ax, ay, bx, by), distance(dx, dy, ax, ay, bx, by)),
    )
    return cross | (near <= TOUCH_EPS)


class _Lattice:
    """A regular lattice over the grids' extent: per cell, the one grid that contains it, NO_GRID,
    or EDGE. Cells are classified with boxes grown by a hair so that rounding in the lookup's
    floor() can never put a point in a cell whose class does not hold for it."""

    def __init__(self, polygons: np.ndarray, bounds: np.ndarray):
        self.x0, self.y0 = bounds[:, 0].min(), bounds[:, 1].min()
        width, height = bounds[:, 2].max() - self.x0, bounds[:, 3].max() - self.y0
        box_area = float(np.sum((bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1])))
        size = max(
            np.sqrt(box_area / LATTICE_TARGET_CELLS), np.sqrt(width * height / LATTICE_MAX_CELLS), 1e-9
        )
        self.size = size
        self.nx, self.ny = int(width // size) + 1, int(height // size) + 1
        hits = np.zeros(self.ny * self.nx, dtype=np.int16)  # grids touching each cell
        inside = np.full(self.ny * self.nx, NO_GRID, dtype=np.int16)
        eps = size * 1e-6
        for grid, (minx, miny, maxx, maxy) in enumerate(bounds):
            i0, i1 = self._cell(np.array([minx, maxx]), self.x0)
            j0, j1 = self._cell(np.array([miny, maxy]), self.y0)
            ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1))
            ii, jj = ii.ravel(), jj.ravel()
            boxes = shapely.box(
                self.x0 + ii * size - eps, self.y0 + jj * size - eps,
                self.x0 + (ii + 1) * size + eps, self.y0 + (jj + 1) * size + eps,
            )  # fmt: skip
            cells = jj * self.nx + ii
            touching = shapely.intersects(polygons[grid], boxes)
            hits[cells[touching]] += 1
            inside[cells[shapely.contains_properly(polygons[grid], boxes)]] = grid
        self.state = np.where(hits == 0, NO_GRID, np.where((hits == 1) & (inside >= 0), inside, EDGE)).astype(
            np.int16
        )

    def _cell(self, value: np.ndarray, origin: float) -> np.ndarray:
        return np.floor((value - origin) / self.size).astype(np.int64)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per point: its cell's index, or -1 off the lattice (and for NaN)."""
        with np.errstate(invalid="ignore"):
            i = (x - self.x0) / self.size
            j = (y - self.y0) / self.size
            on_lattice = (i >= 0) & (i < self.nx) & (j >= 0) & (j < self.ny)
        cells = np.full(x.shape, -1, dtype=np.int64)
        cells[on_lattice] = j[on_lattice].astype(np.int64) * self.nx + i[on_lattice].astype(np.int64)
        return cells

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per point: the containing grid, NO_GRID, or EDGE (NaN and far points are NO_GRID)."""
        with np.errstate(invalid="ignore"):
            i = (x - self.x0) / self.size
            j = (y - self.y0) / self.size
            on_lattice = (i >= 0) & (i < self.nx) & (j >= 0) & (j < self.ny)  # False for NaN
        result = np.full(x.shape, NO_GRID, dtype=np.int64)
        cells = j[on_lattice].astype(np.int64) * self.nx + i[on_lattice].astype(np.int64)
        result[on_lattice] = self.state[cells]
        return result
