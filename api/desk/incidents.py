"""The incident desk: the work list (``/desk``) and the incident page with its actions.

Thin: every form calls the domain function the API calls (``patrol.incidents.transition``,
``resolve_with_photos``, ``refer``, ``patrol.joint.add_incident``), which records the audit entry
(channel "page"). What a page offers comes from ``patrol.incidents.available_actions``, the same
rules the domain enforces, so an action not offered is also refused when forced (403). Each form
carries the version it was drawn with: a stale one answers 409 with the page drawn again, showing
what changed since, the entries kept and the current version in the form.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from starlette.datastructures import UploadFile

from api.deps import NowDep, Public, PublicForm, SessionDep, SettingsDep, check_csrf, csrf_token
from api.desk.pages import templates
from api.idempotency import from_form, new_form_key
from api.uploads import human_size
from api.web import (
    OVERDUE_LABELS,
    RESENT_CHANGED,
    SEVERITY_LABELS,
    STATUS_LABELS,
    _category_labels,
    _labelled,
)
from patrol.accounts import display_names
from patrol.errors import Conflict, DomainError, InvalidRequest, NotFound, PermissionDenied
from patrol.idempotency import IdempotencyKeyReused, StoredResponse
from patrol.incidents import (
    LEVELS,
    OPEN,
    STATUSES,
    TRANSITIONS,
    IncidentQuery,
    available_actions,
    aware,
    can_work,
    changed_since,
    get_incident,
    incident_detail,
    list_categories,
    query_incidents,
    refer,
    resolve_with_photos,
    transition,
)
from patrol.joint import add_incident, list_joint_cases
from patrol.models import Grid, Role, Side, Team, Town
from patrol.patrols import BEFORE_SEEN_RADIUS_M, BEFORE_SEEN_WINDOW, patrols_before_seen
from patrol.photos import PhotoRejected, discard

router = APIRouter(include_in_schema=False)

MAX_ID = 2**31 - 1
DESK_ROLES = (Role.STATION_MANAGER, Role.ENFORCEMENT_OFFICER)  # and admins
# What the desk lists unless a status is chosen: open incidents, and resolved ones to verify.
TO_ACT = (*OPEN, "resolved")
DESK_LIMIT = 1000

LEVEL_LABELS = {
    "village": "村级 Village (2 天 days)",
    "town": "镇级 Town (3 天 days)",
    "county": "县级 County (4 天 days)",
}
ACTION_LABELS = {
    "reported": "报告 Reported",
    "accept": "受理 Accepted",
    "start": "开始处理 Started",
    "resolve": "办结 Resolved",
    "close": "核实关闭 Closed after verifying",
    "reject": "不予受理 Rejected",
    "duplicate": "标为重复 Marked duplicate",
    "reopen": "重新打开 Reopened",
    "refer": "移交 Referred",
    "joint": "纳入联合案件 Added to a joint case",
    "link_patrol": "关联巡护 Linked to its patrol",
}
# The buttons and headings of the action forms.
ACTION_FORMS = {
    "accept": ("受理", "Accept"),
    "start": ("开始处理", "Start work"),
    "resolve": ("办结", "Resolve"),
    "close": ("核实并关闭", "Verify and close"),
    "reject": ("不予受理", "Reject"),
    "duplicate": ("标为重复", "Mark as duplicate"),
    "refer": ("移交对方", "Refer to the other side"),
    "joint": ("纳入联合案件", "Add to a joint case"),
    "reopen": ("重新打开", "Reopen"),
}
DONE = {
    "accept": "已受理 Accepted",
    "start": "已开始处理 Work started",
    "resolve": "已办结 Resolved",
    "close": "已核实并关闭 Verified and closed",
    "reject": "已不予受理 Rejected",
    "duplicate": "已标为重复 Marked as duplicate",
    "refer": "已移交对方 Referred to the other side",
    "joint": "已纳入联合案件 Added to the joint case",
    "reopen": "已重新打开 Reopened",
}
FIELD_LABELS = {
    "status": "状态 Status",
    "level": "处理层级 Handling level",
    "referred_to": "移交 Referred to",
    "joint_case_id": "联合案件 Joint case",
    "duplicate_of": "重复于 Duplicate of",
    "patrol_id": "巡护 Patrol",
}
# The field of each action's form that a refusal of its input is shown beside.
ACTION_FIELD = {
    "accept": "level",
    "start": "note",
    "resolve": "note",
    "close": "note",
    "reject": "note",
    "duplicate": "duplicate_of",
    "reopen": "note",
    "refer": "note",
    "joint": "case_id",
}
FIELD_HINTS = {
    "note": "请检查说明 Check the note",
    "level": "请选择处理层级 Choose the handling level",
    "duplicate_of": "请填写有效的事件编号 Give the number of an incident you can see",
    "case_id": "请选择联合案件 Choose a joint case",
    "photos": "照片无法接受 A photo cannot be accepted",
}
STALE = "有人已修改此事件 Someone changed this incident"
FORM_FIELDS = ("action", "version", "note", "level", "duplicate_of", "case_id", "to_side")


class FieldError(InvalidRequest):
    """Input refused at the page, shown beside ``field``."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _side_names(session) -> dict[str, str]:
    return {s.code: f"{s.name_zh} {s.name_en}" for s in session.scalars(select(Side))}


