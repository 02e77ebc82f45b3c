"""Joint cases at the desk: the list, a page per case (participants, incidents, the action log by
mechanism) with its forms (log an action, add an incident, close), and opening a case from an
incident.

Thin like the API: every form calls the same ``patrol.joint`` function the API calls, which
decides who may see and change what and writes the audit entry (channel "page"). A refusal the
domain ties to an input (``DomainError.field``) is shown beside that input with what was typed
kept; nothing is written (the transaction is rolled back). Success answers post/redirect/get with
a notice; a form sent twice under its hidden key is answered with the first result.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from api.deps import Public, PublicForm, SessionDep, SettingsDep, check_csrf, csrf_token
from api.desk.pages import templates
from api.idempotency import from_form, new_form_key
from api.web import RESENT_CHANGED
from patrol.errors import Conflict, DomainError, InvalidRequest, NotFound, PermissionDenied
from patrol.idempotency import IdempotencyKeyReused, StoredResponse
from patrol.incidents import STATUS_NAMES, incident_detail, list_categories
from patrol.joint import (
    MECHANISMS,
    add_action,
    add_incident,
    can_see_cases,
    check_may_change,
    close_joint_case,
    joint_case_detail,
    list_joint_cases,
    open_joint_case,
    participant_candidates,
)
from patrol.models import Side
from patrol.vocabulary import ROLE_NAMES

router = APIRouter(include_in_schema=False)

MAX_ID = 2**31 - 1
NOTICES = {
    "opened": "联合案件已建立 The joint case is open",
    "logged": "行动已记录 The action is logged",
    "added": "事件已纳入本案 The incident is now part of this case",
    "closed": "案件已结案 The case is closed",
}
# Said before the domain's (English) message, beside the field it is about.
FIELD_WORDS = {
    "title": "标题须为 1–200 个字",
    "incidents": "事件无法纳入",
    "incident": "事件无法纳入",
    "participants": "参与人须来自两方（廉江、合浦），且为站长、执法人员或管理员",
    "mechanism": "请选择五联机制",
    "note": "请写明做了什么",
    "version": "请重新加载页面",
}
NOT_ALLOWED = (
    "联合案件仅供站长、执法人员和管理员使用 "
    "Joint cases are for station managers, enforcement officers and admins"
)
# Said before a refusal the domain words in English alone.
REFUSED_WORDS = {403: "无权操作", 404: "未找到", 409: "已被更改", 422: "无法处理"}


# --- words for codes ------------------------------------------------------------------------------


def _words(session) -> dict[str, dict[str, str]]:
    sides = {s.code: f"{s.name_zh} {s.name_en}" for s in session.scalars(select(Side))}
    categories = {
        c["code"]: f"{c['label_zh']} {c['label_en']}" for c in list_categories(session, include_retired=True)
    }
    return {
        "sides": sides,
        "categories": categories,
        "statuses": {code: f"{zh} {en}" for code, (zh, en) in STATUS_NAMES.items()},
        "roles": {code: f"{zh} {en}" for code, (zh, en) in ROLE_NAMES.items()},
        "mechanisms": {code: f"{zh} {en}" for code, (zh, en) in MECHANISMS.items()},
    }


def _person(person: dict[str, Any], words) -> dict[str, Any]:
    return {
        **person,
        "side_label": words["sides"].get(person["side"], person["side"]),
        "role_label": "、".join(words["roles"].get(r, r) for r in person["roles"]),
    }


def _sides_of(participants: list[dict[str, Any]], words) -> list[str]:
    return [words["sides"].get(code, code) for code in sorted({p["side"] for p in participants})]


def _labelled_case(detail: dict[str, Any], words) -> dict[str, Any]:
    """A case's detail with words for its codes and its log grouped by the five mechanisms."""
    log = [
        {
            "code": code,
            "zh": zh,
            "en": en,
            "actions": [a for a in detail["actions"] if a["mechanism"] == code],
        }
        for code, (zh, en) in MECHANISMS.items()
    ]
    return {
        **detail,
        "participants": [_person(p, words) for p in detail["participants"]],
        "sides": _sides_of(detail["participants"], words),
        "incidents": [
            {
                **i,
                "category_label": words["categories"].get(i["category"], i["category"]),
                "status_label": words["statuses"].get(i["status"], i["status"]),
                "side_label": words["sides"].get(i["side"], i["side"]),
            }
            for i in detail["incidents"]
        ],
        "log": log,
        "last_action_id": max((a["id"] for a in detail["actions"]), default=0),
    }


