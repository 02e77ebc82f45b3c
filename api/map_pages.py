"""The map pages: /maps/station, /maps/joint and /maps/replay/….

Each page gathers its data under the rules of the data shown (``patrol.map_data``), renders it
with ``maps`` and serves it with Leaflet and the other libraries from /static/maps. A
Content-Security-Policy lets the browser load nothing from elsewhere, except the tiles of a basemap
the user chose. Bad input answers with a 4xx page that says what is wrong, not a blank map.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.deps import Public, SessionDep, SettingsDep, csrf_token
from api.error_pages import STATUS_TITLES
from api.params import DB_INT_MAX, parse_datetime_interval
from geodata.errors import InputError
from maps.assets import to_html
from maps.base import LOCAL_PREFIX, Basemap, FilterForm, basemap, local_label
from maps.joint import joint_map
from maps.replay import replay_map
from maps.station import DEFAULT_METRIC, METRICS, station_map
from patrol.errors import DomainError, InvalidRequest, NotFound
from patrol.incidents import WORKER_ROLES
from patrol.map_data import (
    JointMapQuery,
    StationMapQuery,
    joint_map_data,
    replay_data,
    station_map_data,
)
from patrol.settings import BASEMAPS
from patrol.tilesets import TileStore

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)

INCIDENT_LINK = "/incidents/"
CASE_LINK = "/joint-cases/"
DESK_GRID_LINK = "/desk?grid="
SCOPE = ("station", "town", "grid")  # what the station map's form passes on unchanged
REPLAY_LINK = "/maps/replay/patrol/"


def _local_sets(settings) -> dict:
    """{name: metadata} of the station's tile sets that open (basemaps ``local:NAME``)."""
    return {t.name: t.metadata for t in TileStore(settings.tile_dir()).usable()}


def _choose_basemap(settings, name: str | None) -> Basemap:
    name = name or settings.maps.default_basemap
    local = _local_sets(settings) if name.startswith(LOCAL_PREFIX) else None
    try:
        return basemap(name, tianditu_key=settings.maps.tianditu_key, local=local)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def _form(settings, action: str, keep=()) -> FilterForm:
    """The filter form of a served map, offering only the basemaps this service can draw: the
    built-in ones and each of the station's tile sets."""
    names = [n for n in BASEMAPS if n != "tianditu" or settings.maps.tianditu_key]
    choices = [(n, basemap(n, tianditu_key=settings.maps.tianditu_key).label) for n in names]
    choices += [(LOCAL_PREFIX + name, local_label(name)) for name in sorted(_local_sets(settings))]
    return FilterForm(action, tuple(choices), tuple(keep))


def _period(start: str | None, end: str | None):
    """``from``/``to`` as local (China) days, both included."""
    if not start and not end:
        return None, None
    return parse_datetime_interval(f"{start or '..'}/{end or '..'}")


def _policy(base: Basemap) -> str:
    # A station tile set comes from the service itself ("/tiles/…"): 'self' covers it.
    tiles = " ".join(sorted({_origin(url) for url, _, _ in base.tiles if "://" in url}))
    return (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: {tiles}".strip()
        + "; connect-src 'self'; frame-ancestors 'none'"
    )


def _origin(url: str) -> str:
    """The CSP source of a tile URL template; a subdomain placeholder ("t{s}.…") becomes "*.…",
    the only wildcard CSP understands."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if "{s}" in host:
        host = "*." + host.split(".", 1)[1]
    return f"{scheme}://{host}"


def _desk_link(principal) -> str:
    """Grid popups link to the desk's work list for those who have a desk: managers, officers, admins."""
    return DESK_GRID_LINK if principal.is_admin or principal.has(*WORKER_ROLES) else ""


def _page(html: str, base: Basemap) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": _policy(base), "Cache-Control": "no-store"})


def _error_page(request: Request, principal, exc) -> HTMLResponse:
    status = getattr(exc, "status", 400)
    message = getattr(exc, "message", str(exc))
    return templates.TemplateResponse(
        request,
        "map_error.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "status": status,
            "message": message,
            "title": " ".join(
                STATUS_TITLES.get(status, ("请求被拒绝", getattr(exc, "title", "Request refused")))
            ),
        },
        status_code=status,
    )


def _sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={target}", status_code=303)


