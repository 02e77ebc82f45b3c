"""Grids as RFC 7946 GeoJSON, and grid import (admin)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from api.deps import AdminOnly, Public, SessionDep, SettingsDep
from api.openapi import FEATURE, FEATURE_COLLECTION
from api.params import parse_bbox
from api.uploads import save_upload
from geodata import reference
from geodata.geojson import feature_collection
from geodata.gridfile import GRID_FIELDS, GridFileOptions
from patrol.errors import InvalidRequest
from patrol.grids import get_grid, import_grids, list_grids
from patrol.models import Side, Town

router = APIRouter(prefix="/api/v1/grids", tags=["grids"])
GEOJSON = "application/geo+json"


def _check_known(session, model, value: str | None, name: str) -> None:
    if value is None:
        return
    known = list(session.scalars(select(model.code).order_by(model.code)))
    if value not in known:
        raise InvalidRequest(f"unknown {name} {value!r}; known: {', '.join(known)}")


@router.get("", summary="Grids as a GeoJSON FeatureCollection", responses={200: FEATURE_COLLECTION})
def grids(
    session: SessionDep,
    _: Public,
    side: Annotated[str | None, Query(description="GD-LJ (Lianjiang) or GX-HP (Hepu)")] = None,
    town: Annotated[str | None, Query(description="town code, e.g. GQ")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS84)")] = None,
):
    box = parse_bbox(bbox)
    _check_known(session, Side, side, "side")
    _check_known(session, Town, town, "town")
    records = list_grids(session, side=side, town=town, bbox=box)
    body = feature_collection(
        [r.code for r in records],
        [r.geometry for r in records],
        [r.properties() for r in records],
        numberMatched=len(records),
        numberReturned=len(records),
        timeStamp=datetime.now(UTC).isoformat(),
        metadata={"reference": reference.METADATA} if any(r.approximate for r in records) else None,
    )
    if body["metadata"] is None:
        del body["metadata"]
    return JSONResponse(body, media_type=GEOJSON)


@router.get("/{code}", summary="One grid as a GeoJSON Feature", responses={200: FEATURE})
def grid(code: str, session: SessionDep, _: Public):
    record = get_grid(session, code)
    feature = feature_collection([record.code], [record.geometry], [record.properties()])["features"][0]
    return JSONResponse(feature, media_type=GEOJSON)


@router.post("/import", summary="Replace a side's grids from a survey file (admin)")
async def import_grid_file(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminOnly,
    file: Annotated[UploadFile, File(description="GeoJSON, GeoPackage, zipped Shapefile, KML or KMZ")],
    side: Annotated[str, Form()] = "GD-LJ",
    layer: Annotated[str | None, Form()] = None,
    crs: Annotated[str | None, Form(description="CRS to assume when the file declares none")] = None,
    field_map: Annotated[
        list[str] | None, Form(description="FIELD=ATTRIBUTE, repeatable; fields: " + ", ".join(GRID_FIELDS))
    ] = None,
    repair: Annotated[bool, Form()] = False,
    dry_run: Annotated[bool, Form()] = False,
):
    options = GridFileOptions(
        field_map=parse_field_map(field_map or []),
        layer=layer or None,
        assume_crs=crs or None,
        repair=repair,
        overlap_tolerance_m2=settings.imports.overlap_tolerance_m2,
        max_features=settings.imports.max_grid_features,
    )
    workdir = Path(tempfile.mkdtemp(prefix="mangrove-import-"))
    try:
        path = await save_upload(file, workdir, settings.imports.max_upload_bytes)
        # Reading and validating a survey takes seconds for a large file: off the event loop, so
        # the service keeps answering meanwhile.
        report = await run_in_threadpool(
            _import, session, path, options, side=side, imported_by=admin.username,
            source_name=file.filename or path.name, dry_run=dry_run, principal=admin,
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report.as_dict()


def _import(session, path: Path, options: GridFileOptions, *, dry_run: bool, **kwargs):
    try:
        report = import_grids(session, path, options, dry_run=dry_run, **kwargs)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return report


def parse_field_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, attribute = pair.partition("=")
        if not sep or not field.strip() or not attribute.strip():
            raise InvalidRequest(f"bad field mapping {pair!r}: expected FIELD=ATTRIBUTE, e.g. code=网格编号")
        mapping[field.strip()] = attribute.strip()
    return mapping