# --- shared answers -------------------------------------------------------------------------------


def _to_login(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path, safe='/')}", status_code=303)


def _refusal(request: Request, principal, message: str, status: int) -> HTMLResponse:
    """A page that only says why (not allowed, not found, a form from another session)."""
    if not _has_chinese(message) and status in REFUSED_WORDS:
        message = f"{REFUSED_WORDS[status]}: {message}"
    context = {"principal": principal, "csrf": csrf_token(request), "message": message, "status": status}
    return templates.TemplateResponse(request, "joint_refused.html", context, status_code=status)


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _field_message(exc: DomainError) -> str:
    """Chinese first, then the domain's words (already bilingual when the page raised it)."""
    words = FIELD_WORDS.get(exc.field or "")
    if not words or _has_chinese(exc.message):
        return exc.message
    return f"{words}: {exc.message}"


def _field_status(exc: DomainError) -> int:
    """Input the domain cannot take is a 422, whichever way it says so (an incident id that names
    nothing the user may see is bad input here, not a missing page)."""
    return 422 if isinstance(exc, InvalidRequest | NotFound) else exc.status


ID_WORDS = {
    "incident": "事件编号须为数字 The incident number must be a number such as 12",
    "incidents": "事件编号须为数字 Each incident number must be a number such as 12",
    "version": "表单已过期，请重新加载页面 The form is out of date: reload the page",
}


def _parse_id(value: str, field: str) -> int:
    """A row id typed (or carried) in a form, full-width digits (a Chinese input method's) too;
    InvalidRequest for ``field`` otherwise."""
    text = unicodedata.normalize("NFKC", value).strip().lstrip("#").strip()
    if not re.fullmatch(r"[0-9]{1,10}", text) or not 1 <= int(text) <= MAX_ID:
        raise InvalidRequest(f"{ID_WORDS[field]} (got {value.strip()[:40]!r})", field=field)
    return int(text)


def _parse_ids(value: str) -> list[int]:
    parts = [p for p in re.split(r"[\s,，、;；]+", value) if p]
    if not parts:
        raise InvalidRequest("请填写至少一个事件编号 give at least one incident number", field="incidents")
    return [_parse_id(p, "incidents") for p in parts]


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    submitted = form.get("csrf_token")
    check_csrf(request, submitted if isinstance(submitted, str) else None)
    return form


# --- the list ---------------------------------------------------------------------------------------


@router.get("/joint-cases", response_class=HTMLResponse)
def joint_cases_page(request: Request, session: SessionDep, principal: Public):
    if principal is None:
        return _to_login("/joint-cases")
    if not can_see_cases(principal):
        return _refusal(request, principal, NOT_ALLOWED, 403)
    words = _words(session)
    # Open cases first (each group newest first, as the domain lists them).
    cases = list_joint_cases(session, principal, status="open") + list_joint_cases(
        session, principal, status="closed"
    )
    for case in cases:
        case["sides"] = _sides_of(case["participants"], words)
        if case["last_action"]:
            case["last_action"]["label"] = words["mechanisms"][case["last_action"]["mechanism"]]
    return templates.TemplateResponse(
        request,
        "joint_list.html",
        {"principal": principal, "csrf": csrf_token(request), "cases": cases},
    )


# --- opening a case ---------------------------------------------------------------------------------


