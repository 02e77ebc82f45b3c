"""Health and the reference places: sides, towns, stations, teams, the provincial border."""

from __future__ import annotations

import shapely
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text

from api.deps import Public, SessionDep
from api.openapi import FEATURE_COLLECTION
from geodata import reference
from geodata.geojson import feature_collection
from patrol import migrate
from patrol.models import Boundary, Grid, Side, Station, Team, Town

router = APIRouter(prefix="/api/v1", tags=["meta"])


@router.get("/health", summary="Service and database health")
def health(session: SessionDep, _: Public):
    dialect = session.bind.dialect.name
    version_sql = "SELECT spatialite_version()" if dialect == "sqlite" else "SELECT postgis_lib_version()"
    return {
        "status": "ok",
        "database": {
            "backend": "spatialite" if dialect == "sqlite" else "postgis",
            "spatial_version": session.scalar(text(version_sql)),
            "schema_revision": migrate.current_revision(session.bind),
        },
        "grids": session.scalar(select(func.count(Grid.id)).where(Grid.retired_at.is_(None))),
    }


def _rows(session, model, *columns):
    return [
        {c: getattr(row, c) for c in columns} for row in session.scalars(select(model).order_by(model.code))
    ]


@router.get("/places", summary="Sides, towns, stations and patrol teams")
def places(session: SessionDep, _: Public):
    return {
        "sides": _rows(session, Side, "code", "name_zh", "name_en"),
        "towns": _rows(session, Town, "code", "name_zh", "name_en", "side"),
        "stations": _rows(
            session, Station, "code", "name_zh", "name_en", "side", "town", "approximate", "note"
        ),
        "teams": _rows(session, Team, "code", "name_zh", "name_en", "side", "town", "station"),
        "metadata": reference.METADATA,
    }


@router.get(
    "/border",
    summary="The Guangdong–Guangxi provincial border as GeoJSON",
    responses={200: FEATURE_COLLECTION},
)
def border(session: SessionDep, _: Public):
    rows = session.execute(select(Boundary, func.ST_AsBinary(Boundary.geom)).order_by(Boundary.code)).all()
    body = feature_collection(
        [b.code for b, _ in rows],
        shapely.from_wkb([bytes(w) for _, w in rows]) if rows else [],
        [{"name_zh": b.name_zh, "name_en": b.name_en, "approximate": b.approximate} for b, _ in rows],
    )
    return JSONResponse(body, media_type="application/geo+json")