def _town_names(session) -> dict[str, str]:
    return {t.code: f"{t.name_zh} {t.name_en}" for t in session.scalars(select(Town).order_by(Town.code))}


def _is_desk_user(principal) -> bool:
    return principal.has(*DESK_ROLES)


# --- the work list ------------------------------------------------------------------------------


def _due(item: dict[str, Any]) -> datetime | None:
    """When the next step is due: acceptance while reported, resolution while open."""
    if item["status"] == "reported":
        return aware(datetime.fromisoformat(item["accept_due"]))
    if item["status"] in OPEN:
        return aware(datetime.fromisoformat(item["resolve_due"]))
    return None


def _workable(principal, item: dict[str, Any]) -> bool:
    return can_work(
        principal, SimpleNamespace(**{k: item[k] for k in ("side", "referred_to", "joint_case_id")})
    )


def _desk_items(session, principal, query: IncidentQuery, settings, now) -> tuple[list[dict], bool]:
    items, more = query_incidents(session, principal, query, settings.incidents, now=now)
    items = [i for i in items if _workable(principal, i)]
    # Overdue first, then by the time the next step is due; resolved (to verify) after, by id.
    items.sort(key=lambda i: (i["overdue"] is None, _due(i) is None, str(_due(i) or ""), i["id"]))
    return items, more is not None


@router.get("/desk", response_class=HTMLResponse)
def desk(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Public,
    now: NowDep,
    grid: str = "",
    town: str = "",
    category: str = "",
    status: str = "",
    side: str = "",
):
    """What the signed-in manager, officer or admin must act on, the most urgent first."""
    if principal is None:
        return RedirectResponse(f"/login?next={_here(request)}", status_code=303)
    base = {"principal": principal, "csrf": csrf_token(request)}
    if not _is_desk_user(principal):
        return templates.TemplateResponse(request, "forbidden.html", base, status_code=403)
    filters = {"grid": grid.strip(), "town": town.strip(), "category": category.strip(),
               "status": status.strip(), "side": side.strip()}  # fmt: skip
    towns = _town_names(session)
    error, items, counts, more = None, [], {}, False
    try:
        if any(len(value) > 64 for value in filters.values()):
            raise InvalidRequest("筛选值太长 A filter value is longer than 64 characters")
        if filters["town"] and filters["town"] not in towns:
            raise InvalidRequest(f"未知乡镇 Unknown town {filters['town']!r}")
        if filters["status"] not in ("", "all", *STATUSES):
            raise InvalidRequest(f"未知状态 Unknown status {filters['status']!r}")
        query = IncidentQuery(
            grids=(filters["grid"],) if filters["grid"] else (),
            towns=(filters["town"],) if filters["town"] else (),
            side=filters["side"] or None,
            categories=(filters["category"],) if filters["category"] else (),
            statuses=TO_ACT,
            limit=DESK_LIMIT,
            sort="id",
        )
        to_act, more = _desk_items(session, principal, query, settings, now)
        counts = {s: sum(1 for i in to_act if i["status"] == s) for s in TO_ACT}
        counts["overdue"] = sum(1 for i in to_act if i["overdue"])
        if filters["status"] == "":
            items = to_act
        else:
            # Answered incidents pile up: the newest of them, when there are more than a page.
            query.statuses = () if filters["status"] == "all" else (filters["status"],)
            query.sort = "-id"
            items, more = _desk_items(session, principal, query, settings, now)
    except DomainError as exc:
        error = exc.message
    categories, sides = _category_labels(session), _side_names(session)
    for item in items:
        item["category_label"] = categories.get(item["category"], item["category"])
        item["status_label"] = STATUS_LABELS.get(item["status"], item["status"])
        item["overdue_label"] = OVERDUE_LABELS.get(item["overdue"] or "")
        item["town_label"] = towns.get(item["town"] or "", "")
        item["due"] = _due(item)
        item["severity_label"] = SEVERITY_LABELS.get(item["severity"], item["severity"])
        item["referred_label"] = _referral(item, principal, sides)
    context = {
        **base,
        "items": items,
        "counts": counts,
        "more": more,
        "limit": DESK_LIMIT,
        "error": error,
        "filters": filters,
        "grids": session.execute(
            select(Grid.code, Grid.name_zh).where(Grid.retired_at.is_(None)).order_by(Grid.code)
        ).all(),
        "towns": towns,
        "sides": sides,
        "categories": list_categories(session),
        "statuses": [(s, STATUS_LABELS[s]) for s in STATUSES],
        "to_act": [(s, STATUS_LABELS[s]) for s in TO_ACT],
    }
    return templates.TemplateResponse(request, "desk.html", context, status_code=422 if error else 200)


