"""The service's own HTML pages: sign in and out with a browser session, and the home page.

The session is a signed, HttpOnly, SameSite=Lax cookie; every form that changes state carries the
session's CSRF token (checked here and, for API calls made with the cookie, in ``api.deps``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.datastructures import UploadFile as StarletteUploadFile

from api.deps import Public, PublicForm, SessionDep, SettingsDep, check_csrf, csrf_token
from api.routes.patrols import parse_upload_options
from api.uploads import human_size, save_upload
from geodata.errors import InputError
from patrol.accounts import authenticate
from patrol.errors import AuthenticationFailed, DomainError, InvalidRequest, PermissionDenied
from patrol.models import Role, Side, Team
from patrol.patrols import get_patrol, member_names, patrol_properties, upload_patrol

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would help phishing."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request, *, error: str | None = None, username: str = "", next_: str = "/", status: int = 200
):
    return templates.TemplateResponse(
        request,
        "login.html",
        {
            "csrf": csrf_token(request),
            "error": error,
            "username": username,
            "next": safe_next(next_),
            "principal": None,
        },
        status_code=status,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, _: Public, next: str = "/"):
    return _login_page(request, next_=next)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    _: PublicForm,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    next: Annotated[str, Form()] = "/",
):
    try:
        check_csrf(request, csrf_token_)
        user = authenticate(session, username.strip(), password)
    except PermissionDenied as exc:
        return _login_page(request, error=exc.message, username=username, next_=next, status=403)
    except AuthenticationFailed:
        return _login_page(
            request,
            error="用户名或密码错误 Incorrect username or password",
            username=username,
            next_=next,
            status=401,
        )
    session.commit()
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session.update({"uid": user.id, "cv": user.credentials_version})
    csrf_token(request)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request, _: PublicForm):
    # Read the form directly: a lone aliased Form() parameter is not filled in by FastAPI 0.12x.
    submitted = (await request.form()).get("csrf_token")
    check_csrf(request, submitted if isinstance(submitted, str) else None)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def home_links(principal) -> list[dict[str, str]]:
    links = [
        {
            "href": "/api/v1/grids",
            "label": "网格 Grids (GeoJSON)",
            "note": "26 Lianjiang grids and Hepu's zones",
        },
        {"href": "/api/v1/places", "label": "乡镇、站点与队伍 Towns, stations and teams"},
        {"href": "/docs", "label": "API 文档 API documentation"},
    ]
    if principal.teams or principal.stations or principal.has(Role.ADMIN):
        links.insert(0, {"href": "/patrols/upload", "label": "上传巡护轨迹 Upload a patrol track"})
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
            "roles": sorted(r.value for r in principal.roles),
            "links": home_links(principal),
        },
    )


# --- patrol upload page (phones) ----------------------------------------------------------------


def _upload_page(request: Request, session, principal, settings, *, status: int = 200, **context):
    teams = sorted(principal.teams)
    if principal.stations:
        teams += sorted(session.scalars(select(Team.code).where(Team.station.in_(principal.stations))).all())
    return templates.TemplateResponse(
        request,
        "patrol_upload.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "teams": list(dict.fromkeys(teams)),
            "can_name_members": bool(principal.stations) or principal.has(Role.ADMIN),
            "max_size": human_size(settings.imports.max_upload_bytes),
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
        path = await save_upload(upload, workdir, settings.imports.max_upload_bytes)
        result = await run_in_threadpool(
            upload_patrol, session, path, filename=upload.filename, principal=principal, options=options,
            settings=settings.patrols,
        )  # fmt: skip
        session.commit()
    except (InputError, DomainError) as exc:
        session.rollback()
        status = getattr(exc, "status", 422)
        detail = "; ".join([exc.message] + [p.message for p in exc.problems[:5]])
        return _upload_page(request, session, principal, settings, status=status, error=detail)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    patrol = get_patrol(session, principal, result.patrol_id)
    props = patrol_properties(patrol, member_names(session, [patrol.id])[patrol.id])
    return _upload_page(request, session, principal, settings, result=result, patrol=props)
