"""The service's own HTML pages: sign in and out with a browser session, and the home page.

The session is a signed, HttpOnly, SameSite=Lax cookie holding the secret of a server-side session
(``patrol.accounts``; signing out ends it, so a copied cookie is refused after) and the CSRF
token; every form that changes state carries that token (checked here and, for API calls made with
the cookie, in ``api.deps``).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from starlette.datastructures import UploadFile as StarletteUploadFile

from api.deps import (
    PAGE_SESSION_KEY,
    NowDep,
    Public,
    PublicForm,
    SessionDep,
    SettingsDep,
    check_csrf,
    client_address,
    csrf_token,
)
from api.idempotency import from_form, new_form_key
from api.params import CHINA
from api.routes.patrols import parse_upload_options
from api.uploads import human_size, save_upload
from geodata.datum import to_wgs84
from geodata.errors import InputError
from maps.svg import tappable_map
from patrol.accounts import sign_in, sign_out
from patrol.errors import (
    AccountLocked,
    AuthenticationFailed,
    DomainError,
    InvalidRequest,
    PermissionDenied,
    TooManyAttempts,
)
from patrol.grids import BORDER_CODE, list_grids
from patrol.idempotency import IdempotencyKeyReused, StoredResponse
from patrol.incidents import (
    SEVERITIES,
    STATUS_NAMES,
    IncidentQuery,
    IncidentReport,
    incident_detail,
    list_categories,
    query_incidents,
    report_with_photo,
)
from patrol.models import Boundary, Grid, Patrol, Role, Side, Team, Town
from patrol.patrols import get_patrol, member_names, patrol_properties, upload_patrol, visible_patrols_clause
from patrol.photos import discard
from patrol.vocabulary import FLAG_NAMES, ROLE_NAMES, TRANSPORT_NAMES, words

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would help phishing."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request,
    *,
    error: str | None = None,
    username: str = "",
    next_: str = "/",
    status: int = 200,
    retry_after: int | None = None,
):
    return templates.TemplateResponse(
        request,
        "login.html",
        {
            "csrf": csrf_token(request),
            "error": error,
            "retry_after": retry_after,
            "username": username,
            "next": safe_next(next_),
            "principal": None,
        },
        status_code=status,
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, _: Public, next: str = "/"):
    return _login_page(request, next_=next)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    before: PublicForm,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    next: Annotated[str, Form()] = "/",
):
    page = {"username": username, "next_": next}
    try:
        check_csrf(request, csrf_token_)
        signed_in = sign_in(
            session,
            username,
            password,
            kind="page",
            address=client_address(request),
            settings=settings.auth,
            now=now,
            # Whoever was signed in in this browser before is signed out: no session is left behind.
            replaces=before.session_id if before is not None else None,
        )
    except PermissionDenied as exc:
        return _login_page(request, error=exc.message, status=403, **page)
    except TooManyAttempts as exc:
        wait = exc.retry_after
        error = (
            f"登录失败次数过多，请等待 {wait} 秒后再试 "
            f"Too many failed sign-ins: wait {wait} second{'' if wait == 1 else 's'} before trying again"
        )
        return _login_page(request, error=error, status=429, retry_after=exc.retry_after, **page)
    except AccountLocked:
        error = (
            "账号因多次登录失败已被锁定，请联系管理员解锁 "
            "This account is locked after too many failed sign-ins: ask an administrator to unlock it"
        )
        return _login_page(request, error=error, status=423, **page)
    except AuthenticationFailed:
        error = "用户名或密码错误 Incorrect username or password"
        return _login_page(request, error=error, status=401, **page)
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session[PAGE_SESSION_KEY] = signed_in.secret
    csrf_token(request)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request, session: SessionDep, now: NowDep, principal: PublicForm):
    # Read the form directly: a lone aliased Form() parameter is not filled in by FastAPI 0.12x.
    submitted = (await request.form()).get("csrf_token")
    check_csrf(request, submitted if isinstance(submitted, str) else None)
    if principal is not None and principal.session_id is not None:
        # The server-side session ends, so a copy of the cookie signs no one in any more.
        await run_in_threadpool(_end_session, session, principal, now)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _end_session(session, principal, now) -> None:
    sign_out(session, principal, now=now)
    session.commit()


def home_links(principal, latest_patrol: int | None = None) -> list[dict[str, str]]:
    links = [
        {
            "href": "/api/v1/grids",
            "label": "网格 Grids (GeoJSON)",
            "note": "26 Lianjiang grids and Hepu's zones",
        },
        {"href": "/api/v1/places", "label": "乡镇、站点与队伍 Towns, stations and teams"},
        {"href": "/docs", "label": "API 文档 API documentation"},
    ]
    if principal.roles:
        links[0:0] = [
            {"href": "/incidents/report", "label": "报告事件 Report an incident", "note": "photo, map, GPS"},
            {"href": "/incidents/mine", "label": "我报告的事件 My incidents"},
        ]
    if principal.teams or principal.stations or principal.has(Role.ADMIN):
        links.insert(0, {"href": "/patrols/upload", "label": "上传巡护轨迹 Upload a patrol track"})
    maps = [{"href": "/maps/station", "label": "巡护地图 Station map", "note": "effort, tracks, incidents"}]
    if principal.has(Role.ADMIN, Role.STATION_MANAGER, Role.ENFORCEMENT_OFFICER):
        maps.append(
            {"href": "/maps/joint", "label": "粤桂联合执法图 Joint enforcement map", "note": "both sides"}
        )
        maps.append({"href": "/joint-cases", "label": "联合案件 Joint cases", "note": "五联 five-joint log"})
        maps.append({"href": "/briefing", "label": "月度工作简报 Monthly briefing", "note": "HTML, PDF"})
    if latest_patrol is not None:
        maps.append(
            {
                "href": f"/maps/replay/patrol/{latest_patrol}",
                "label": "巡护回放 Patrol replay",
                "note": "latest patrol",
            }
        )
    links[0:0] = maps
    if principal.roles:
        # First for those in the field: records, reports and queues with no network.
        links.insert(
            0, {"href": "/app/", "label": "手机巡护应用 Field app", "note": "record patrols, report offline"}
        )
    if principal.has(Role.STATION_MANAGER, Role.ENFORCEMENT_OFFICER, Role.ADMIN):
        # First for those who answer reports: what is due, the most urgent first.
        links.insert(
            0, {"href": "/desk", "label": "待办事件 My work list", "note": "what is due, overdue first"}
        )
        links.insert(1, {"href": "/desk/ahead", "label": "未诉先办 Ahead of complaints",
                         "note": "next week's priorities, recurring places, hot spots"})  # fmt: skip
    links.append({"href": "/api/v1/effort", "label": "网格巡护统计 Patrol effort per grid (JSON)"})
    links.append({"href": "/api/v1/effort/unpatrolled", "label": "久未巡护的网格 Grids not patrolled lately"})
    if principal.has(Role.ADMIN):
        links.append(
            {
                "href": "/docs#/grids/import_grid_file_api_v1_grids_import_post",
                "label": "网格导入 Grid import (admin)",
            }
        )
    return links


def _latest_patrol(session, principal) -> int | None:
    """The newest patrol this user may see, for the replay link (None: none)."""
    query = select(Patrol.id).order_by(Patrol.started_at.desc(), Patrol.id.desc()).limit(1)
    visible = visible_patrols_clause(session, principal)
    return session.scalar(query if visible is None else query.where(visible))


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, principal: Public):
    if principal is None:
        return RedirectResponse("/login?next=/", status_code=303)
    side = session.get(Side, principal.side)
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "side_label": f"{side.name_zh} {side.name_en}" if side else principal.side,
            "roles": [words(ROLE_NAMES, r) for r in sorted(r.value for r in principal.roles)],
            "links": home_links(principal, _latest_patrol(session, principal)),
        },
    )


# --- patrol upload page (phones) ----------------------------------------------------------------

# A page sent again with its hidden key but other values: back, change, submit. The page drawn
# with the message carries a new key, so submitting once more makes the new object.
RESENT_CHANGED = (
    "此表单已提交过, 内容已改变 This form was already sent with other values; "
    "再次提交即作为新的提交 submit again to send it as a new one"
)


def _upload_page(request: Request, session, principal, settings, *, status: int = 200, **context):
    codes = sorted(principal.teams)
    if principal.stations:
        codes += sorted(session.scalars(select(Team.code).where(Team.station.in_(principal.stations))).all())
    names = {
        t.code: f"{t.name_zh} {t.name_en}" for t in session.scalars(select(Team).where(Team.code.in_(codes)))
    }
    teams = [(code, names.get(code, code)) for code in dict.fromkeys(codes)]
    return templates.TemplateResponse(
        request,
        "patrol_upload.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "teams": teams,
            "values": {"datum": "wgs84", "time_zone": "auto", "transport": "foot"},
            "can_name_members": bool(principal.stations) or principal.has(Role.ADMIN),
            "max_size": human_size(settings.imports.max_upload_bytes),
            "idempotency_key": new_form_key(),
            "result": None,
            "error": None,
            **context,
        },
        status_code=status,
    )


@router.get("/patrols/upload", response_class=HTMLResponse)
def upload_form(request: Request, session: SessionDep, settings: SettingsDep, principal: Public):
    if principal is None:
        return RedirectResponse("/login?next=/patrols/upload", status_code=303)
    return _upload_page(request, session, principal, settings)


@router.post("/patrols/upload", response_class=HTMLResponse)
async def upload_track(request: Request, session: SessionDep, settings: SettingsDep, principal: PublicForm):
    if principal is None:
        return RedirectResponse("/login?next=/patrols/upload", status_code=303)
    form = await request.form(max_part_size=settings.imports.max_upload_bytes + 1)
    submitted = form.get("csrf_token")
    check_csrf(request, submitted if isinstance(submitted, str) else None)
    upload = form.get("file")
    # Shown again with the message if the file is refused: only the file must be chosen again.
    entered = {
        k: str(form.get(k) or "") for k in ("datum", "time_zone", "transport", "team", "members", "notes")
    }
    workdir = Path(tempfile.mkdtemp(prefix="mangrove-page-"))
    try:
        if not isinstance(upload, StarletteUploadFile) or not upload.filename:
            raise InvalidRequest("choose a track file to upload")
        members = [m.strip() for m in str(form.get("members") or "").split(",") if m.strip()]
        options = parse_upload_options(
            str(form.get("datum") or "wgs84"),
            str(form.get("transport") or "foot"),
            str(form.get("team") or "") or None,
            members,
            str(form.get("notes") or ""),
            str(form.get("time_zone") or "auto"),
        )
        once = await from_form(request)
        path = await save_upload(upload, workdir, settings.imports.max_upload_bytes)

        def create() -> StoredResponse:
            result = upload_patrol(
                session, path, filename=upload.filename, principal=principal, options=options,
                settings=settings.patrols,
            )  # fmt: skip
            return StoredResponse(200, {"patrol_id": result.patrol_id, "created": result.created})

        # A resubmitted form (same hidden key) shows the patrol the first submission made.
        stored, _ = await run_in_threadpool(once.run, session, principal, create)
        patrol = get_patrol(session, principal, stored.body["patrol_id"])  # NotFound: deleted since
    except IdempotencyKeyReused:
        session.rollback()
        return _upload_page(
            request, session, principal, settings, status=422, error=RESENT_CHANGED, values=entered
        )
    except (InputError, DomainError) as exc:
        session.rollback()
        status = getattr(exc, "status", 422)
        return _upload_page(
            request, session, principal, settings, status=status, error=upload_refusal(exc), values=entered
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    props = patrol_properties(patrol, member_names(session, [patrol.id])[patrol.id])
    return _upload_page(
        request, session, principal, settings, result=stored.body, patrol=_upload_result(session, props)
    )


# What went wrong with a refused file, in Chinese first; the reader's own message follows in English.
UPLOAD_REFUSALS = {
    413: "文件太大 The file is too large",
    415: "不支持此文件格式 This file format is not supported",
    422: "无法读取此轨迹文件 This track file could not be read",
}


def upload_refusal(exc: InputError | DomainError) -> str:
    """One message for a refused upload: a bilingual lead, then each distinct finding once (a
    reader's message often repeats as its only problem)."""
    status = getattr(exc, "status", 422)
    problems = [p.message for p in getattr(exc, "problems", [])[:5]]
    findings = list(dict.fromkeys([exc.message] + [m for m in problems if m not in exc.message]))
    lead = UPLOAD_REFUSALS.get(status) if isinstance(exc, InputError) else None
    return f"{lead}: {'; '.join(findings)}" if lead else "; ".join(findings)


def _upload_result(session, props: dict[str, Any]) -> dict[str, Any]:
    """A stored patrol as its uploader reads it: names instead of codes, China time to the minute,
    the grids in the order the patrol entered them."""
    team = session.get(Team, props["team"]) if props["team"] else None
    codes = [g["grid"] for g in props["grids"] if g["grid"]]
    names = (
        dict(session.execute(select(Grid.code, Grid.name_zh).where(Grid.code.in_(codes))).all())
        if codes
        else {}
    )
    grids = sorted(
        props["grids"], key=lambda g: (g["entered_at"] is None, g["entered_at"] or "", g["grid"] or "")
    )
    return {
        **props,
        "team_label": f"{team.name_zh} {team.name_en}" if team else (props["team"] or ""),
        "transport_label": words(TRANSPORT_NAMES, props["transport"]),
        "flag_labels": [(words(FLAG_NAMES, name), count) for name, count in props["flags"].items() if count],
        "grid_rows": [
            {**g, "name": names.get(g["grid"], ""), "entered": china_time(g["entered_at"])} for g in grids
        ],
    }


# --- incident report page (phones) --------------------------------------------------------------

SEVERITY_LABELS = {"low": "低 Low", "medium": "中 Medium", "high": "高 High", "critical": "紧急 Critical"}
DATUM_CHOICES = (
    ("wgs84", "GPS 设备 / 手机定位 WGS84 (GPS device, phone location)"),
    ("gcj02", "高德 / 腾讯地图 GCJ-02 (Amap, Tencent)"),
    ("bd09", "百度地图 BD-09 (Baidu)"),
)
STATUS_LABELS = {code: f"{zh} {en}" for code, (zh, en) in STATUS_NAMES.items()}
OVERDUE_LABELS = {"accept": "超时未受理 Not accepted in time", "resolve": "超时未办结 Not resolved in time"}
REPORT_FIELDS = ("category", "severity", "lon", "lat", "datum", "observed_at", "description")


def china_time(value: str | datetime | None) -> str:
    """An instant (ISO text or datetime; naive means UTC) as China time, to the minute."""
    if not value:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


templates.env.filters["china_time"] = china_time


def _map_grids(session, principal) -> tuple[list, set[str]]:
    """All active grids and the codes of the ones to frame: a patrol member's team towns (and the
    team's own grids); everyone else's view frames all grids."""
    records = list_grids(session)
    if principal.teams:
        towns = set(
            session.scalars(select(Team.town).where(Team.code.in_(principal.teams), Team.town.is_not(None)))
        )
        mine = {r.code for r in records if r.town in towns or r.team in principal.teams}
        if mine:
            return records, mine
    return records, {r.code for r in records}


def grid_map(session, principal) -> dict[str, Any] | None:
    records, framed = _map_grids(session, principal)
    wkb = session.scalar(select(func.ST_AsBinary(Boundary.geom)).where(Boundary.code == BORDER_CODE))
    return tappable_map(records, framed, shapely.from_wkb(bytes(wkb)) if wkb is not None else None)


def _report_page(request: Request, session, principal, settings, *, status: int = 200, **context):
    return templates.TemplateResponse(
        request,
        "incident_report.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "categories": list_categories(session),
            "severities": [(s, SEVERITY_LABELS.get(s, s)) for s in SEVERITIES],
            "datums": DATUM_CHOICES,
            "map": grid_map(session, principal),
            "photo_max_bytes": settings.incidents.photo_max_bytes,
            "photo_max": human_size(settings.incidents.photo_max_bytes),
            "idempotency_key": new_form_key(),
            "values": {"severity": "medium", "datum": "wgs84"},
            "error": None,
            "done": None,
            "photo_dropped": False,
            **context,
        },
        status_code=status,
    )


