"""The reference geodata the project ships: mangrove grids, the provincial border, places.

Authored by the project from its domain brief (see ``geodata/reference/build.py``), approximate, and
meant to be replaced by an official survey through the grids import. Files live in ``data/`` (WGS84
lon/lat, RFC 7946); loaders read them once and hand out copies, so callers may modify what they get.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geodata.crs import WGS84

DATA_DIR = Path(__file__).parent / "data"

METADATA: dict[str, Any] = {
    "source": "Authored by the Mangrove Patrol project from its domain brief (domain.md); "
    "not an official survey",
    "approximate": True,
    "replaceable_by": "mangrove grids import",
    "crs": "WGS84 lon/lat (EPSG:4326, RFC 7946); areas measured in UTM 49N (EPSG:32649)",
    "date": "2026-11-28",
    "generator": "python -m geodata.reference.build",
}

SIDES = ("GD-LJ", "GX-HP")
GRID_FILES = ("lianjiang_grids.geojson", "hepu_zones.geojson")
GRID_COLUMNS = ["code", "name_zh", "name_en", "side", "town", "team", "station", "area_ha", "kind"]
BORDER_CODE = "GD-GX-BORDER"

__all__ = ["METADATA", "SIDES", "load_border", "load_grids", "load_places"]


@lru_cache(maxsize=8)  # one entry per data file
def _read(name: str) -> dict[str, Any]:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def _frame(collection: dict[str, Any], columns: list[str]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame.from_features(collection["features"], crs=WGS84)
    return frame[[*columns, "geometry"]]


@lru_cache(maxsize=1)
def _grids() -> gpd.GeoDataFrame:
    frames = [_frame(_read(name), GRID_COLUMNS) for name in GRID_FILES]
    grids = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=WGS84)
    grids["area_ha"] = grids["area_ha"].astype(float)
    return grids.sort_values("code", ignore_index=True)


def load_grids(side: str | None = None) -> gpd.GeoDataFrame:
    """Lianjiang grids and Hepu reserve zones (EPSG:4326), sorted by code; ``side`` filters by
    ``"GD-LJ"`` or ``"GX-HP"``."""
    grids = _grids()
    if side is not None:
        if side not in SIDES:
            raise ValueError(f"unknown side {side!r}; expected one of {', '.join(SIDES)}")
        grids = grids[grids["side"] == side].reset_index(drop=True)
    return grids.copy()


def load_border() -> gpd.GeoDataFrame:
    """The Guangdong–Guangxi provincial border (Lianjiang–Hepu) as one LineString (EPSG:4326)."""
    return _frame(_read("border.geojson"), ["code", "name_zh", "name_en", "approximate"]).copy()


def load_places() -> dict[str, Any]:
    """Sides, towns (with seats), stations and patrol teams, as parsed from ``places.json``."""
    return copy.deepcopy(_read("places.json"))
