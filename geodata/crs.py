"""Coordinate reference systems the project works in.

Storage and the API are WGS84 lon/lat (RFC 7946). Metric work (areas, lengths, buffers) happens in
UTM zone 49N, which covers both Lianjiang and Hepu with small scale error (< 0.1 % here).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
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


# --- coordinate reference systems offered to OGC API clients ------------------------------------

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
# Output CRSs: lon/lat (CRS84, the default), the two geographic datums users name, web mercator,
# UTM 49N, and the CGCS2000 Gauss–Krüger zones survey offices use here (3-degree zones 36/37 and
# their no-prefix forms, 6-degree zone 19 and its no-prefix form).
OFFERED_EPSG = (4326, 4490, 3857, 32649, 4524, 4525, 4545, 4546, 4497, 4508)


def offered_crs_uris() -> list[str]:
    return [CRS84_URI, *(EPSG_URI.format(code) for code in OFFERED_EPSG)]


@lru_cache(maxsize=32)
def crs_from_uri(uri: str) -> CRS | None:
    """The offered CRS a URI names (None: not one we offer). ``[EPSG:4326]`` safe CURIEs too."""
    text = uri.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text in (CRS84_URI, "OGC:CRS84", "CRS84"):
        return CRS.from_user_input("OGC:CRS84")
    for prefix in (EPSG_URI.format(""), "EPSG:"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            code = int(text[len(prefix) :])
            return CRS.from_epsg(code) if code in OFFERED_EPSG else None
    return None


def crs_uri(crs: CRS) -> str:
    authority = crs.to_authority()
    if authority is None or authority[0] == "OGC":
        return CRS84_URI
    return EPSG_URI.format(authority[1])


def lonlat_to(geometries, crs: CRS):
    """Lon/lat (WGS84) geometries in ``crs``, coordinates in the CRS's own axis order (OGC API
    Part 2): latitude first for EPSG:4326/4490, northing first for the Gauss–Krüger zones."""
    if crs.to_authority() == ("OGC", "CRS84"):
        return geometries
    forward = _authority_transformer(CRS.from_user_input("OGC:CRS84"), crs)
    return shapely.transform(geometries, lambda xy: _stack(forward.transform(xy[:, 0], xy[:, 1])))


def lonlat_points_to(lon: np.ndarray, lat: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat coordinate arrays in ``crs`` (its axis order), without building geometries."""
    if crs.to_authority() == ("OGC", "CRS84"):
        return lon, lat
    first, second = _authority_transformer(CRS.from_user_input("OGC:CRS84"), crs).transform(lon, lat)
    return np.asarray(first), np.asarray(second)


def to_lonlat(geometries, crs: CRS):
    """Geometries given in ``crs`` (its own axis order) as lon/lat WGS84."""
    if crs.to_authority() == ("OGC", "CRS84"):
        return geometries
    back = _authority_transformer(crs, CRS.from_user_input("OGC:CRS84"))
    return shapely.transform(geometries, lambda xy: _stack(back.transform(xy[:, 0], xy[:, 1])))


def _stack(pair):
    return np.column_stack(pair)


@lru_cache(maxsize=32)
def _authority_transformer(src: CRS, dst: CRS) -> Transformer:
    return Transformer.from_crs(src, dst)  # no always_xy: each CRS's authority axis order