def _read_report(values: dict[str, str]) -> IncidentReport:
    """The report the form describes, its position turned into WGS84; InvalidRequest naming what
    is missing or unreadable."""
    if not values["category"]:
        raise InvalidRequest("请选择事件类别 Choose what you found (category)")
    if not values["lon"] or not values["lat"]:
        raise InvalidRequest(
            "请给出位置 Give the position: tap 使用我的位置 Use my location, tap the map, "
            "or type the longitude and latitude"
        )
    try:
        lon, lat = float(values["lon"]), float(values["lat"])
    except ValueError:
        raise InvalidRequest(
            f"经纬度须为十进制数字 longitude and latitude must be decimal degrees, e.g. 109.7421 and 21.5503 "
            f"(got {values['lon']!r}, {values['lat']!r})"
        ) from None
    x, y = to_wgs84(np.array([lon]), np.array([lat]), values["datum"] or "wgs84")
    observed = None
    if values["observed_at"]:
        try:
            observed = datetime.fromisoformat(values["observed_at"])
        except ValueError:
            raise InvalidRequest(
                f"发现时间无法识别 the time seen {values['observed_at']!r} is not a date and time, "
                "e.g. 2026-03-01T14:30"
            ) from None
        if observed.tzinfo is None:  # the phone's clock: China time
            observed = observed.replace(tzinfo=CHINA)
    return IncidentReport(
        category=values["category"],
        lon=float(x[0]),
        lat=float(y[0]),
        description=values["description"],
        severity=values["severity"] or "medium",
        observed_at=observed,
    )


