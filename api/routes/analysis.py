"""Work ahead of complaints: encounter rates, hot spots, kernel density, recurring places and
next week's patrol priorities, for station managers, enforcement officers and admins."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from api.deps import NowDep, SessionDep, SettingsDep, SignedIn
from api.openapi import CSV, FEATURE_COLLECTION, content
from api.params import parse_datetime_interval
from geodata.crs import METRIC, WGS84, transformer
from patrol import csvsafe
from patrol.accounts import Principal
from patrol.analysis import priorities as rule
from patrol.analysis import reports
from patrol.analysis.priorities import priorities_report
from patrol.analysis.scope import Scope, analysis_scope, requested_period

router = APIRouter(prefix="/api/v1/analysis", tags=["analysis"])
GEOJSON = "application/geo+json"


class ScopeParams:
    """The period and area every analysis takes (the period defaults to the last 90 days)."""

    def __init__(
        self,
        datetime: Annotated[
            str | None,
            Query(
                description="China dates or a month, e.g. 2026-09-01/2026-11-30 or 2026-11; "
                "default: the last 90 days"
            ),
        ] = None,  # fmt: skip
        side: Annotated[str | None, Query(description="GD-LJ or GX-HP; default: your side")] = None,
        town: str | None = None,
        station: str | None = None,
        grid: Annotated[list[str] | None, Query(description="grid code, repeatable")] = None,
        category: Annotated[list[str] | None, Query(description="incident category, repeatable")] = None,
    ):
        self.datetime = datetime
        self.side, self.town, self.station = side, town, station
        self.grids, self.categories = tuple(grid or ()), tuple(category or ())

    def scope(self, session, principal: Principal, settings, now: datetime) -> Scope:
        start, end = parse_datetime_interval(self.datetime)
        start, end = requested_period(start, end, now)
        return analysis_scope(
            session, principal, settings, start=start, end=end, side=self.side, town=self.town,
            station=self.station, grids=self.grids, categories=self.categories, now=now,
        )  # fmt: skip


Params = Annotated[ScopeParams, Depends()]


def _period(scope: Scope) -> dict[str, str]:
    return {"start": scope.start.isoformat(), "end": scope.end.isoformat(), "label": scope.label()}


@router.get(
    "/rates",
    summary="Encounter rates: incidents per 10 km and per 100 patrol-hours per grid and category, "
    "with Poisson intervals",
    responses={200: content("application/json", CSV)},
)
def encounter_rates(
    session: SessionDep, settings: SettingsDep, principal: SignedIn, params: Params, now: NowDep,
    format: Literal["json", "csv"] = "json",
):  # fmt: skip
    scope = params.scope(session, principal, settings, now)
    table = reports.rates_report(session, principal, settings, scope)
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(table.columns)
        for row in reports.records(table):
            writer.writerow(csvsafe.row(["" if v is None else v for v in row.values()]))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="encounter-rates.csv"'})  # fmt: skip
    return {
        "period": _period(scope),
        "confidence": settings.analysis.confidence,
        "min_effort_km": settings.analysis.min_effort_km,
        "min_effort_hours": settings.analysis.min_effort_hours,
        "rates": reports.records(table),
    }


@router.get(
    "/hotspots",
    summary="Hot spots: incidents on a metric cell grid tested with Getis-Ord Gi*, with a "
    "false-discovery-rate correction",
    responses={200: FEATURE_COLLECTION},
)
def hot_spots(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    params: Params,
    now: NowDep,
    cell_m: Annotated[float | None, Query(description="cell size in metres (default 250)")] = None,
    shape: Literal["hex", "square"] = "hex",
    normalise: Annotated[
        Literal["effort"] | None, Query(description="effort: test incidents per km patrolled in each cell")
    ] = None,
    correction: Literal["fdr_bh", "bonferroni", "none"] = "fdr_bh",
    alpha: Annotated[
        float | None, Query(gt=0, lt=0.5, description="significance level (default 0.05)")
    ] = None,
    all_cells: Annotated[bool, Query(description="every tested cell, not only those with incidents")] = False,
):
    scope = params.scope(session, principal, settings, now)
    spots = reports.hotspots_report(
        session, principal, settings, scope, cell_m=cell_m, shape=shape, normalise=normalise,
        correction=correction, alpha=alpha,
    )  # fmt: skip
    body = reports.hotspots_geojson(spots, all_cells=all_cells)
    body["period"] = _period(scope)
    return JSONResponse(body, media_type=GEOJSON)


@router.get(
    "/density", summary="Kernel density of incidents (incidents per km²) on a raster, as a second view"
)
def density(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    params: Params,
    now: NowDep,
    cell_m: Annotated[float | None, Query(description="hot-spot cell size; the raster is half of it")] = None,
):
    scope = params.scope(session, principal, settings, now)
    spots = reports.hotspots_report(session, principal, settings, scope, cell_m=cell_m, density=True)
    kde = spots.density
    minx, miny, maxx, maxy = kde["extent"]
    lon, lat = transformer(METRIC, WGS84).transform([minx, maxx], [miny, maxy])
    return {
        "period": _period(scope),
        "crs": METRIC,
        "extent": [minx, miny, maxx, maxy],
        "bbox_wgs84": [round(lon[0], 6), round(lat[0], 6), round(lon[1], 6), round(lat[1], 6)],
        "bandwidth_m": kde["bandwidth_m"],
        "rows_from": "north",
        "values": [[round(float(v), 4) for v in row] for row in kde["values"]],
    }


@router.get("/recurring", summary="Recurring places: the same kind of incident coming back within a distance")
def recurring_places(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    params: Params,
    now: NowDep,
    distance_m: Annotated[float | None, Query(description="metres (default 200)")] = None,
    min_months: Annotated[int | None, Query(description="distinct months at least (default 3)")] = None,
):
    scope = params.scope(session, principal, settings, now)
    places = reports.recurring_report(session, principal, settings, scope, distance_m=distance_m,
                                      min_months=min_months)  # fmt: skip
    return {
        "period": _period(scope),
        "distance_m": distance_m or settings.analysis.recurring_distance_m,
        "min_months": min_months or settings.analysis.recurring_min_months,
        "places": reports.records(places.drop(columns=["x", "y"], errors="ignore")),
    }


@router.get("/priorities", summary="Grids ranked for next week's patrols, with the reasons for each")
def priorities(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    params: Params,
    now: NowDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
):
    scope = params.scope(session, principal, settings, now)
    table = priorities_report(session, principal, settings, scope, as_of=now, limit=limit)
    return {"as_of": now.isoformat(), "weights": rule.WEIGHTS, "rule": rule.__doc__.split("\n\n")[1],
            "grids": reports.records(table)}  # fmt: skip
