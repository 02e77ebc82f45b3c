"""Patrols: upload a track, list and read patrols, per-grid effort and unpatrolled grids."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import shapely
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from geoalchemy2.shape import to_shape
from sqlalchemy.exc import IntegrityError

from api.deps import SessionDep, SettingsDep, SignedIn
from api.idempotency import IdempotencyDep
from api.openapi import CSV, FEATURE, FEATURE_COLLECTION, content
from api.params import RowId, parse_datetime_interval
from api.uploads import save_upload
from geodata.cleaning import Transport
from geodata.datum import Datum
from geodata.geojson import feature_collection
from geodata.trackfile import NaiveTimes
from patrol import csvsafe
from patrol.effort import EffortFilter, grid_effort, unpatrolled_grids
from patrol.idempotency import StoredResponse
from patrol.patrols import (
    PatrolQuery,
    UploadOptions,
    delete_patrol,
    get_patrol,
    list_patrols,
    member_names,
    nearby_patrols,
    nearby_properties,
    patrol_fixes,
    patrol_properties,
    upload_patrol,
)
from patrol.segments import NearQuery, check_near_query

router = APIRouter(prefix="/api/v1", tags=["patrols"])
GEOJSON = "application/geo+json"


def parse_upload_options(
    datum: str,
    transport: str,
    team: str | None,
    members: list[str],
    notes: str | None,
    time_zone: str = "auto",
):
    return UploadOptions(
        naive_times=NaiveTimes.parse(time_zone),
        datum=Datum.parse(datum),
        transport=Transport.parse(transport),
        team=team or None,
        members=tuple(m.strip() for m in members if m.strip()),
        notes=(notes or "").strip()[:2000] or None,
    )


@router.post(
    "/patrols",
    summary="Upload a patrol track (GPX, KML/KMZ, GeoJSON, CSV)",
    status_code=201,
    responses={200: content("application/json", description="The same file was uploaded before: its patrol")},
)
async def upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    idempotency: IdempotencyDep,
    file: Annotated[UploadFile, File(description="GPX 1.0/1.1, KML, KMZ, GeoJSON or CSV track")],
    datum: Annotated[
        str, Form(description="wgs84 (also CGCS2000), gcj02 (Amap/Gaode, Tencent) or bd09 (Baidu)")
    ] = "wgs84",
    transport: Annotated[str, Form(description="foot or boat")] = "foot",
    team: Annotated[str | None, Form()] = None,
    members: Annotated[list[str] | None, Form(description="usernames of who walked it; default: you")] = None,
    notes: Annotated[str | None, Form()] = None,
    time_zone: Annotated[
        str,
        Form(
            description="times written without a zone: auto (China time in CSV, UTC otherwise), utc or china"
        ),
    ] = "auto",
):
    options = parse_upload_options(datum, transport, team, members or [], notes, time_zone)
    workdir = Path(tempfile.mkdtemp(prefix="mangrove-patrol-"))
    try:
        path = await save_upload(file, workdir, settings.imports.max_upload_bytes)

        def create() -> StoredResponse:
            result = upload_patrol(
                session, path, filename=file.filename or path.name, principal=principal, options=options,
                settings=settings.patrols,
            )  # fmt: skip
            patrol = get_patrol(session, principal, result.patrol_id)
            body = {
                "created": result.created,
                **patrol_properties(patrol, member_names(session, [patrol.id])[patrol.id]),
            }
            return StoredResponse(201 if result.created else 200, body, f"/api/v1/patrols/{patrol.id}")

        def respond():
            try:
                return idempotency.respond(session, principal, create)
            except IntegrityError:
                # The same file sent by another request at the same moment committed first (the
                # unique file hash): tried again, this upload finds that patrol and answers 200.
                session.rollback()
                return idempotency.respond(session, principal, create)

        # Parsing and splitting take a while for long tracks: keep the event loop serving others.
        return await run_in_threadpool(respond)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@router.get(
    "/patrols",
    summary="Patrols you may see, newest first, as GeoJSON (simplified lines)",
    responses={200: FEATURE_COLLECTION},
)
def patrols(
    request: Request,
    session: SessionDep,
    principal: SignedIn,
    datetime: Annotated[
        str | None, Query(description="instant or interval, e.g. 2026-03-01/2026-03-31")
    ] = None,
    side: str | None = None,
    team: str | None = None,
    member: str | None = None,
    grid: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    start, end = parse_datetime_interval(datetime)
    q = PatrolQuery(
        start=start, end=end, side=side, team=team, member=member, grid=grid, limit=limit, offset=offset
    )
    found, geoms, names, total = list_patrols(session, principal, q)
    body = feature_collection(
        [p.id for p in found],
        geoms,
        [patrol_properties(p, names[p.id]) for p in found],
        numberMatched=total,
        numberReturned=len(found),
    )
    if offset + len(found) < total:
        params = dict(request.query_params)
        params["offset"] = str(offset + len(found))
        body["links"] = [
            {"rel": "next", "type": GEOJSON, "href": str(request.url.replace_query_params(**params))}
        ]
    return JSONResponse(body, media_type=GEOJSON)


@router.get(
    "/patrols/near",
    summary="Patrols whose track came within radius_m of a point during an interval, closest first",
    description=(
        "Each feature is the patrol's closest approach (a point) with its distance and time. "
        "`datetime` is a closed interval of at most 31 days (dates and zone-less times are China "
        "time); `radius_m` at most 5,000. Only patrols you may see are listed."
    ),
    responses={200: FEATURE_COLLECTION},
)
def near(
    session: SessionDep,
    principal: SignedIn,
    lon: Annotated[float, Query(description="longitude, WGS84")],
    lat: Annotated[float, Query(description="latitude, WGS84")],
    radius_m: Annotated[float, Query(description="metres, more than 0, at most 5,000")],
    datetime: Annotated[str, Query(description="interval, e.g. 2026-03-01T06:00/2026-03-01T18:00")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    start, end = parse_datetime_interval(datetime)
    check_near_query(lon, lat, radius_m, start, end)
    found = nearby_patrols(session, principal, NearQuery(lon, lat, radius_m, start, end, limit))
    body = feature_collection(
        [item.patrol.id for item in found],
        [shapely.Point(item.approach.lon, item.approach.lat) for item in found],
        [nearby_properties(item) for item in found],
        numberReturned=len(found),
    )
    return JSONResponse(body, media_type=GEOJSON)


@router.delete(
    "/patrols/{patrol_id}",
    summary="Delete a wrong upload (uploader, station manager, admin) so that it can be uploaded again",
    status_code=204,
)
def remove(patrol_id: RowId, session: SessionDep, principal: SignedIn):
    delete_patrol(session, principal, patrol_id)
    session.commit()
    return Response(status_code=204)


@router.get(
    "/patrols/{patrol_id}",
    summary="One patrol with its full cleaned line and its grid visits",
    responses={200: FEATURE},
)
def patrol(patrol_id: RowId, session: SessionDep, principal: SignedIn):
    found = get_patrol(session, principal, patrol_id)
    names = member_names(session, [found.id])
    line = to_shape(found.geom) if found.geom is not None else None
    feature = feature_collection([found.id], [line], [patrol_properties(found, names[found.id])])["features"][
        0
    ]
    return JSONResponse(feature, media_type=GEOJSON)


@router.get(
    "/patrols/{patrol_id}/fixes",
    summary="Every fix as read, with its cleaning flags (CSV or GeoJSON)",
    responses={200: {**FEATURE_COLLECTION, "content": {CSV: {}, **FEATURE_COLLECTION["content"]}}},
)
def fixes(
    patrol_id: RowId,
    session: SessionDep,
    principal: SignedIn,
    format: Annotated[str, Query(pattern="^(csv|geojson)$")] = "csv",
):
    get_patrol(session, principal, patrol_id)  # visibility
    data = patrol_fixes(session, patrol_id)
    times = [None if np.isnat(t) else str(t) + "Z" for t in data["time"]]
    if format == "geojson":
        points = shapely.points(data["wgs84_lon"], data["wgs84_lat"])
        props = [
            {"time": t, "raw_lon": float(x), "raw_lat": float(y), "segment": int(s), "flags": f or None}
            for t, x, y, s, f in zip(times, data["lon"], data["lat"], data["segment"], data["flag_names"])
        ]
        return JSONResponse(
            feature_collection(list(range(1, len(points) + 1)), points, props), media_type=GEOJSON
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["fix", "time", "lon", "lat", "raw_lon", "raw_lat", "ele", "segment", "flags"])
    for i, row in enumerate(
        zip(
            times,
            data["wgs84_lon"],
            data["wgs84_lat"],
            data["lon"],
            data["lat"],
            data["ele"],
            data["segment"],
            data["flag_names"],
        ),
        start=1,
    ):
        t, lon, lat, rlon, rlat, ele, seg, flags = row
        writer.writerow(csvsafe.row([i, t or "", f"{lon:.7f}", f"{lat:.7f}", repr(float(rlon)), repr(float(rlat)),
                                     "" if np.isnan(ele) else f"{ele:.1f}", int(seg), flags]))  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="patrol-{patrol_id}-fixes.csv"'},
    )


@router.get(
    "/effort", summary="Patrol effort per grid: patrols, patrol-days, km, hours, person-hours, coverage"
)
def effort(
    session: SessionDep,
    settings: SettingsDep,
    _: SignedIn,
    datetime: Annotated[
        str | None, Query(description="instant or interval, e.g. 2026-03-01/2026-03-31")
    ] = None,
    side: str | None = None,
    town: str | None = None,
    team: str | None = None,
    member: str | None = None,
    grid: Annotated[list[str] | None, Query(description="grid code, repeatable")] = None,
    swath_m: Annotated[
        float | None, Query(gt=0, le=500, description="swath width for coverage, metres")
    ] = None,
):
    start, end = parse_datetime_interval(datetime)
    flt = EffortFilter(
        start=start, end=end, side=side, town=town, team=team, member=member, grids=tuple(grid or ())
    )
    width = swath_m or settings.patrols.swath_width_m
    return {
        "datetime": datetime,
        "swath_width_m": width,
        "grids": grid_effort(session, flt, swath_width_m=width),
    }


@router.get("/effort/unpatrolled", summary="Grids not patrolled in the last N days")
def unpatrolled(
    session: SessionDep,
    settings: SettingsDep,
    _: SignedIn,
    days: Annotated[int | None, Query(ge=1, le=3660)] = None,
    side: str | None = None,
    town: str | None = None,
):
    n = days or settings.patrols.unpatrolled_days
    return {"days": n, "grids": unpatrolled_grids(session, days=n, side=side, town=town)}
