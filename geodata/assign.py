"""Point → grid assignment, vectorised: arrays of lon/lat in, grid codes out.

Tracks (tens of thousands of fixes per upload) and incidents (one at a time, or millions in a
re-assignment after a grid import) both go through :class:`GridIndex`.

How: an STRtree over the grid polygons finds, for all points at once, the polygons whose bounding
box contains each point; an exact, prepared ``intersects_xy`` test then keeps the true hits. A point
on an edge shared by two grids intersects both; it goes to the grid that comes first in code order,
so the answer never depends on storage order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely import STRtree

NO_GRID = -1


class GridIndex:
    """An immutable spatial index of grid polygons in WGS84 lon/lat."""

    def __init__(self, codes: Sequence[str], polygons: Sequence | np.ndarray):
        codes = np.asarray(codes, dtype=object)
        polygons = np.asarray(polygons, dtype=object)
        if codes.shape != polygons.shape:
            raise ValueError("codes and polygons must have the same length")
        order = np.argsort(codes.astype(str), kind="stable")  # code order decides shared edges
        self.codes = codes[order]
        self.polygons = polygons[order]
        shapely.prepare(self.polygons)
        self._tree = STRtree(self.polygons)
        self._bounds = shapely.bounds(self.polygons)

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
        candidates = self._candidates(x, y)
        # Grids in code order: the first hit wins, so a shared edge goes to the lower code.
        for grid, points in candidates:
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

    def assign(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Grid code of each point (object array), ``None`` outside every grid."""
        index = self.assign_index(lon, lat)
        codes = np.empty(index.shape, dtype=object)
        inside = index != NO_GRID
        codes[inside] = self.codes[index[inside]]
        return codes
