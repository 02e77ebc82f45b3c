"""The service region: Lianjiang (Guangdong) and Hepu (Guangxi) with a margin for the sea flats."""

from __future__ import annotations

import numpy as np

# County bounding boxes from the domain brief (lon/lat WGS84).
LIANJIANG_BBOX = (109.739, 21.405, 110.508, 21.958)
HEPU_BBOX = (108.846, 21.455, 109.785, 21.922)

# Union of both counties plus ~0.1° to take in the tidal flats and offshore creeks.
REGION_BBOX = (108.75, 21.30, 110.60, 22.05)


def in_region(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Boolean mask of points inside the service region's bounding box."""
    minx, miny, maxx, maxy = REGION_BBOX
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
