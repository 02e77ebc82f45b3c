"""Joint cases: incidents both sides work together under the five-joint mechanism (五联).

A joint case gathers incidents, has participants from both sides and a log of actions, each typed
by one of the five mechanisms. Participants are station managers, enforcement officers or admins,
and each side has at least one of them (a patrol member reports; they do not work cases). Managers
and officers of either side see every joint case and its incidents (that is the point of a joint
case); participants and admins write to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from patrol import audit
from patrol.accounts import Principal
from patrol.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from patrol.incidents import WORKER_ROLES, _check_version, _event, can_work, get_incident
from patrol.models import (
    Grid,
    Incident,
    JointCase,
    JointCaseAction,
    JointCaseParticipant,
    Role,
    Side,
    User,
    UserRole,
    iso_utc,
)
from patrol.settings import IncidentSettings

MECHANISMS = {
    "prevention": ("联合防控", "Joint prevention and control"),
    "supervision": ("联合监管", "Joint supervision"),
    "monitoring": ("联合监测", "Joint monitoring"),
    "enforcement": ("联合执法", "Joint law enforcement"),
    "emergency": ("联合应急", "Joint emergency response"),
}


def can_see_cases(principal: Principal) -> bool:
    """Station managers, enforcement officers (of either side) and admins see joint cases."""
    return principal.is_admin or principal.has(*WORKER_ROLES)


def can_change(principal: Principal, participants: list[str]) -> bool:
    """Whether ``principal`` may write to a case with these participants (usernames)."""
    return principal.is_admin or principal.username in participants


def _may_see_cases(principal: Principal, *, listing: bool = False) -> None:
    """One case of someone who may not see cases is "not found" (its existence is not told); the
    list is refused as such (403)."""
    if not can_see_cases(principal):
        error = PermissionDenied if listing else NotFound
        raise error("joint cases are for station managers and enforcement officers")


def _get_case(session: Session, principal: Principal, case_id: int) -> JointCase:
    _may_see_cases(principal)
    case = session.get(JointCase, case_id)
    if case is None:
        raise NotFound(f"no joint case {case_id}")
    return case


def _participants(session: Session, case_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(JointCaseParticipant, JointCaseParticipant.user_id == User.id)
            .where(JointCaseParticipant.case_id == case_id)
            .order_by(User.username)
        )
    )


def _check_participant(session: Session, principal: Principal, case: JointCase) -> None:
    if principal.is_admin:
        return
    if principal.user_id not in {u.id for u in _participants(session, case.id)}:
        raise PermissionDenied(f"only participants of joint case {case.id} (or an admin) may change it")


def participant_case(session: Session, principal: Principal, case_id: int, *, to: str) -> JointCase:
    """The case, for a participant (or admin) ``to`` do something only they may do (e.g. take
    its evidence package away): NotFound for those who may not see cases, as for any case;
    PermissionDenied, saying what was refused, for managers and officers not taking part."""
    case = _get_case(session, principal, case_id)
    if not can_change(principal, [u.username for u in _participants(session, case.id)]):
        raise PermissionDenied(f"only participants of joint case {case.id} (or an admin) may {to}")
    return case


def check_may_change(session: Session, principal: Principal, case_id: int) -> None:
    """NotFound unless ``principal`` may see the case, PermissionDenied unless they may write to
    it (a participant or admin): what every change checks first, for a caller that reads its
    input only after (a page with a typo in a field is still refused as not allowed)."""
    _check_participant(session, principal, _get_case(session, principal, case_id))


def open_joint_case(
    session: Session,
    principal: Principal,
    *,
    title: str,
    incident_ids: list[int],
    participants: list[str],
    settings: IncidentSettings,
    now: datetime | None = None,
) -> JointCase:
    """Raise incidents to a joint case worked by people of both sides. The caller commits."""
    now = now or datetime.now(UTC)
    if not (principal.is_admin or principal.has(*WORKER_ROLES)):
        raise PermissionDenied("only station managers, enforcement officers and admins open joint cases")
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise InvalidRequest("a joint case needs a title of 1–200 characters", field="title")
    if not incident_ids:
        raise InvalidRequest("a joint case needs at least one incident", field="incidents")
    incidents = [
        _raisable(session, principal, incident_id, settings, field="incidents")
        for incident_id in dict.fromkeys(incident_ids)
    ]
    users = _check_participants(session, principal, participants)
    case = JointCase(title=title, status="open", opened_by=principal.user_id, opened_at=now)
    session.add(case)
    session.flush()
    for user in users:
        session.add(JointCaseParticipant(case_id=case.id, user_id=user.id))
    for incident in incidents:
        incident.joint_case_id = case.id
        incident.updated_at = now
        _event(
            session,
            incident,
            principal,
            "joint",
            incident.status,
            incident.status,
            None,
            {"case": case.id},
            now,
        )
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("an incident changed while the joint case was opened: try again") from None
    opened = {
        **audit.snapshot(case, ("title", "status")),
        "participants": sorted(u.username for u in users),
        "incidents": sorted(i.id for i in incidents),
    }
    audit.record(session, principal, "joint_case.open", "joint_case", case.id, audit.changes({}, opened))
    return case


def _raisable(
    session: Session, principal: Principal, incident_id: int, settings: IncidentSettings, *, field: str
) -> Incident:
    """An incident ``principal`` may bring into a joint case; refusals name ``field``."""
    try:
        incident = get_incident(session, principal, incident_id, settings)
    except NotFound as exc:
        exc.field = field
        raise
    if not can_work(principal, incident):
        raise PermissionDenied(
            f"you may not raise incident {incident_id}: it is not yours to work", field=field
        )
    if incident.joint_case_id is not None:
        raise Conflict(
            f"incident {incident_id} is already in joint case {incident.joint_case_id}", field=field
        )
    return incident


# Who may take part in a joint case, and so count for their side.
PARTICIPANT_ROLES = (Role.STATION_MANAGER, Role.ENFORCEMENT_OFFICER, Role.ADMIN)


def _check_participants(session: Session, principal: Principal, participants: list[str]) -> list[User]:
    """The participants named (and the opener), each an active manager, officer or admin, with
    both sides among them; InvalidRequest naming whoever does not qualify."""
    names = list(dict.fromkeys([*participants, principal.username] if principal.user_id else participants))
    users = session.scalars(select(User).where(User.username.in_(names), User.is_active)).all()
    missing = sorted(set(names) - {u.username for u in users})
    if missing:
        raise InvalidRequest(f"unknown participant(s): {', '.join(missing)}", field="participants")
    allowed = {r.value for r in PARTICIPANT_ROLES}
    not_workers = sorted(u.username for u in users if not allowed & {r.role for r in u.roles})
    if not_workers:
        raise InvalidRequest(
            f"not station managers, enforcement officers or admins: {', '.join(not_workers)}; "
            "patrol members report incidents but do not take part in joint cases",
            field="participants",
        )
    sides = {u.side for u in users}
    if len(sides) < 2:
        names = [side.name_en for side in session.scalars(select(Side).where(Side.code.in_(sides)))]
        raise InvalidRequest(
            "a joint case needs participants from both sides, Lianjiang and Hepu, each a station "
            "manager, enforcement officer or admin; "
            f"those named are all of {', '.join(sorted(names)) or 'nobody'}",
            field="participants",
        )
    return list(users)


def add_incident(
    session: Session,
    principal: Principal,
    case_id: int,
    incident_id: int,
    settings: IncidentSettings,
    *,
    version: int | None = None,
    now=None,
) -> None:
    """Bring another incident into an open joint case (a participant who may work it, or admin).
    ``version``: the incident's version the caller read (a page form sends it; a stale one is
    refused with Conflict); None: not checked (the API names the incident only)."""
    now = now or datetime.now(UTC)
    # The incident first: whether this user may raise it at all decides before which case.
    incident = _raisable(session, principal, incident_id, settings, field="incident")
    if version is not None:
        _check_version(incident, version)
    case = _get_case(session, principal, case_id)
    _check_participant(session, principal, case)
    if case.status != "open":
        raise Conflict(f"joint case {case_id} is closed")
    before = _case_incident_ids(session, case.id)
    incident.joint_case_id = case.id
    incident.updated_at = now
    _event(
        session, incident, principal, "joint", incident.status, incident.status, None, {"case": case.id}, now
    )
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(f"incident {incident_id} changed meanwhile: try again") from None
    changes = audit.changes({"incidents": before}, {"incidents": _case_incident_ids(session, case.id)})
    audit.record(session, principal, "joint_case.add_incident", "joint_case", case.id, changes)


def _case_incident_ids(session: Session, case_id: int) -> list[int]:
    return list(
        session.scalars(select(Incident.id).where(Incident.joint_case_id == case_id).order_by(Incident.id))
    )


def add_action(
    session: Session, principal: Principal, case_id: int, *, mechanism: str, note: str, now=None
) -> JointCaseAction:
    now = now or datetime.now(UTC)
    case = _get_case(session, principal, case_id)
    _check_participant(session, principal, case)
    if mechanism not in MECHANISMS:
        raise InvalidRequest(
            f"unknown mechanism {mechanism!r}: use one of {', '.join(MECHANISMS)}", field="mechanism"
        )
    note = (note or "").strip()
    if not note:
        raise InvalidRequest("say what was done: a note is required", field="note")
    if case.status != "open":
        raise Conflict(f"joint case {case_id} is closed")
    action = JointCaseAction(
        case_id=case.id, mechanism=mechanism, at=now, actor_id=principal.user_id, note=note
    )
    session.add(action)
    session.flush()
    logged = {"action_id": action.id, "mechanism": mechanism, "note": note}
    audit.record(session, principal, "joint_case.action", "joint_case", case.id, audit.changes({}, logged))
    return action


def close_joint_case(
    session: Session, principal: Principal, case_id: int, *, version: int | None, now=None
) -> JointCase:
    now = now or datetime.now(UTC)
    case = _get_case(session, principal, case_id)
    _check_participant(session, principal, case)
    if version is None:
        raise InvalidRequest("send the version of the joint case you read (optimistic concurrency)")
    if version != case.version:
        raise Conflict(
            f"joint case {case_id} was changed by someone else (version {case.version}): reload it"
        )
    if case.status != "open":
        raise Conflict(f"joint case {case_id} is already closed")
    fields = ("status", "closed_at", "version")
    before = audit.snapshot(case, fields)
    case.status = "closed"
    case.closed_at = now
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(f"joint case {case_id} was changed by someone else meanwhile: reload it") from None
    changes = audit.changes(before, audit.snapshot(case, fields))
    audit.record(session, principal, "joint_case.close", "joint_case", case.id, changes)
    return case


def joint_case_detail(session: Session, principal: Principal, case_id: int) -> dict[str, Any]:
    """One case: its participants (with their roles), incidents (with their grid), the action
    log in order, and whether ``principal`` may write to it (``can_change``)."""
    case = _get_case(session, principal, case_id)
    actions = session.execute(
        select(JointCaseAction, User.username, User.display_name)
        .join(User, User.id == JointCaseAction.actor_id)
        .where(JointCaseAction.case_id == case.id)
        .order_by(JointCaseAction.id)
    ).all()
    incidents = session.execute(
        select(Incident.id, Incident.status, Incident.side, Incident.category, Grid.code.label("grid"))
        .outerjoin(Grid, Grid.id == Incident.grid_id)
        .where(Incident.joint_case_id == case.id)
        .order_by(Incident.id)
    ).all()
    summary = _summary(case, _participants(session, case.id))
    return {
        **summary,
        "can_change": case.status == "open"
        and can_change(principal, [p["username"] for p in summary["participants"]]),
        "incidents": [
            {"id": i.id, "status": i.status, "side": i.side, "category": i.category, "grid": i.grid}
            for i in incidents
        ],
        "actions": [
            {
                "id": a.id,
                "at": iso_utc(a.at),
                "by": username,
                "by_name": display_name,
                "mechanism": a.mechanism,
                "mechanism_zh": MECHANISMS[a.mechanism][0],
                "note": a.note,
            }
            for a, username, display_name in actions
        ],
    }


def _person(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "side": user.side,
        "roles": sorted({r.role for r in user.roles}),
    }


def _summary(
    case: JointCase,
    participants: list[User],
    incident_count: int | None = None,
    last_action: dict[str, Any] | None = None,
) -> dict[str, Any]:
    summary = {
        "id": case.id,
        "title": case.title,
        "status": case.status,
        "opened_at": iso_utc(case.opened_at),
        "closed_at": iso_utc(case.closed_at),
        "version": case.version,
        "participants": [_person(u) for u in participants],
    }
    if incident_count is not None:
        summary |= {"incident_count": incident_count, "last_action": last_action}
    return summary


def list_joint_cases(
    session: Session, principal: Principal, *, status: str | None = None
) -> list[dict[str, Any]]:
    """The cases, newest first, each with its participants, number of incidents and last action."""
    _may_see_cases(principal, listing=True)
    if status not in (None, "open", "closed"):
        raise InvalidRequest("status is open or closed")
    query = select(JointCase).order_by(JointCase.opened_at.desc(), JointCase.id.desc())
    if status:
        query = query.where(JointCase.status == status)
    cases = list(session.scalars(query))
    ids = [c.id for c in cases]
    counts = dict(
        session.execute(
            select(Incident.joint_case_id, func.count(Incident.id))
            .where(Incident.joint_case_id.in_(ids))
            .group_by(Incident.joint_case_id)
        ).all()
    )
    newest = (
        select(func.max(JointCaseAction.id))
        .where(JointCaseAction.case_id.in_(ids))
        .group_by(JointCaseAction.case_id)
    )
    last = {
        a.case_id: {
            "at": iso_utc(a.at),
            "by": username,
            "by_name": display_name,
            "mechanism": a.mechanism,
            "mechanism_zh": MECHANISMS[a.mechanism][0],
            "note": a.note,
        }
        for a, username, display_name in session.execute(
            select(JointCaseAction, User.username, User.display_name)
            .join(User, User.id == JointCaseAction.actor_id)
            .where(JointCaseAction.id.in_(newest))
        )
    }
    return [_summary(c, _participants(session, c.id), counts.get(c.id, 0), last.get(c.id)) for c in cases]


def participant_candidates(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """Who may be named a participant of a new joint case: the active station managers,
    enforcement officers and admins of both sides, by side and name. For those who may open one."""
    if not can_see_cases(principal):
        raise PermissionDenied("only station managers, enforcement officers and admins open joint cases")
    users = session.scalars(
        select(User)
        .where(
            User.is_active,
            User.id.in_(
                select(UserRole.user_id).where(UserRole.role.in_([r.value for r in PARTICIPANT_ROLES]))
            ),
        )
        .order_by(User.side, User.display_name, User.username)
    )
    return [_person(u) for u in users]