def _referral(item: dict[str, Any], principal, sides: dict[str, str]) -> str:
    """Where a referred incident came from (for the side it was referred to) or went."""
    if not item["referred_to"]:
        return ""
    if item["referred_to"] == principal.side:
        return f"移交自 referred from {sides.get(item['side'], '')}"
    return f"已移交 referred to {sides.get(item['referred_to'], '')}"


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


# --- the incident page --------------------------------------------------------------------------


def _event_text(event: dict[str, Any], sides: dict[str, str]) -> str:
    details = event.get("details") or {}
    parts = []
    if details.get("level"):
        old, new = details["level"]
        parts.append(f"{LEVEL_LABELS.get(old, old)} → {LEVEL_LABELS.get(new, new)}")
    if event["action"] == "refer" and details.get("to"):
        parts.append(f"移交给 to {sides.get(details['to'], details['to'])}")
    if event["action"] == "joint" and details.get("case"):
        parts.append(f"联合案件 joint case #{details['case']}")
    if event["action"] == "duplicate" and details.get("duplicate_of"):
        parts.append(f"重复于 duplicate of #{details['duplicate_of']}")
    if event["action"] == "link_patrol" and details.get("patrol_id"):
        parts.append(f"巡护 patrol #{details['patrol_id']}")
    if event["action"] == "reported" and details.get("grid"):
        parts.append(f"网格 grid {details['grid']}")
    return " · ".join(parts)


def _field_value(name: str, value, sides: dict[str, str]) -> str:
    if value is None:
        return "无 none"
    if name == "status":
        return STATUS_LABELS.get(value, value)
    if name == "level":
        return LEVEL_LABELS.get(value, value)
    if name == "referred_to":
        return sides.get(value, value)
    return f"#{value}"


def _labelled_history(session, events: list[dict[str, Any]], sides) -> list[dict[str, Any]]:
    names = display_names(session, {e["by"] for e in events})
    return [
        {
            **e,
            "label": ACTION_LABELS.get(e["action"], e["action"]),
            "who": e.get("by_name") or names.get(e["by"], e["by"]),
            "text": _event_text(e, sides),
        }
        for e in events
    ]