def _new_page(
    request: Request,
    session,
    principal,
    settings,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
):
    words = _words(session)
    chosen = set(values.get("participants", []))
    candidates = [
        {**_person(p, words), "checked": p["username"] in chosen}
        for p in participant_candidates(session, principal)
        if p["username"] != principal.username
    ]
    by_side = [
        {"label": label, "people": [p for p in candidates if p["side"] == code]}
        for code, label in words["sides"].items()
    ]
    incidents = []
    try:
        ids = _parse_ids(values.get("incident_ids", ""))
    except InvalidRequest as exc:
        ids = []
        if errors is None and values.get("incident_ids"):
            errors = {"incidents": exc.message}
    for incident_id in dict.fromkeys(ids[:10]):
        try:
            detail = incident_detail(session, principal, incident_id, settings.incidents)
        except DomainError as exc:
            if errors is None:  # the page as first drawn: say so now rather than on sending
                errors = {"incidents": _field_message(NotFound(exc.message, field="incidents"))}
            continue
        incidents.append(
            {
                "id": detail["id"],
                "grid": detail["grid"],
                "category_label": words["categories"].get(detail["category"], detail["category"]),
                "status_label": words["statuses"].get(detail["status"], detail["status"]),
                "side_label": words["sides"].get(detail["side"], detail["side"]),
                "joint_case_id": detail["joint_case_id"],
            }
        )
    me = _person(
        {"username": principal.username, "display_name": principal.display_name, "side": principal.side,
         "roles": sorted(r.value for r in principal.roles)},
        words,
    )  # fmt: skip
    return templates.TemplateResponse(
        request,
        "joint_new.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "idempotency_key": new_form_key(),
            "values": values,
            "errors": errors or {},
            "sides": by_side,
            "me": me,
            "incidents": incidents,
        },
        status_code=status,
    )


@router.get("/joint-cases/new", response_class=HTMLResponse)
def new_joint_case_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Public,
    incident: str = "",
):
    if principal is None:
        return _to_login(f"/joint-cases/new?incident={incident[:40]}" if incident else "/joint-cases/new")
    if not can_see_cases(principal):
        return _refusal(request, principal, NOT_ALLOWED, 403)
    values = {"incident_ids": incident.strip()[:200]}
    return _new_page(request, session, principal, settings, values=values, errors=None)


@router.post("/joint-cases/new", response_class=HTMLResponse)
async def open_joint_case_form(
    request: Request, session: SessionDep, settings: SettingsDep, principal: PublicForm
):
    if principal is None:
        return _to_login("/joint-cases/new")
    try:
        form = await _form(request)
    except PermissionDenied as exc:
        return _refusal(request, principal, exc.message, 403)
    if not can_see_cases(principal):
        return _refusal(request, principal, NOT_ALLOWED, 403)
    values = {
        "title": str(form.get("title") or "").strip(),
        "incident_ids": str(form.get("incident_ids") or "").strip(),
        "participants": [str(p) for p in form.getlist("participants") if isinstance(p, str) and p],
    }
    try:
        incident_ids = _parse_ids(values["incident_ids"])
        once = await from_form(request)

        def create() -> StoredResponse:
            case = open_joint_case(
                session, principal, title=values["title"], incident_ids=incident_ids,
                participants=values["participants"], settings=settings.incidents,
            )  # fmt: skip
            return StoredResponse(303, {"case": case.id}, f"/joint-cases/{case.id}?done=opened")

        stored, _ = await run_in_threadpool(once.run, session, principal, create)
    except IdempotencyKeyReused:
        session.rollback()
        errors = {"form": RESENT_CHANGED}
        return await run_in_threadpool(
            _new_page, request, session, principal, settings, values=values, errors=errors, status=422
        )
    except DomainError as exc:
        session.rollback()
        if exc.field is None:
            return _refusal(request, principal, exc.message, exc.status)
        errors = {exc.field: _field_message(exc)}
        return await run_in_threadpool(
            _new_page, request, session, principal, settings, values=values, errors=errors,
            status=_field_status(exc),
        )  # fmt: skip
    return RedirectResponse(stored.location, status_code=303)


# --- one case -------------------------------------------------------------------------------------


def _case_page(
    request: Request,
    session,
    principal,
    case_id: int,
    *,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    changed: dict[str, Any] | None = None,
    status: int = 200,
):
    if not 1 <= case_id <= MAX_ID:
        raise NotFound(f"no joint case {case_id}")
    words = _words(session)
    case = _labelled_case(joint_case_detail(session, principal, case_id), words)
    return templates.TemplateResponse(
        request,
        "joint_case.html",
        {
            "principal": principal,
            "csrf": csrf_token(request),
            # One key per form: each is its own write.
            "keys": {name: new_form_key() for name in ("action", "incident", "close")},
            "case": case,
            "mechanisms": [(code, f"{zh} {en}") for code, (zh, en) in MECHANISMS.items()],
            "form": form,
            "values": values or {},
            "errors": errors or {},
            "notice": notice,
            "changed": changed,
        },
        status_code=status,
    )


