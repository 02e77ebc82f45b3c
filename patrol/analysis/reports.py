"""The analyses for a checked scope, as the API, the CLI, the maps and the briefing ask for them.

Each function loads what it needs through ``patrol.analysis.data`` (visibility applied there) and
hands columns to the pure statistics in ``rates``, ``hotspots`` and ``recurring``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy.orm import Session

from geodata.crs import METRIC, WGS84
from patrol.accounts import Principal
from patrol.analysis import data, hotspots, rates, recurring
from patrol.analysis.scope import Scope
from patrol.errors import InvalidRequest
from patrol.settings import Settings

# Incidents just outside a grid (up to the near-grid distance) are still the grid's business: the
# hot-spot area is the grids grown by this much.
HOTSPOT_MARGIN_M = 300.0
SHAPES = ("hex", "square")
CORRECTIONS = ("fdr_bh", "bonferroni", "none")


def rates_report(
    session: Session,
    principal: Principal,
    settings: Settings,
    scope: Scope,
    *,
    incidents: pd.DataFrame | None = None,
    effort: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Encounter rates per grid and category (and "all") for the scope. ``incidents`` and
    ``effort``: the scope's frames when the caller has loaded them already."""
    if incidents is None:
        incidents = data.incidents_frame(session, principal, scope, settings)
    if effort is None:
        effort = data.effort_frame(session, scope, settings)
    counts = (
        incidents.dropna(subset=["grid"])
        .groupby(["grid", "category"])
        .size()
        .rename("incidents")
        .reset_index()
    )
    counts = counts[counts.grid.isin(effort.grid)]
    table = rates.encounter_rates(
        counts,
        effort[["grid", "km", "hours"]],
        confidence=settings.analysis.confidence,
        min_km=settings.analysis.min_effort_km,
        min_hours=settings.analysis.min_effort_hours,
    )
    names = effort.set_index("grid")
    table.insert(1, "name_zh", table.grid.map(names.name_zh))
    table.insert(2, "town", table.grid.map(names.town))
    return table


@dataclass
class HotSpots:
    cells: gpd.GeoDataFrame  # every tested cell, EPSG:32649, with count, z, p, p_adjusted, significant, kind
    method: str
    cell_m: float
    shape: str
    incidents: int
    density: dict[str, Any] | None = field(default=None)


def hotspots_report(
    session: Session,
    principal: Principal,
    settings: Settings,
    scope: Scope,
    *,
    cell_m: float | None = None,
    shape: str = "hex",
    normalise: str | None = None,
    correction: str = "fdr_bh",
    alpha: float | None = None,
    density: bool = False,
    incidents: pd.DataFrame | None = None,
) -> HotSpots:
    """Gi* hot spots of the scope's incidents on a metric cell grid over its grids (grown by
    ``HOTSPOT_MARGIN_M``); ``normalise="effort"`` tests incidents per km patrolled in each cell."""
    if shape not in SHAPES:
        raise InvalidRequest(f"shape {shape!r}: use hex or square", field="shape")
    if normalise not in (None, "effort"):
        raise InvalidRequest(f"normalise {normalise!r}: use effort, or leave it out", field="normalise")
    if correction not in CORRECTIONS:
        raise InvalidRequest(f"correction {correction!r}: use one of {', '.join(CORRECTIONS)}",
                             field="correction")  # fmt: skip
    cell_m = settings.analysis.hotspot_cell_m if cell_m is None else cell_m
    alpha = settings.analysis.hotspot_alpha if alpha is None else alpha
    grids = data.grids_frame(session, scope)
    if grids.empty:
        raise InvalidRequest("the scope holds no active grid", field="grid")
    area = shapely.union_all(shapely.buffer(grids.geometry.values, HOTSPOT_MARGIN_M))
    cells = hotspots.cell_grid(area, cell_m, shape=shape)
    if incidents is None:
        incidents = data.incidents_frame(session, principal, scope, settings)
    counts = hotspots.count_in_cells(cells, incidents.x.to_numpy(), incidents.y.to_numpy())
    effort = None
    if normalise == "effort":
        ex, ey, ew = data.effort_points(session, scope)
        effort = hotspots.count_in_cells(cells, ex, ey, weights=ew)
    result = hotspots.gi_star(cells, counts, alpha=alpha, correction=correction, effort=effort)
    # gi_star returns the cells with its columns added.
    out = result.copy() if "geometry" in result.columns else cells.join(result)
    out["count"] = counts
    if effort is not None:
        out["effort_km"] = effort
    out["grid"] = _cell_grids(out, grids)
    out["lon"], out["lat"] = np.round(_to_lonlat(out.x.to_numpy(), out.y.to_numpy()), 6)
    kde = None
    if density:
        minx, miny, maxx, maxy = area.bounds
        raster = hotspots.kernel_density(
            incidents.x.to_numpy(), incidents.y.to_numpy(), bandwidth_m=2 * cell_m,
            cell_size_m=cell_m / 2, bounds=(minx, miny, maxx, maxy),
        )  # fmt: skip
        left, right, bottom, top = raster.extent
        kde = {"values": raster.density, "extent": (left, bottom, right, top), "bandwidth_m": 2 * cell_m}
    method = result.attrs.get("method", "Getis-Ord Gi*")
    return HotSpots(out, method, float(cell_m), shape, int(len(incidents)), kde)


