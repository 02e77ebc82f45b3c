"""The monthly briefing (工作简报): ``GET /api/v1/briefings/{month}`` as HTML or PDF, and the page
``/briefing`` where managers, officers and admins choose the month and the scope.

Thin: ``patrol.briefing.collect`` gathers the data under the caller's visibility (the analysis
functions' rules, the same as the JSON API's), ``patrol.briefing.render`` draws it. Bad months and
scopes the caller may not see are refused there (problem+json naming the parameter; on the page,
the message beside the field).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from api.deps import Access, NowDep, Public, SessionDep, SettingsDep, csrf_token
from api.openapi import content
from api.web import templates
from patrol.accounts import Principal
from patrol.errors import DomainError
from patrol.incidents import WORKER_ROLES
from patrol.models import Role, Side, Station, Town

router = APIRouter(tags=["briefings"])
Analyst = Annotated[Principal, Depends(Access(Role.STATION_MANAGER, Role.ENFORCEMENT_OFFICER))]
# The served page is self-contained: its stylesheet inline, its images data URIs, nothing else.
BRIEFING_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
PDF = "application/pdf"


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def briefing_link(month: str, fmt: str, *, side=None, town=None, station=None) -> str:
    query = {k: v for k, v in {"side": side, "town": town, "station": station}.items() if v}
    query["format"] = fmt
    return f"/api/v1/briefings/{month}?{urlencode(query)}"


def build_briefing(session, principal, settings, now, month, side, town, station):
    from patrol.briefing.collect import collect_briefing

    return collect_briefing(
        session, principal, settings, month=month, side=side, town=town, station=station, now=now
    )


@router.get(
    "/api/v1/briefings/{month}",
    summary="The monthly briefing of a side, town or station (HTML or PDF)",
    responses={200: content("text/html", PDF, description="The briefing: a page, or a PDF with format=pdf")},
)
def get_briefing(
    session: SessionDep,
    settings: SettingsDep,
    principal: Analyst,
    now: NowDep,
    month: str,
    side: Annotated[str | None, Query(max_length=16, description="GD-LJ or GX-HP (default: yours)")] = None,
    town: Annotated[str | None, Query(max_length=16, description="a town code, e.g. GQ")] = None,
    station: Annotated[str | None, Query(max_length=32, description="a station code, e.g. LJ-S-GQ")] = None,
    format: Annotated[Literal["html", "pdf"], Query(description="html (default) or pdf")] = "html",
):
    """A China-time month (``YYYY-MM``) that has begun, for your side (or a town or station of it;
    admins: any side, or both without ``side``): effort, incidents, the map, encounter rates,
    unpatrolled grids, recurring places, next month's priorities and the assessment. Only what
    the JSON API shows you is in it."""
    from patrol.briefing.render import render_html, to_pdf

    side, town, station = _clean(side), _clean(town), _clean(station)
    briefing = build_briefing(session, principal, settings, now, month, side, town, station)
    where = {"side": side, "town": town, "station": station}
    html = render_html(
        briefing, pdf_link=briefing_link(briefing.month, "pdf", **where) if format == "html" else None
    )
    name = "-".join(["briefing", briefing.month, *[v for v in (side, town, station) if v]])
    if format == "pdf":
        return Response(to_pdf(html), media_type=PDF, headers={
            "Content-Disposition": f'inline; filename="{name}.pdf"', "Cache-Control": "no-store"})  # fmt: skip
    return HTMLResponse(
        html, headers={"Content-Security-Policy": BRIEFING_POLICY, "Cache-Control": "no-store"}
    )


# --- the page ----------------------------------------------------------------------------------


def _choices(session, principal):
    """(sides, towns, stations) the caller may choose: their side's, or every side's for admins."""
    sides = session.execute(select(Side.code, Side.name_zh, Side.name_en).order_by(Side.code)).all()
    towns = select(Town.code, Town.name_zh, Town.name_en, Town.side).order_by(Town.side, Town.code)
    stations = select(Station.code, Station.name_zh, Station.name_en, Station.side).order_by(Station.code)
    if not principal.is_admin:
        sides = [s for s in sides if s.code == principal.side]
        towns = towns.where(Town.side == principal.side)
        stations = stations.where(Station.side == principal.side)
    return sides, session.execute(towns).all(), session.execute(stations).all()


@router.get("/briefing", response_class=HTMLResponse, include_in_schema=False)
def briefing_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Public,
    now: NowDep,
    month: str = "",
    side: str = "",
    town: str = "",
    station: str = "",
):
    """Choose a month and a scope; the answer links to the briefing as a page and as a PDF."""
    if principal is None:
        return RedirectResponse("/login?next=/briefing", status_code=303)
    base = {"principal": principal, "csrf": csrf_token(request)}
    if not principal.has(*WORKER_ROLES):
        return templates.TemplateResponse(
            request, "briefing_page.html", {**base, "forbidden": True}, status_code=403
        )
    from patrol.analysis.scope import analysis_scope, month_bounds
    from patrol.effort import LOCAL_TIME

    local = now.astimezone(LOCAL_TIME)
    last_month = f"{local.year - (local.month == 1)}-{(local.month - 2) % 12 + 1:02d}"
    values = {"month": month.strip()[:16], "side": side.strip()[:16], "town": town.strip()[:16],
              "station": station.strip()[:32]}  # fmt: skip
    error, links, status = None, None, 200
    if values["month"]:
        where = {k: values[k] or None for k in ("side", "town", "station")}
        try:
            start, end = month_bounds(values["month"])
            analysis_scope(session, principal, settings, start=start, end=end, now=now, **where)
        except DomainError as exc:
            error, status = {"field": exc.field or "month", "message": exc.message}, exc.status
        else:
            links = {fmt: briefing_link(values["month"], fmt, **where) for fmt in ("html", "pdf")}
    sides, towns, stations = _choices(session, principal)
    return templates.TemplateResponse(
        request,
        "briefing_page.html",
        {
            **base,
            "forbidden": False,
            "values": values,
            "default_month": last_month,
            "error": error,
            "links": links,
            "sides": sides,
            "towns": towns,
            "stations": stations,
        },  # fmt: skip
        status_code=status,
    )