def _save_report(session, principal, once, report: IncidentReport, photo: bytes | None, settings) -> int:
    """Report and (optionally) add the photo in one transaction with one audit entry: all of it is
    saved, or nothing — no row, no file and no entry. A form sent again under its key gives the
    incident the first one made."""
    written = []

    def create() -> StoredResponse:
        incident, path = report_with_photo(
            session, principal, report, settings.incidents, photo=photo, photo_dir=settings.photo_dir()
        )
        if path is not None:
            written.append(path)
        return StoredResponse(303, {"incident_id": incident.id}, f"/incidents/report?reported={incident.id}")

    def undo() -> None:
        for path in written:
            discard(path)

    stored, _ = once.run(session, principal, create, undo=undo)
    return stored.body["incident_id"]


def _category_labels(session) -> dict[str, str]:
    return {
        c["code"]: f"{c['label_zh']} {c['label_en']}" for c in list_categories(session, include_retired=True)
    }


def _summary(session, principal, incident_id: int, settings) -> dict[str, Any] | None:
    """What the reporter needs to know about the incident just saved (None: not theirs)."""
    try:
        detail = incident_detail(session, principal, incident_id, settings.incidents)
    except DomainError:
        return None
    if detail["reporter"] != principal.username:
        return None
    return _labelled(session, detail)


