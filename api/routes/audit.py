"""The audit trail (admin): list entries with filters, newest first, and verify the chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import AdminOnly, SessionDep
from api.params import DB_INT_MAX, parse_datetime_interval
from patrol.audit import MAX_LIMIT, AuditQuery, list_entries, verify

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", summary="Audit entries, newest first, with filters (admin)")
def entries(
    request: Request,
    session: SessionDep,
    admin: AdminOnly,
    actor: Annotated[
        str | None, Query(description="user name as recorded, e.g. gq-manager or cli:root")
    ] = None,
    action: Annotated[
        list[str] | None, Query(description="e.g. incident.transition, repeatable (any of them)")
    ] = None,
    object_type: Annotated[str | None, Query(description="e.g. incident, patrol, joint_case")] = None,
    object_id: Annotated[str | None, Query(description="with object_type: one object's entries")] = None,
    channel: Annotated[str | None, Query(description="api, page or cli")] = None,
    datetime: Annotated[
        str | None, Query(description="when: instant or interval, e.g. 2026-03-01/2026-03-31 (China dates)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    before: Annotated[
        int | None,
        Query(ge=1, le=DB_INT_MAX, description="entries before this position (from the next link)"),
    ] = None,
):
    start, end = parse_datetime_interval(datetime)
    query = AuditQuery(
        actor=actor, actions=tuple(action or ()), object_type=object_type, object_id=object_id,
        channel=channel, start=start, end=end, before=before, limit=limit,
    )  # fmt: skip
    items, next_before = list_entries(session, admin, query)
    body = {"entries": items, "numberReturned": len(items), "links": []}
    if next_before is not None:
        href = str(request.url.include_query_params(before=next_before))
        body["links"].append({"rel": "next", "type": "application/json", "href": href})
    return body


@router.get("/verify", summary="Check the whole chain: changed, deleted or inserted entries (admin)")
def verify_chain(session: SessionDep, _: AdminOnly):
    return verify(session).as_dict()