def _render(request, principal, build):
    """Run ``build`` (returning (html, basemap)); a refusal becomes an error page."""
    if principal is None:
        return _sign_in(request)
    try:
        html, base = build()
    except (DomainError, InputError) as exc:
        return _error_page(request, principal, exc)
    return _page(html, base)


@router.get("/maps/station", response_class=HTMLResponse)
def station_page(request: Request, session: SessionDep, settings: SettingsDep, principal: Public):
    q = request.query_params

    def build():
        base = _choose_basemap(settings, q.get("basemap"))
        metric = q.get("metric") or DEFAULT_METRIC
        if metric not in METRICS:
            raise InvalidRequest(f"unknown effort measure {metric!r}: use one of {', '.join(METRICS)}")
        start, end = _period(q.get("from"), q.get("to"))
        days = q.get("unpatrolled_days")
        if days is not None and not (days.isdigit() and 1 <= int(days) <= 3650):
            raise InvalidRequest(
                f"unpatrolled_days must be a whole number of days from 1 to 3650, got {days!r}"
            )
        query = StationMapQuery(
            station=q.get("station") or None,
            town=q.get("town") or None,
            grids=tuple(g for g in q.getlist("grid") if g),
            start=start,
            end=end,
            unpatrolled_days=int(days) if days else None,
        )
        data = station_map_data(session, principal, query, settings)
        m = station_map(
            data,
            base,
            metric=metric,
            decimals=settings.maps.coordinate_decimals,
            link=INCIDENT_LINK,
            replay_link=REPLAY_LINK,
            desk_link=_desk_link(principal),
            form=_form(settings, "/maps/station", [(k, v) for k, v in q.multi_items() if k in SCOPE]),
        )
        return to_html(m, self_contained=False, title=f"巡护地图 Station map · {data.title}"), base

    return _render(request, principal, build)


@router.get("/maps/joint", response_class=HTMLResponse)
def joint_page(request: Request, session: SessionDep, settings: SettingsDep, principal: Public):
    q = request.query_params

    def build():
        base = _choose_basemap(settings, q.get("basemap"))
        start, end = _period(q.get("from"), q.get("to"))
        query = JointMapQuery(
            start=start,
            end=end,
            categories=tuple(c for c in q.getlist("category") if c),
            statuses=tuple(s for s in q.getlist("status") if s),
        )
        data = joint_map_data(session, principal, query, settings)
        m = joint_map(
            data,
            base,
            decimals=settings.maps.coordinate_decimals,
            link=INCIDENT_LINK,
            case_link=CASE_LINK,
            desk_link=_desk_link(principal),
            form=_form(settings, "/maps/joint"),
        )
        return to_html(m, self_contained=False, title="联合执法图 Joint enforcement map"), base

    return _render(request, principal, build)


def _patrol_id(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= DB_INT_MAX:
        raise NotFound(f"no patrol {raw!r}")
    return int(raw)


@router.get("/maps/replay/patrol/{patrol_id}", response_class=HTMLResponse)
def replay_patrol_page(
    request: Request, patrol_id: str, session: SessionDep, settings: SettingsDep, principal: Public
):
    def build():
        base = _choose_basemap(settings, request.query_params.get("basemap"))
        data = replay_data(session, principal, settings, patrol_id=_patrol_id(patrol_id))
        m = replay_map(
            data, base, decimals=settings.maps.coordinate_decimals, form=_form(settings, request.url.path)
        )
        return to_html(m, self_contained=False, title=data.title), base

    return _render(request, principal, build)


@router.get("/maps/replay/team/{team}/{day}", response_class=HTMLResponse)
def replay_team_page(
    request: Request, team: str, day: str, session: SessionDep, settings: SettingsDep, principal: Public
):
    def build():
        base = _choose_basemap(settings, request.query_params.get("basemap"))
        try:
            local_day = date.fromisoformat(day)
        except ValueError:
            raise InvalidRequest(f"bad day {day!r}: expected a date such as 2026-03-01") from None
        data = replay_data(session, principal, settings, team=team, day=local_day)
        m = replay_map(
            data, base, decimals=settings.maps.coordinate_decimals, form=_form(settings, request.url.path)
        )
        return to_html(m, self_contained=False, title=data.title), base

    return _render(request, principal, build)