@router.get("/joint-cases/{case_id:int}", response_class=HTMLResponse)
def joint_case_page(
    request: Request,
    case_id: int,
    session: SessionDep,
    principal: Public,
    done: str = "",
):
    if principal is None:
        return _to_login(f"/joint-cases/{case_id}")
    try:
        return _case_page(request, session, principal, case_id, notice=NOTICES.get(done))
    except DomainError as exc:
        return _refusal(request, principal, exc.message, exc.status)


async def _case_write(
    request: Request,
    session,
    principal,
    case_id: int,
    form_name: str,
    fields: tuple[str, ...],
    write,
    done: str,
):
    """One write form of a case page: CSRF, then ``write(values)`` once under the form's key and
    a redirect to the page with ``done``'s notice; a refusal shown beside its field (422), on the
    page as a change by someone else (409), or on its own (403/404)."""
    if principal is None:
        return _to_login(f"/joint-cases/{case_id}")
    try:
        form = await _form(request)
    except PermissionDenied as exc:
        return _refusal(request, principal, exc.message, 403)
    if not can_see_cases(principal):
        return _refusal(request, principal, NOT_ALLOWED, 403)
    values = {name: str(form.get(name) or "").strip() for name in fields}
    page = {"form": form_name, "values": values}
    try:
        if not 1 <= case_id <= MAX_ID:
            raise NotFound(f"no joint case {case_id}")
        once = await from_form(request)

        def create() -> StoredResponse:
            check_may_change(session, principal, case_id)  # before reading the fields
            write(values)
            return StoredResponse(303, {"case": case_id}, f"/joint-cases/{case_id}?done={done}")

        stored, _ = await run_in_threadpool(once.run, session, principal, create)
    except IdempotencyKeyReused:
        session.rollback()
        redraw = {"errors": {"form": RESENT_CHANGED}, "status": 422, **page}
    except DomainError as exc:
        session.rollback()
        if exc.field is not None:
            redraw = {"errors": {exc.field: _field_message(exc)}, "status": _field_status(exc), **page}
        elif isinstance(exc, Conflict):
            changed = {"message": exc.message, "seen_version": values.get("version"),
                       "seen_action": values.get("seen_action"), "form": form_name, "sent": values}  # fmt: skip
            redraw = {"changed": changed, "status": 409}
        else:
            return _refusal(request, principal, exc.message, exc.status)
    else:
        return RedirectResponse(stored.location, status_code=303)
    try:
        return await run_in_threadpool(lambda: _case_page(request, session, principal, case_id, **redraw))
    except DomainError as exc:  # the case is gone meanwhile
        return _refusal(request, principal, exc.message, exc.status)


@router.post("/joint-cases/{case_id:int}/actions", response_class=HTMLResponse)
async def log_action_form(request: Request, case_id: int, session: SessionDep, principal: PublicForm):
    def write(values):
        add_action(session, principal, case_id, mechanism=values["mechanism"], note=values["note"])

    fields = ("mechanism", "note", "seen_action")
    return await _case_write(request, session, principal, case_id, "action", fields, write, "logged")


@router.post("/joint-cases/{case_id:int}/incidents", response_class=HTMLResponse)
async def add_incident_form(
    request: Request, case_id: int, session: SessionDep, settings: SettingsDep, principal: PublicForm
):
    def write(values):
        incident_id = _parse_id(values["incident"], "incident")
        add_incident(session, principal, case_id, incident_id, settings.incidents)

    fields = ("incident", "seen_action")
    return await _case_write(request, session, principal, case_id, "incident", fields, write, "added")


@router.post("/joint-cases/{case_id:int}/close", response_class=HTMLResponse)
async def close_form(request: Request, case_id: int, session: SessionDep, principal: PublicForm):
    def write(values):
        version = _parse_id(values["version"], "version")
        close_joint_case(session, principal, case_id, version=version)

    fields = ("version", "seen_action")
    return await _case_write(request, session, principal, case_id, "close", fields, write, "closed")