def _before_seen(session, principal, incident) -> list[dict[str, Any]]:
    """The patrols that passed near the incident's place in the day before it was seen, as the
    page lists them: team, members, how close, when (and how long before it was seen)."""
    found = patrols_before_seen(session, principal, incident.lon, incident.lat, incident.observed_at)
    if not found:
        return []
    codes = {item.patrol.team for item in found}
    teams = {
        t.code: f"{t.name_zh} {t.name_en}" for t in session.scalars(select(Team).where(Team.code.in_(codes)))
    }
    people = display_names(session, {name for item in found for name in item.members})
    seen_at = aware(incident.observed_at)
    rows = []
    for item in found:
        minutes = max(0, round((seen_at - item.approach.at).total_seconds() / 60))
        rows.append(
            {
                "patrol_id": item.patrol.id,
                "team": teams.get(item.patrol.team) or item.patrol.team or "无队伍 no team",
                "members": ", ".join(people.get(name, name) for name in item.members),
                "distance_m": item.approach.distance_m,
                "at": item.approach.at,
                "before": f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min",
            }
        )
    return rows


def _page(
    request: Request,
    session,
    principal,
    settings,
    incident_id: int,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    stale_from: int | None = None,
    photos_dropped: bool = False,
):
    """The incident page: the incident, the actions the user may take now, its photos, its
    history. Drawn again after a refusal with the entries kept and the message beside its field."""
    context: dict[str, Any] = {"principal": principal, "csrf": csrf_token(request), "incident": None}
    try:
        if not 1 <= incident_id <= MAX_ID:
            raise NotFound(f"no incident {incident_id}")
        detail = incident_detail(session, principal, incident_id, settings.incidents)
        incident = get_incident(session, principal, incident_id, settings.incidents)
    except DomainError as exc:
        context["error"] = exc.message
        return templates.TemplateResponse(request, "incident.html", context, status_code=exc.status)
    sides = _side_names(session)
    shown = _labelled(session, detail)
    shown["history"] = _labelled_history(session, detail["history"], sides)
    shown["reporter_name"] = display_names(session, [detail["reporter"]]).get(detail["reporter"], "")
    shown["level_label"] = LEVEL_LABELS.get(detail["level"], detail["level"])
    shown["referred_label"] = sides.get(detail["referred_to"] or "", "")
    grid = session.scalar(select(Grid).where(Grid.code == detail["grid"])) if detail["grid"] else None
    shown["grid_name"] = f"{grid.name_zh} {grid.name_en}" if grid else ""
    actions = available_actions(session, principal, incident)
    other_sides = [(code, name) for code, name in sides.items() if code != detail["side"]]
    cases = []
    if "joint" in actions:
        cases = [
            c
            for c in list_joint_cases(session, principal, status="open")
            if principal.is_admin or principal.username in {p["username"] for p in c["participants"]}
        ]
    stale = None
    if stale_from is not None:
        since = changed_since(detail, stale_from)
        stale = {
            "events": _labelled_history(session, since["events"], sides),
            "fields": [
                (FIELD_LABELS[name], _field_value(name, then, sides), _field_value(name, now, sides))
                for name, (then, now) in since["fields"].items()
            ],
        }
    values = values or {}
    flash = request.session.pop("desk_flash", None) if status == 200 else None
    context.update(
        incident=shown,
        actions=actions,
        forms=ACTION_FORMS,
        levels=[(code, LEVEL_LABELS[code]) for code in LEVELS],
        other_sides=other_sides,
        cases=cases,
        values=values,
        failed=values.get("action"),
        errors=errors or {},
        error=error,
        stale=stale,
        stale_message=STALE,
        flash=DONE.get(flash) if isinstance(flash, str) else None,
        idempotency_key=new_form_key(),
        photo_max=human_size(settings.incidents.photo_max_bytes),
        photos_dropped=photos_dropped,
        can_work=can_work(principal, incident),
        before_seen=_before_seen(session, principal, incident),
        before_seen_radius_m=round(BEFORE_SEEN_RADIUS_M),
        before_seen_hours=round(BEFORE_SEEN_WINDOW.total_seconds() / 3600),
    )
    return templates.TemplateResponse(request, "incident.html", context, status_code=status)


@router.get("/incidents/{incident_id:int}", response_class=HTMLResponse)
def incident_page(
    request: Request, incident_id: int, session: SessionDep, settings: SettingsDep, principal: Public
):
    """An incident with its actions, photos and history, under the API's visibility rules
    (others: 404)."""
    if principal is None:
        return RedirectResponse(f"/login?next=/incidents/{incident_id}", status_code=303)
    return _page(request, session, principal, settings, incident_id)


