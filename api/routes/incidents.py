"""Incidents and joint cases: report, query by grid (GeoJSON or CSV), counts, statistics, history,
transitions, referral, photos; joint cases with their action log."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminOnly, SessionDep, SettingsDep, SignedIn
from api.idempotency import IdempotencyDep
from api.openapi import CSV, FEATURE_COLLECTION, IMAGES, content
from api.params import BodyInt, RowId, parse_bbox, parse_datetime_interval
from api.responses import FastJSONResponse
from patrol import csvsafe
from patrol.errors import InvalidRequest
from patrol.idempotency import StoredResponse
from patrol.incident_stats import incident_stats
from patrol.incidents import (
    IncidentQuery,
    IncidentReport,
    add_category,
    counts_by_grid,
    incident_detail,
    incident_feature,
    link_patrol,
    list_categories,
    query_incidents,
    refer,
    report_incident,
    transition,
)
from patrol.joint import (
    add_action,
    add_incident,
    close_joint_case,
    joint_case_detail,
    list_joint_cases,
    open_joint_case,
)
from patrol.photos import add_photo, discard, photo_file

router = APIRouter(prefix="/api/v1", tags=["incidents"])
GEOJSON = "application/geo+json"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewIncident(Body):
    category: str = Field(description="a category code, see /api/v1/incident-categories")
    lon: float = Field(description="longitude, WGS84")
    lat: float = Field(description="latitude, WGS84")
    description: str = ""
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    level: Literal["village", "town", "county"] = Field(
        "village", description="handling level: decides the resolve time limit (2, 3 or 4 days)"
    )
    observed_at: datetime | None = Field(
        None, description="when it was seen (default: now); without a zone it is China time"
    )
    patrol_id: BodyInt | None = Field(None, description="the patrol it was found on")


class Transition(Body):
    action: Literal["accept", "start", "resolve", "close", "reject", "duplicate", "reopen"]
    version: BodyInt = Field(description="the version of the incident you read; a stale one gets 409")
    note: str | None = None
    duplicate_of: BodyInt | None = None
    level: Literal["village", "town", "county"] | None = None


class Referral(Body):
    to_side: str = Field(description="GD-LJ or GX-HP")
    version: BodyInt
    note: str | None = None


class PatrolLink(Body):
    patrol_id: BodyInt = Field(description="the patrol the incident was found on")


class NewCategory(Body):
    code: str
    label_zh: str
    label_en: str


class NewJointCase(Body):
    title: str
    incident_ids: list[BodyInt]
    participants: list[str] = Field(description="usernames from both sides (you are added)")


class JointAction(Body):
    mechanism: Literal["prevention", "supervision", "monitoring", "enforcement", "emergency"]
    note: str


class CaseIncident(Body):
    incident_id: BodyInt


class CloseJointCase(Body):
    version: BodyInt


async def incident_query(  # no I/O: async, so that it runs without a hop to a worker thread
    grid: Annotated[list[str] | None, Query(description="grid code, repeatable")] = None,
    town: Annotated[list[str] | None, Query(description="town code, repeatable")] = None,
    side: Annotated[str | None, Query(description="GD-LJ or GX-HP")] = None,
    category: Annotated[list[str] | None, Query(description="category code, repeatable")] = None,
    status: Annotated[list[str] | None, Query(description="status, repeatable")] = None,
    overdue: Annotated[bool | None, Query(description="only (true) or no (false) overdue incidents")] = None,
    datetime: Annotated[
        str | None, Query(description="observation time: instant or interval, e.g. 2026-03-01/2026-03-31")
    ] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    joint_case: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="incidents of one joint case")
    ] = None,
    mine: bool = False,
) -> IncidentQuery:
    start, end = parse_datetime_interval(datetime)
    return IncidentQuery(
        grids=tuple(grid or ()),
        towns=tuple(town or ()),
        side=side,
        categories=tuple(category or ()),
        statuses=tuple(status or ()),
        overdue=overdue,
        start=start,
        end=end,
        bbox=parse_bbox(bbox),
        joint_case_id=joint_case,
        mine=mine,
    )


# The same filters for the list, the counts and the statistics.
Filters = Annotated[IncidentQuery, Depends(incident_query)]


# --- categories -------------------------------------------------------------------------------


@router.get("/incident-categories", summary="Incident categories (Chinese and English labels)")
def categories(session: SessionDep, _: SignedIn):
    return {"categories": list_categories(session)}


@router.post("/incident-categories", summary="Add an incident category (admin)", status_code=201)
def new_category(body: NewCategory, session: SessionDep, principal: AdminOnly, idempotency: IdempotencyDep):
    def create() -> StoredResponse:
        add_category(session, principal, body.code, body.label_zh, body.label_en)
        return StoredResponse(201, {"categories": list_categories(session)})

    return idempotency.respond(session, principal, create)


# --- incidents --------------------------------------------------------------------------------


@router.post("/incidents", summary="Report an incident at a point", status_code=201)
def report(
    body: NewIncident,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    idempotency: IdempotencyDep,
):
    def create() -> StoredResponse:
        incident = report_incident(
            session, principal, IncidentReport(**body.model_dump()), settings.incidents
        )
        detail = incident_detail(session, principal, incident.id, settings.incidents)
        return StoredResponse(201, detail, f"/api/v1/incidents/{incident.id}")

    return idempotency.respond(session, principal, create)


CSV_COLUMNS = (
    "id", "category", "severity", "level", "status", "overdue", "observed_at", "reported_at", "reporter",
    "lon", "lat", "grid", "grid_match", "grid_distance_m", "side", "town", "border_distance_m",
    "referred_to", "joint_case_id", "duplicate_of", "patrol_id", "accept_due", "resolve_due",
    "responded_at", "resolved_at", "closed_at", "version", "description",
)  # fmt: skip


@router.get(
    "/incidents",
    summary="Incidents by grid, town, side, category, status, time… (GeoJSON or CSV)",
    responses={200: {**FEATURE_COLLECTION, "content": {**FEATURE_COLLECTION["content"], CSV: {}}}},
)
def incidents(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    query: Filters,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    sort: Annotated[
        str, Query(description="-observed_at (default), observed_at, -reported_at, reported_at, -id, id")
    ] = "-observed_at",
    cursor: Annotated[str | None, Query(description="from the next link")] = None,
    f: Annotated[Literal["geojson", "csv"], Query(description="output format")] = "geojson",
):
    query.limit, query.sort, query.cursor = limit, sort, cursor
    items, next_cursor = query_incidents(session, principal, query, settings.incidents)
    next_href = str(request.url.include_query_params(cursor=next_cursor)) if next_cursor else None
    if f == "csv":
        buffer = io.StringIO()
        buffer.write("\ufeff")  # so that Excel opens Chinese text as UTF-8
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(csvsafe.record(item) for item in items)
        headers = {"Content-Disposition": 'attachment; filename="incidents.csv"'}
        if next_href:
            headers["Link"] = f'<{next_href}>; rel="next"'
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    features = [incident_feature(item) for item in items]
    body = {"type": "FeatureCollection", "features": features, "numberReturned": len(features), "links": []}
    if next_href:
        body["links"].append({"rel": "next", "type": GEOJSON, "href": next_href})
    return FastJSONResponse(body, media_type=GEOJSON)


@router.get("/incidents/counts", summary="Incident counts per grid, with the same filters as the list")
def counts(session: SessionDep, settings: SettingsDep, principal: SignedIn, query: Filters):
    rows = counts_by_grid(session, principal, query, settings.incidents)
    return {"grids": rows, "total": sum(r["count"] for r in rows)}


@router.get(
    "/incidents/stats", summary="Response, on-time and resolution rates per grid, town, side or month"
)
def stats(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    query: Filters,
    by: Literal["grid", "town", "side", "month"] = "grid",
):
    return {"by": by, "groups": incident_stats(session, principal, query, settings.incidents, by=by)}


@router.get("/incidents/{incident_id}", summary="One incident with its history and photos")
def incident(incident_id: RowId, session: SessionDep, settings: SettingsDep, principal: SignedIn):
    return incident_detail(session, principal, incident_id, settings.incidents)


@router.post(
    "/incidents/{incident_id}/transitions",
    summary="Accept, start, resolve, close, reject, mark duplicate, reopen",
)
def change(
    incident_id: RowId, body: Transition, session: SessionDep, settings: SettingsDep, principal: SignedIn
):
    transition(
        session, principal, incident_id, body.action, settings.incidents,
        version=body.version, note=body.note, duplicate_of=body.duplicate_of, level=body.level,
    )  # fmt: skip
    session.commit()
    return incident_detail(session, principal, incident_id, settings.incidents)


@router.post("/incidents/{incident_id}/referral", summary="Refer an incident to the other side")
def referral(
    incident_id: RowId, body: Referral, session: SessionDep, settings: SettingsDep, principal: SignedIn
):
    refer(
        session,
        principal,
        incident_id,
        body.to_side,
        settings.incidents,
        version=body.version,
        note=body.note,
    )
    session.commit()
    return incident_detail(session, principal, incident_id, settings.incidents)


@router.post(
    "/incidents/{incident_id}/patrol",
    summary="Name the patrol a report was found on, after the report (its reporter, once)",
)
def patrol_link(
    incident_id: RowId, body: PatrolLink, session: SessionDep, settings: SettingsDep, principal: SignedIn
):
    link_patrol(session, principal, incident_id, body.patrol_id, settings.incidents)
    session.commit()
    return incident_detail(session, principal, incident_id, settings.incidents)


@router.post("/incidents/{incident_id}/photos", summary="Add a photo (JPEG, PNG or WebP)", status_code=201)
async def photo(
    incident_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    idempotency: IdempotencyDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
):
    limit = settings.incidents.photo_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InvalidRequest(f"the photo is larger than the limit of {limit / 1e6:.1f} MB")
    written = []  # the file is written before the row: removed again if the row is not committed

    def create() -> StoredResponse:
        row, path = add_photo(session, principal, incident_id, data, settings.incidents, settings.photo_dir())
        written.append(path)
        href = f"/api/v1/incidents/{incident_id}/photos/{row.id}"
        return StoredResponse(201, {"id": row.id, "href": href, "content_type": row.content_type})

    def undo() -> None:
        for path in written:
            discard(path)

    return await run_in_threadpool(idempotency.respond, session, principal, create, undo=undo)


# A photo is only ever shown as an image: never sniffed as something else, never run as a page.
PHOTO_HEADERS = {
    "Cache-Control": "private, max-age=86400",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


@router.get(
    "/incidents/{incident_id}/photos/{photo_id}",
    summary="A photo of an incident (its reporter and those who may work it)",
    responses={200: content(*IMAGES, description="The photo")},
)
def photo_download(
    incident_id: RowId, photo_id: RowId, session: SessionDep, settings: SettingsDep, principal: SignedIn
):
    path, content_type, name = photo_file(
        session, principal, incident_id, photo_id, settings.incidents, settings.photo_dir()
    )
    return FileResponse(
        path, media_type=content_type, filename=name, content_disposition_type="inline", headers=PHOTO_HEADERS
    )


# --- joint cases ------------------------------------------------------------------------------


@router.get("/joint-cases", summary="Joint cases (managers and officers of both sides)")
def joint_cases(session: SessionDep, principal: SignedIn, status: Literal["open", "closed"] | None = None):
    return {"joint_cases": list_joint_cases(session, principal, status=status)}


@router.post(
    "/joint-cases",
    summary="Raise incidents to a joint case with participants from both sides",
    status_code=201,
)
def new_joint_case(
    body: NewJointCase,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    idempotency: IdempotencyDep,
):
    def create() -> StoredResponse:
        case = open_joint_case(
            session, principal, title=body.title, incident_ids=body.incident_ids,
            participants=body.participants, settings=settings.incidents,
        )  # fmt: skip
        return StoredResponse(
            201, joint_case_detail(session, principal, case.id), f"/api/v1/joint-cases/{case.id}"
        )

    return idempotency.respond(session, principal, create)


@router.get("/joint-cases/{case_id}", summary="One joint case with its incidents and action log")
def joint_case(case_id: RowId, session: SessionDep, principal: SignedIn):
    return joint_case_detail(session, principal, case_id)


@router.post(
    "/joint-cases/{case_id}/actions",
    summary="Log an action under one of the five mechanisms",
    status_code=201,
)
def joint_action(
    case_id: RowId, body: JointAction, session: SessionDep, principal: SignedIn, idempotency: IdempotencyDep
):
    def create() -> StoredResponse:
        add_action(session, principal, case_id, mechanism=body.mechanism, note=body.note)
        return StoredResponse(201, joint_case_detail(session, principal, case_id))

    return idempotency.respond(session, principal, create)


@router.post("/joint-cases/{case_id}/incidents", summary="Bring another incident into a joint case")
def joint_incident(
    case_id: RowId,
    body: CaseIncident,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    idempotency: IdempotencyDep,
):
    def create() -> StoredResponse:
        add_incident(session, principal, case_id, body.incident_id, settings.incidents)
        return StoredResponse(200, joint_case_detail(session, principal, case_id))

    return idempotency.respond(session, principal, create)


@router.post("/joint-cases/{case_id}/close", summary="Close a joint case")
def joint_close(case_id: RowId, body: CloseJointCase, session: SessionDep, principal: SignedIn):
    close_joint_case(session, principal, case_id, version=body.version)
    session.commit()
    return joint_case_detail(session, principal, case_id)
