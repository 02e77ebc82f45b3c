"""RFC 7946 GeoJSON output: WGS84 lon/lat, counter-clockwise exterior rings, ~6 decimals (≈0.1 m)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely

DECIMALS = 6


def to_rfc7946(geometries: Sequence | np.ndarray) -> np.ndarray:
    """Orient polygons counter-clockwise and round coordinates, all geometries at once."""
    geoms = np.asarray(geometries, dtype=object)
    geoms = shapely.orient_polygons(geoms)
    return shapely.transform(geoms, lambda xy: np.round(xy, DECIMALS))


def geometry_dicts(geometries: Sequence | np.ndarray) -> list[dict[str, Any] | None]:
    """GeoJSON geometry objects; None (``"geometry": null``, RFC 7946 §3.2) for a missing one."""
    return [None if s is None else json.loads(s) for s in shapely.to_geojson(to_rfc7946(geometries))]


def feature_collection(
    ids: Iterable[str],
    geometries: Sequence | np.ndarray,
    properties: Iterable[Mapping[str, Any]],
    **members: Any,
) -> dict[str, Any]:
    features = [
        {"type": "Feature", "id": fid, "geometry": geom, "properties": dict(props)}
        for fid, geom, props in zip(ids, geometry_dicts(geometries), properties, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features, **members}
