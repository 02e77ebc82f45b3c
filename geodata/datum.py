"""WGS84 ↔ the Chinese obfuscated datums GCJ-02 ("Mars coordinates") and BD-09 (Baidu).

Chinese map apps and SDKs (Amap/Gaode, Tencent, WeChat location, Ovital exports) record positions in
GCJ-02: WGS84 plus a non-linear shift of typically 100–700 m; Baidu adds a further offset (BD-09).
The forward GCJ-02 algorithm is the well-known public reimplementation (Krasovsky 1940 ellipsoid and
two trigonometric polynomials); there is no official inverse, so ``gcj02_to_wgs84`` solves the
forward equation by fixed-point iteration, which converges to well below a centimetre. CGCS2000,
China's official geodetic datum, equals WGS84 at GPS accuracy and needs no conversion.

Every function takes and returns numpy arrays (scalars and any shape work too) and is vectorised:
no per-point Python loops. NaN passes through as NaN; points outside China's rough bounding box are
left unchanged by GCJ-02, as every GCJ-02 implementation does.
"""

from __future__ import annotations

import re
from enum import StrEnum

import numpy as np

from geodata.errors import InputError, Problem

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323  # first eccentricity squared

# The rough bounding box inside which GCJ-02 applies (the usual "out of China" test).
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)

_X_PI = np.pi * 3000.0 / 180.0  # BD-09's constant
_INVERSE_TOLERANCE_DEG = 1e-9  # ≈ 0.1 mm
_INVERSE_MAX_ITERATIONS = 10


class Datum(StrEnum):
    """The datum a track's coordinates were recorded in, as declared by the uploader."""

    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"

    @classmethod
    def parse(cls, text: str | Datum) -> Datum:
        """The datum named by ``text``: "WGS84", "wgs-84", "EPSG:4326", "CGCS2000", "EPSG:4490",
        "GCJ-02", "mars", "amap", "gaode", "tencent", "BD-09", "baidu"…, any case.

        Raises ``InputError`` naming the accepted values otherwise."""
        if isinstance(text, Datum):
            return text
        key = _normalise(text)
        if key in _ALIASES:
            return _ALIASES[key]
        message = (
            f"unknown datum {text!r}: use wgs84 (GPS; also EPSG:4326), cgcs2000 (EPSG:4490), "
            "gcj02 (Chinese map apps: Amap/Gaode, Tencent, WeChat) or bd09 (Baidu)"
        )
        raise InputError(
            message,
            [Problem("unknown-datum", message, {"value": str(text), "accepted": [d.value for d in cls]})],
        )


def _normalise(text: object) -> str:
    """Lower case without spaces, hyphens, underscores, dots, colons or slashes."""
    return re.sub(r"[\s\-_.:/]+", "", str(text or "")).lower()


_ALIASES: dict[str, Datum] = {
    **dict.fromkeys(["wgs84", "wgs1984", "epsg4326", "4326", "gps"], Datum.WGS84),
    **dict.fromkeys(["cgcs2000", "cgcs", "epsg4490", "4490", "国家2000"], Datum.CGCS2000),
    **dict.fromkeys(
        ["gcj02", "gcj", "mars", "火星", "火星坐标", "amap", "gaode", "高德", "tencent", "qq", "腾讯"],
        Datum.GCJ02,
    ),
    **dict.fromkeys(["bd09", "bd09ll", "bd", "baidu", "百度"], Datum.BD09),
}


# --- helpers -----------------------------------------------------------------------------------------


def _arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Float64 copies of ``lon`` and ``lat``, broadcast to one shape."""
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return lon.copy(), lat.copy()


def in_china(lon, lat) -> np.ndarray:
    """Mask of points inside the rough bounding box where GCJ-02 applies (False for NaN)."""
    minx, miny, maxx, maxy = CHINA_BBOX
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    return (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 shift (degrees) at WGS84 (lon, lat), before the in-China test."""
    x, y = lon - 105.0, lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0

    radlat = lat / 180.0 * np.pi
    magic = 1.0 - KRASOVSKY_EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (KRASOVSKY_A / sqrt_magic * np.cos(radlat) * np.pi)
    return dlon, dlat


