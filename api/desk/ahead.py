"""未诉先办 Ahead of complaints: next week's patrol priorities, the places where the same trouble
keeps coming back and the hot spots, for a town or station, in the browser. Reads the same
analyses as the API (``patrol.analysis``); the refusals are shown beside the field they are about."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from api.deps import NowDep, Public, SessionDep, SettingsDep, csrf_token
from api.desk.incidents import _category_labels, _here, _is_desk_user, _town_names
from api.desk.pages import templates
from patrol.analysis import reports
from patrol.analysis.priorities import priorities_report
from patrol.analysis.scope import analysis_scope
from patrol.effort import LOCAL_TIME
from patrol.errors import DomainError, InvalidRequest
from patrol.models import Station

router = APIRouter(include_in_schema=False)
SHOWN = 10  # priorities listed before "all grids"


@router.get("/desk/ahead", response_class=HTMLResponse)
def ahead(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Public,
    now: NowDep,
    town: str = "",
    station: str = "",
    days: str = "90",
    all: str = "",
):
    if principal is None:
        return RedirectResponse(f"/login?next={_here(request)}", status_code=303)
    base = {"principal": principal, "csrf": csrf_token(request)}
    if not _is_desk_user(principal):
        return templates.TemplateResponse(request, "forbidden.html", base, status_code=403)
    filters = {"town": town.strip(), "station": station.strip(), "days": days.strip() or "90"}
    if not (town or station) and len(principal.stations) == 1 and not principal.is_admin:
        # A station manager's page opens on their station, as their station map does.
        filters["station"] = next(iter(principal.stations))
    context: dict[str, Any] = {**base, "filters": filters, "error": None, "error_field": None,
                               "towns": _town_names(session), "stations": _stations(session)}  # fmt: skip
    try:
        if (
            not filters["days"].isdigit()
            or not 7 <= int(filters["days"]) <= settings.analysis.max_period_days
        ):
            raise InvalidRequest(f"天数应为 7–{settings.analysis.max_period_days} Days must be a whole number from 7 "
                              f"to {settings.analysis.max_period_days}", field="days")  # fmt: skip
        start = now - timedelta(days=int(filters["days"]))
        scope = analysis_scope(session, principal, settings, start=start, end=now,
                               town=filters["town"] or None, station=filters["station"] or None, now=now)  # fmt: skip
        ranked = priorities_report(session, principal, settings, scope, as_of=now)
        places = reports.recurring_report(session, principal, settings, scope)
        spots = reports.hotspots_report(session, principal, settings, scope)
    except DomainError as exc:
        context.update(error=exc.message, error_field=exc.field)
        return templates.TemplateResponse(request, "ahead.html", context, status_code=exc.status)
    labels = _category_labels(session)
    rows = reports.records(ranked)
    context.update(
        scope_label=scope.label(),
        priorities=rows if all else rows[:SHOWN],
        more=max(0, len(rows) - SHOWN) if not all else 0,
        places=[_place(p, labels) for p in reports.records(places.drop(columns=["x", "y"], errors="ignore"))],
        hot=_spot_summary(spots),
        map_href=_map_href(filters, scope),
        settings=settings.analysis,
    )
    return templates.TemplateResponse(request, "ahead.html", context)


def _stations(session) -> dict[str, str]:
    rows = session.scalars(select(Station).order_by(Station.code))
    return {s.code: f"{s.name_zh} {s.name_en}" for s in rows}


def _place(place: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    grids = place.get("grids") or []
    return {
        **place,
        "category_label": labels.get(place["category"], place["category"]),
        "desk_href": "/desk?" + "&".join(
            [f"category={place['category']}", "status=all"] + ([f"grid={grids[0]}"] if len(grids) == 1 else [])
        ),
    }  # fmt: skip


def _spot_summary(spots) -> dict[str, Any]:
    cells = spots.cells
    significant = cells[cells["significant"]].sort_values("z", ascending=False)
    return {
        "method": spots.method,
        "cells": int(len(cells)),
        "incidents": spots.incidents,
        "hot": [
            {
                "grid": r["grid"],
                "count": int(r["count"]),
                "z": r["z"],
                "p": r["p_adjusted"],
                "lon": r["lon"],
                "lat": r["lat"],
            }
            for r in significant[significant["kind"] == "hot"].head(SHOWN).to_dict("records")
        ],  # fmt: skip
        "n_hot": int((cells["kind"] == "hot").sum()),
        "n_cold": int((cells["kind"] == "cold").sum()),
    }


def _map_href(filters: dict[str, str], scope) -> str:
    start = scope.start.astimezone(LOCAL_TIME).date()
    end = (scope.end - timedelta(microseconds=1)).astimezone(LOCAL_TIME).date()
    where = f"station={filters['station']}&" if filters["station"] else (
        f"town={filters['town']}&" if filters["town"] else "")  # fmt: skip
    return f"/maps/station?{where}from={start}&to={end}"