# --- the actions --------------------------------------------------------------------------------


def _number(field: str, text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FieldError(field, f"{what} 须为数字 must be a number (got {text[:40]!r})") from None
    if not 1 <= value <= MAX_ID:
        raise FieldError(field, f"{what} 超出范围 is out of range ({value})")
    return value


def _version(text: str) -> int:
    try:
        return _number("version", text, "版本 The version")
    except FieldError:
        raise InvalidRequest(
            "表单缺少版本号, 请重新载入页面 The form has no valid version: reload the page and try again"
        ) from None


async def _photos(form, settings) -> list[bytes]:
    limit = settings.incidents.photo_max_bytes
    photos = []
    for upload in form.getlist("photos"):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise FieldError(
                "photos", f"照片太大 {upload.filename[:60]!r} is larger than the limit of {human_size(limit)}"
            )
        photos.append(data)
    return photos


def _run(session, principal, settings, incident_id: int, once, act) -> StoredResponse:
    """Run one action once (a form sent again under its key answers as the first did)."""
    written = []

    def create() -> StoredResponse:
        written.extend(act() or [])
        return StoredResponse(303, {"incident_id": incident_id}, f"/incidents/{incident_id}")

    def undo() -> None:
        for path in written:
            discard(path)

    stored, _ = once.run(session, principal, create, undo=undo)
    return stored


async def _submit(request: Request, session, settings, principal, incident_id: int, action_of, perform):
    """The common path of every action form: CSRF, version, run once, post/redirect/get; a refusal
    draws the page again with the entries kept and the message beside its field."""
    if principal is None:
        return RedirectResponse(f"/login?next=/incidents/{incident_id}", status_code=303)
    form = await request.form(max_part_size=settings.incidents.photo_max_bytes + 1)
    values = {name: str(form.get(name) or "").strip()[:5000] for name in FORM_FIELDS}
    values["action"] = action_of(values)
    chose_photos = any(isinstance(u, UploadFile) and u.filename for u in form.getlist("photos"))
    version = None
    try:
        submitted = form.get("csrf_token")
        check_csrf(request, submitted if isinstance(submitted, str) else None)
        if not 1 <= incident_id <= MAX_ID:
            raise NotFound(f"no incident {incident_id}")
        version = _version(values["version"])
        act = await perform(values, version, form)
        once = await from_form(request)
        stored = await run_in_threadpool(_run, session, principal, settings, incident_id, once, act)
    except IdempotencyKeyReused:
        session.rollback()
        return await _refused(request, session, principal, settings, incident_id, values, 422,
                              error=RESENT_CHANGED, photos_dropped=chose_photos)  # fmt: skip
    except (DomainError, ValueError) as exc:
        session.rollback()
        return await _refused_by(
            request, session, principal, settings, incident_id, values, version, exc, chose_photos
        )
    request.session["desk_flash"] = values["action"]
    return RedirectResponse(stored.location or f"/incidents/{incident_id}", status_code=303)


async def _refused(request, session, principal, settings, incident_id, values, status, **context):
    return await run_in_threadpool(
        _page, request, session, principal, settings, incident_id, status=status, values=values, **context
    )


async def _refused_by(request, session, principal, settings, incident_id, values, version, exc, photos):
    page = {"photos_dropped": photos}
    if isinstance(exc, ValueError):  # e.g. a form that cannot be parsed
        exc = InvalidRequest(f"表单无法读取 The form cannot be read: {exc}")
    current = await run_in_threadpool(_current_version, session, principal, settings, incident_id)
    if current is None:  # the incident is not there, or not for this user to see
        return await _refused(request, session, principal, settings, incident_id, {}, 404, **page)
    if isinstance(exc, Conflict) and version is not None:
        if current != version:
            values = {**values, "version": str(current)}
            return await _refused(request, session, principal, settings, incident_id, values, 409,
                                  stale_from=version, error=STALE, **page)  # fmt: skip
    if isinstance(exc, PermissionDenied):
        message = f"不允许 Not allowed: {exc.message}"
        return await _refused(request, session, principal, settings, incident_id, values, 403,
                              error=message, **page)  # fmt: skip
    if values.get("action") in ACTION_FIELD:  # beside the field of the form it came from
        field = getattr(exc, "field", None) or (
            "photos" if isinstance(exc, PhotoRejected) else ACTION_FIELD[values["action"]]
        )
        hint = FIELD_HINTS.get(field, "")
        message = exc.message if isinstance(exc, FieldError) or not hint else f"{hint}: {exc.message}"
        status = 422 if isinstance(exc, NotFound) else exc.status  # e.g. no such joint case
        return await _refused(request, session, principal, settings, incident_id, values, status,
                              errors={field: message}, error="未保存 Not saved", **page)  # fmt: skip
    message = f"未保存 Not saved: {exc.message}"
    return await _refused(request, session, principal, settings, incident_id, values, exc.status,
                          error=message, **page)  # fmt: skip


def _current_version(session, principal, settings, incident_id: int) -> int | None:
    if not 1 <= incident_id <= MAX_ID:  # PostgreSQL refuses to compare an integer beyond its range
        return None
    try:
        return get_incident(session, principal, incident_id, settings.incidents).version
    except DomainError:
        return None


@router.post("/incidents/{incident_id:int}/transition", response_class=HTMLResponse)
async def incident_transition(
    request: Request, incident_id: int, session: SessionDep, settings: SettingsDep, principal: PublicForm
):
    """Accept, start, resolve (with photos), close, reject, mark duplicate or reopen."""

    async def perform(values, version, form):
        action = values["action"]
        if action not in TRANSITIONS:
            raise InvalidRequest(f"未知操作 Unknown action {action[:40]!r}")
        note = values["note"] or None
        if action in ("reject", "reopen") and not note:
            raise FieldError("note", "请说明理由 Say why: a reason is required")
        level = values["level"] or None
        if level is not None and level not in LEVELS:
            raise FieldError("level", f"未知处理层级 Unknown handling level {level[:40]!r}")
        duplicate_of = None
        if action == "duplicate":
            if not values["duplicate_of"]:
                raise FieldError(
                    "duplicate_of", "请填写重复的事件编号 Give the number of the incident this repeats"
                )
            duplicate_of = _number(
                "duplicate_of", values["duplicate_of"].lstrip("#"), "事件编号 The incident number"
            )
        photos = await _photos(form, settings) if action == "resolve" else []

        def act():
            if action == "resolve":
                _, written = resolve_with_photos(
                    session, principal, incident_id, settings.incidents, version=version, note=note,
                    photos=photos, photo_dir=settings.photo_dir(),
                )  # fmt: skip
                return written
            transition(
                session, principal, incident_id, action, settings.incidents, version=version, note=note,
                duplicate_of=duplicate_of, level=level if action in ("accept", "start") else None,
            )  # fmt: skip
            return []

        return act

    return await _submit(request, session, settings, principal, incident_id, lambda v: v["action"], perform)


@router.post("/incidents/{incident_id:int}/referral", response_class=HTMLResponse)
async def incident_referral(
    request: Request, incident_id: int, session: SessionDep, settings: SettingsDep, principal: PublicForm
):
    """Refer the incident to the other side."""

    async def perform(values, version, form):
        if not values["to_side"]:
            raise FieldError("note", "请选择移交对象 Choose the side to refer to")

        def act():
            refer(
                session, principal, incident_id, values["to_side"], settings.incidents, version=version,
                note=values["note"] or None,
            )  # fmt: skip
            return []

        return act

    return await _submit(request, session, settings, principal, incident_id, lambda v: "refer", perform)


@router.post("/incidents/{incident_id:int}/joint", response_class=HTMLResponse)
async def incident_joint(
    request: Request, incident_id: int, session: SessionDep, settings: SettingsDep, principal: PublicForm
):
    """Bring the incident into an open joint case."""

    async def perform(values, version, form):
        if not values["case_id"]:
            raise FieldError("case_id", "请选择联合案件 Choose a joint case")
        case_id = _number("case_id", values["case_id"].lstrip("#"), "案件编号 The case number")

        def act():
            add_incident(session, principal, case_id, incident_id, settings.incidents, version=version)
            return []

        return act

    return await _submit(request, session, settings, principal, incident_id, lambda v: "joint", perform)