def _labelled(session, detail: dict[str, Any]) -> dict[str, Any]:
    """An incident's detail with the bilingual words a page shows for its codes."""
    side = session.get(Side, detail["side"])
    town = session.get(Town, detail["town"]) if detail["town"] else None
    return {
        **detail,
        "category_label": _category_labels(session).get(detail["category"], detail["category"]),
        "severity_label": SEVERITY_LABELS.get(detail["severity"], detail["severity"]),
        "side_label": f"{side.name_zh} {side.name_en}" if side else detail["side"],
        "town_label": f"{town.name_zh} {town.name_en}" if town else None,
        "status_label": STATUS_LABELS.get(detail["status"], detail["status"]),
        "overdue_label": OVERDUE_LABELS.get(detail["overdue"] or ""),
    }


@router.get("/incidents/report", response_class=HTMLResponse)
def incident_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Public,
    reported: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
):
    if principal is None:
        return RedirectResponse("/login?next=/incidents/report", status_code=303)
    done = _summary(session, principal, reported, settings) if reported is not None else None
    return _report_page(request, session, principal, settings, done=done)


@router.post("/incidents/report", response_class=HTMLResponse)
async def incident_report(
    request: Request, session: SessionDep, settings: SettingsDep, principal: PublicForm
):
    if principal is None:
        return RedirectResponse("/login?next=/incidents/report", status_code=303)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in REPORT_FIELDS}
    upload = form.get("photo")
    chosen = isinstance(upload, StarletteUploadFile) and bool(upload.filename)
    try:
        submitted = form.get("csrf_token")
        check_csrf(request, submitted if isinstance(submitted, str) else None)
        photo = None
        if chosen:
            limit = settings.incidents.photo_max_bytes
            photo = await upload.read(limit + 1)
            if len(photo) > limit:
                raise InvalidRequest(f"照片太大 the photo is larger than the limit of {human_size(limit)}")
        report = _read_report(values)
        once = await from_form(request)
        incident_id = await run_in_threadpool(_save_report, session, principal, once, report, photo, settings)
    except IdempotencyKeyReused:
        session.rollback()
        return await run_in_threadpool(
            _report_page, request, session, principal, settings, status=422, error=RESENT_CHANGED,
            values=values, photo_dropped=chosen,
        )  # fmt: skip
    except (InputError, DomainError) as exc:
        session.rollback()
        detail = "; ".join([exc.message] + [p.message for p in exc.problems[:5]])
        return await run_in_threadpool(
            _report_page, request, session, principal, settings, status=getattr(exc, "status", 422),
            error=detail, values=values, photo_dropped=chosen,
        )  # fmt: skip
    # Post/redirect/get: reloading the summary must not report the incident a second time.
    return RedirectResponse(f"/incidents/report?reported={incident_id}", status_code=303)


@router.get("/incidents/mine", response_class=HTMLResponse)
def my_incidents(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Public,
    cursor: str | None = None,
):
    if principal is None:
        return RedirectResponse("/login?next=/incidents/mine", status_code=303)
    items, next_cursor, error, status = [], None, None, 200
    query = IncidentQuery(mine=True, limit=50, sort="-reported_at", cursor=cursor or None)
    try:
        items, next_cursor = query_incidents(session, principal, query, settings.incidents)
    except DomainError as exc:
        error, status = exc.message, exc.status
    labels = _category_labels(session)
    sides = {s.code: f"{s.name_zh} {s.name_en}" for s in session.scalars(select(Side))}
    for item in items:
        item["category_label"] = labels.get(item["category"], item["category"])
        item["side_label"] = sides.get(item["side"], item["side"])
        item["status_label"] = STATUS_LABELS.get(item["status"], item["status"])
        item["overdue_label"] = OVERDUE_LABELS.get(item["overdue"] or "")
    return templates.TemplateResponse(
        request,
        "my_incidents.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "items": items,
            "next_cursor": next_cursor,
            "error": error,
            "first_page": not cursor,
        },
        status_code=status,
    )
