"""Which side of the Guangdong–Guangxi border a point lies on.

The border near the coast runs roughly south–north with latitude increasing monotonically along it,
so the border's longitude at a point's latitude (linear interpolation, held constant beyond the ends)
tells east (Guangdong) from west (Guangxi). Vectorised over arrays of points.
"""

from __future__ import annotations

import numpy as np
import shapely

EAST = 1
WEST = -1


def side_of_border(lon: np.ndarray, lat: np.ndarray, border) -> np.ndarray:
    """+1 (EAST) or -1 (WEST) per point relative to ``border`` (a shapely LineString)."""
    coords = shapely.get_coordinates(border)
    order = np.argsort(coords[:, 1], kind="stable")
    border_lon = np.interp(np.asarray(lat, float), coords[order, 1], coords[order, 0])
    return np.where(np.asarray(lon, float) >= border_lon, EAST, WEST)