# --- conversions -------------------------------------------------------------------------------------


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → GCJ-02. Points outside China (and NaN) are returned unchanged."""
    lon, lat = _arrays(lon, lat)
    inside = in_china(lon, lat)
    dlon, dlat = _gcj02_offset(lon[inside], lat[inside])
    lon[inside] += dlon
    lat[inside] += dlat
    return lon, lat


def _invert(forward, target_lon, target_lat, lon, lat, active):
    """Solve ``forward(lon, lat) == target`` by fixed-point iteration from the estimate (lon, lat).

    Each step moves the estimate by the round-trip error ``forward(estimate) - target``; points drop
    out once that error is below 1e-9° (about 0.1 mm) in both axes, after at most 10 steps. Each step
    works on the whole array of points still moving (``active``: flat indices). Modifies lon, lat."""
    active = np.flatnonzero(active)
    for _ in range(_INVERSE_MAX_ITERATIONS):
        if not active.size:
            break
        est_lon, est_lat = lon.flat[active], lat.flat[active]
        fwd_lon, fwd_lat = forward(est_lon, est_lat)
        err_lon = fwd_lon - target_lon.flat[active]
        err_lat = fwd_lat - target_lat.flat[active]
        lon.flat[active] = est_lon - err_lon
        lat.flat[active] = est_lat - err_lat
        moving = (np.abs(err_lon) >= _INVERSE_TOLERANCE_DEG) | (np.abs(err_lat) >= _INVERSE_TOLERANCE_DEG)
        active = active[moving]  # NaN compares False: such points stop at once
    return lon, lat


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS84 by fixed-point iteration on the forward transform.

    Starting from the GCJ-02 position, the estimate converges in three or four steps to a WGS84
    position whose forward transform is within 1e-9° of the input: the round trip is exact to well
    under a millimetre (the one-step inverse many libraries use is only good to about a metre).
    Points outside China and NaN come back unchanged."""
    target_lon, target_lat = _arrays(lon, lat)
    return _invert(
        wgs84_to_gcj02,
        target_lon,
        target_lat,
        target_lon.copy(),
        target_lat.copy(),
        in_china(target_lon, target_lat),
    )


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → BD-09 (Baidu's published formula; applies everywhere, not only in China)."""
    lon, lat = _arrays(lon, lat)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return np.asarray(z * np.cos(theta) + 0.0065), np.asarray(z * np.sin(theta) + 0.006)


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → GCJ-02: Baidu's published inverse formula, refined by fixed-point iteration.

    The published inverse is itself approximate (up to about 0.2 m off across China); a couple of
    iterations on ``gcj02_to_bd09`` bring the round trip below 1e-9°."""
    target_lon, target_lat = _arrays(lon, lat)
    x, y = target_lon - 0.0065, target_lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    est_lon, est_lat = np.asarray(z * np.cos(theta)), np.asarray(z * np.sin(theta))
    return _invert(gcj02_to_bd09, target_lon, target_lat, est_lon, est_lat, ~np.isnan(est_lon + est_lat))


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → WGS84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon, lat, datum: Datum | str) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates recorded in ``datum`` as WGS84 (new float64 arrays; CGCS2000 is taken as WGS84)."""
    datum = Datum.parse(datum)
    if datum is Datum.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if datum is Datum.BD09:
        return bd09_to_wgs84(lon, lat)
    return _arrays(lon, lat)


def from_wgs84(lon, lat, datum: Datum | str) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 coordinates expressed in ``datum`` (the inverse of ``to_wgs84``)."""
    datum = Datum.parse(datum)
    if datum is Datum.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if datum is Datum.BD09:
        return wgs84_to_bd09(lon, lat)
    return _arrays(lon, lat)
