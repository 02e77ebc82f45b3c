"""Loading what an analysis needs for a scope into columnar frames, coordinates in metres.

Incidents are those the principal may see (``patrol.incidents.visible_clause``, the rule of the
incident list) that lie in the analysed side and area and were observed in the period. Effort is
the stored grid visits (``patrol.effort``), so rates and the effort map agree to the metre.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.crs import METRIC, WGS84, transformer
from patrol.accounts import Principal
from patrol.analysis.scope import Scope
from patrol.effort import EffortFilter, grid_effort
from patrol.errors import InvalidRequest
from patrol.incidents import visible_clause
from patrol.models import Grid, Incident, Patrol, PatrolVisit
from patrol.settings import Settings

INCIDENT_COLUMNS = (
    "id", "category", "severity", "status", "grid", "side", "town", "observed_at", "reported_at",
    "responded_at", "accepted_at", "resolved_at", "closed_at", "accept_due", "resolve_due", "lon", "lat",
)  # fmt: skip
TIMES = ("observed_at", "reported_at", "responded_at", "accepted_at", "resolved_at", "closed_at",
         "accept_due", "resolve_due")  # fmt: skip
MAX_INCIDENTS = 2_000_000  # about 400 MB of frame; a province-year is a matter for issue 13


def _grid_clauses(scope: Scope) -> list:
    clauses = [Grid.retired_at.is_(None)]
    if scope.side:
        clauses.append(Grid.side == scope.side)
    if scope.town:
        clauses.append(Grid.town == scope.town)
    if scope.station:
        clauses.append(Grid.station == scope.station)
    if scope.grids:
        clauses.append(Grid.code.in_(scope.grids))
    return clauses


def grids_frame(session: Session, scope: Scope) -> gpd.GeoDataFrame:
    """The active grids of the scope, in EPSG:32649, in code order."""
    query = (
        select(Grid.id.label("grid_id"), Grid.code, Grid.name_zh, Grid.name_en, Grid.side, Grid.town,
               Grid.team, Grid.station, Grid.area_ha, func.ST_AsBinary(Grid.geom).label("wkb"))
        .where(*_grid_clauses(scope))
        .order_by(Grid.code)
    )  # fmt: skip
    rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=[c.name for c in query.selected_columns])
    geometry = shapely.from_wkb([bytes(w) for w in frame.pop("wkb")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=WGS84).to_crs(METRIC)


def incidents_frame(session: Session, principal: Principal, scope: Scope, settings: Settings) -> pd.DataFrame:
    """Incidents observed in the period in the scope's area that ``principal`` may see, with ``x``,
    ``y`` in metres (EPSG:32649) and times as UTC timestamps."""
    clauses = [Incident.observed_at >= scope.start, Incident.observed_at < scope.end]
    visible = visible_clause(principal, settings.incidents)
    if visible is not None:
        clauses.append(visible)
    if scope.side:
        clauses.append(Incident.side == scope.side)
    if scope.town:
        clauses.append(Incident.town == scope.town)
    if scope.station or scope.grids:
        in_area = select(Grid.id).where(*_grid_clauses(scope))
        clauses.append(Incident.grid_id.in_(in_area))
    if scope.categories:
        clauses.append(Incident.category.in_(scope.categories))
    columns = [getattr(Incident, c) if c != "grid" else Grid.code.label("grid") for c in INCIDENT_COLUMNS]
    query = (
        select(*columns)
        .outerjoin(Grid, Grid.id == Incident.grid_id)
        .where(*clauses)
        .order_by(Incident.id)
        .limit(MAX_INCIDENTS + 1)
    )
    rows = session.execute(query).all()
    if len(rows) > MAX_INCIDENTS:
        raise InvalidRequest(f"more than {MAX_INCIDENTS:,} incidents in the scope: choose a shorter period "
                             "or a smaller area", field="datetime")  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
    for column in TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["lon"] = frame["lon"].astype(float)
    frame["lat"] = frame["lat"].astype(float)
    x, y = transformer(WGS84, METRIC).transform(frame["lon"].to_numpy(), frame["lat"].to_numpy())
    frame["x"], frame["y"] = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return frame


def effort_frame(session: Session, scope: Scope, settings: Settings) -> pd.DataFrame:
    """Per active grid of the scope: patrols, patrol-days, km, hours, last patrolled."""
    rows = grid_effort(
        session,
        EffortFilter(start=scope.start, end=scope.end, side=scope.side, town=scope.town, grids=scope.grids),
        swath_width_m=settings.patrols.swath_width_m,
        coverage=False,
    )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["grid", "side", "town", "team", "area_ha", "patrols", "patrol_days",
                                     "km", "hours", "last_patrolled"])  # fmt: skip
    frame = frame.rename(columns={"code": "grid"})
    if scope.station:
        station_grids = set(grids_frame(session, scope)["code"])
        frame = frame[frame.grid.isin(station_grids)].reset_index(drop=True)
    frame["hours"] = frame["hours"].fillna(0.0).astype(float)
    frame["last_patrolled"] = pd.to_datetime(frame["last_patrolled"], utc=True, format="ISO8601")
    return frame


def visits_frame(session: Session, scope: Scope) -> pd.DataFrame:
    """One row per pass of a patrol through a grid of the scope in the period."""
    query = (
        select(Grid.code.label("grid"), PatrolVisit.patrol_id, Patrol.team, PatrolVisit.entered_at,
               PatrolVisit.exited_at, PatrolVisit.distance_m, PatrolVisit.duration_s)
        .join(Grid, Grid.id == PatrolVisit.grid_id)
        .join(Patrol, Patrol.id == PatrolVisit.patrol_id)
        .where(*_grid_clauses(scope), PatrolVisit.exited_at >= scope.start, PatrolVisit.entered_at < scope.end)
    )  # fmt: skip
    rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=[c.name for c in query.selected_columns])
    for column in ("entered_at", "exited_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def effort_points(session: Session, scope: Scope, *, spacing_m: float = 25.0) -> tuple[np.ndarray, ...]:
    """Where effort was spent, as points every ``spacing_m`` along the visits in the period, each
    worth ``spacing_m`` of track (km): the exposure of each hot-spot cell, by counting them."""
    query = (
        select(func.ST_AsBinary(PatrolVisit.geom))
        .join(Grid, Grid.id == PatrolVisit.grid_id)
        .where(*_grid_clauses(scope), PatrolVisit.exited_at >= scope.start, PatrolVisit.entered_at < scope.end,
               PatrolVisit.geom.is_not(None))
    )  # fmt: skip
    wkb = [bytes(w) for w in session.scalars(query)]
    if not wkb:
        return np.empty(0), np.empty(0), np.empty(0)
    lines = shapely.from_wkb(wkb)
    to_metric = transformer(WGS84, METRIC)
    lines = shapely.transform(lines, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
    dense = shapely.segmentize(lines, spacing_m)
    coords = shapely.get_coordinates(dense)
    # Each line's length shared equally by its vertices (at most spacing_m apart): the total per
    # line is exact, its placement within a vertex spacing.
    n = shapely.get_num_coordinates(dense)
    weight = np.repeat(shapely.length(dense) / 1000 / np.maximum(n, 1), n)
    return coords[:, 0], coords[:, 1], weight
