"""Coordinate reference systems the project works in.

Storage and the API are WGS84 lon/lat (RFC 7946). Metric work (areas, lengths, buffers) happens in
UTM zone 49N, which covers both Lianjiang and Hepu with small scale error (< 0.1 % here).
"""

from __future__ import annotations

from functools import lru_cache

from pyproj import CRS, Transformer

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"  # China's official datum; equals WGS84 at GPS accuracy
METRIC = "EPSG:32649"  # WGS 84 / UTM zone 49N
# CGCS2000 3-degree Gauss–Krüger zones around the area (it sits near the 109.5°E zone edge).
CGCS2000_GK_ZONE_36 = "EPSG:4524"  # CM 108°E, false easting with zone prefix 36
CGCS2000_GK_ZONE_37 = "EPSG:4525"  # CM 111°E, zone prefix 37
CGCS2000_GK_CM_108 = "EPSG:4545"  # CM 108°E, no zone prefix
CGCS2000_GK_CM_111 = "EPSG:4546"  # CM 111°E, no zone prefix

SRID_WGS84 = 4326


@lru_cache(maxsize=64)
def transformer(src: str, dst: str) -> Transformer:
    """A cached lon/lat-ordered transformer (``always_xy`` avoids EPSG:4326's lat/lon axis order)."""
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)