def _cell_grids(cells: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> np.ndarray:
    """The grid code each cell centre falls in (None outside every grid)."""
    centres = shapely.points(cells.x.to_numpy(), cells.y.to_numpy())
    tree = shapely.STRtree(grids.geometry.values)
    cell_idx, grid_idx = tree.query(centres, predicate="within")
    codes = np.full(len(cells), None, dtype=object)
    codes[cell_idx] = grids.code.to_numpy()[grid_idx]
    return codes


def hotspots_geojson(spots: HotSpots, *, all_cells: bool = False) -> dict[str, Any]:
    """Cells as a GeoJSON FeatureCollection in WGS84: those with incidents or a significant result,
    or every tested cell."""
    cells = spots.cells
    if not all_cells:
        cells = cells[(cells["count"] > 0) | cells["significant"]]
    cells = cells.to_crs(WGS84)
    geoms = shapely.set_precision(cells.geometry.values, 1e-7)
    features = []
    keep = [c for c in ("cell", "grid", "count", "effort_km", "z", "p", "p_adjusted", "significant", "kind")
            if c in cells.columns]  # fmt: skip
    records = cells[keep].to_dict("records")
    for geom, props in zip(geoms, records):
        features.append({"type": "Feature", "id": int(props["cell"]), "geometry": shapely.geometry.mapping(geom),
                         "properties": {k: _plain(v) for k, v in props.items()}})  # fmt: skip
    return {
        "type": "FeatureCollection",
        "method": spots.method,
        "cell_m": spots.cell_m,
        "shape": spots.shape,
        "cells_tested": int(len(spots.cells)),
        "incidents": spots.incidents,
        "hot": int((spots.cells["kind"] == "hot").sum()),
        "cold": int((spots.cells["kind"] == "cold").sum()),
        "features": features,
    }


def recurring_report(
    session: Session,
    principal: Principal,
    settings: Settings,
    scope: Scope,
    *,
    distance_m: float | None = None,
    min_months: int | None = None,
) -> pd.DataFrame:
    """Places where incidents of one category came back over at least ``min_months`` months."""
    distance_m = settings.analysis.recurring_distance_m if distance_m is None else distance_m
    min_months = settings.analysis.recurring_min_months if min_months is None else min_months
    incidents = data.incidents_frame(session, principal, scope, settings)
    places = recurring.recurring_places(incidents, distance_m=distance_m, min_months=min_months)
    if len(places):
        lon, lat = _to_lonlat(places["x"].to_numpy(), places["y"].to_numpy())
        places["lon"], places["lat"] = np.round(lon, 6), np.round(lat, 6)
        grid_of = incidents.set_index("id")["grid"]
        places["grids"] = [
            sorted({g for g in grid_of.reindex(ids).dropna()}) for ids in places["incident_ids"]
        ]
    return places


def _to_lonlat(x: np.ndarray, y: np.ndarray):
    from geodata.crs import transformer

    return transformer(METRIC, WGS84).transform(x, y)


def _plain(value):
    """numpy scalars, NaN and NaT as JSON values."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready rows."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
