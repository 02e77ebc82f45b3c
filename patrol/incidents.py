"""Incidents: report at a point, place in grid and side, follow to closure within time limits.

An incident is placed when it is saved: the grid holding the point, else the nearest grid within
``near_grid_m`` (flagged ``near``), else none; the side comes from the grid, or from which side
of the provincial border the point lies. Its due times are fixed then (accept within 4 hours,
resolve within 2/3/4 days by handling level), so "overdue" is a plain comparison in SQL.

Who sees what: a patrol member sees the incidents they reported; station managers and
enforcement officers see their side's incidents, incidents referred to their side, incidents in
joint cases and incidents within ``border_distance_m`` of the border — nothing else of the other
side; admins see everything. An incident one may not see answers as if it did not exist.

Who works what: managers and officers of the incident's side (or of the side it was referred to,
or of either side once it is in a joint case); admins. Every change carries the version the
caller last read; a stale one is refused (409) and nothing is lost.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geodata.assign import NO_GRID
from geodata.border import EAST, side_of_border
from geodata.reference import BORDER_CODE
from geodata.region import REGION_BBOX, in_region
from patrol import audit
from patrol.accounts import Principal
from patrol.db import geometry_from_wkb
from patrol.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from patrol.grids import metric_grid_index, project
from patrol.models import (
    Boundary,
    Grid,
    Incident,
    IncidentCategory,
    IncidentEvent,
    IncidentPhoto,
    Patrol,
    Role,
    Side,
    User,
    iso_utc,
)
from patrol.patrols import can_see as can_see_patrol
from patrol.settings import IncidentSettings

SEVERITIES = ("low", "medium", "high", "critical")
LEVELS = ("village", "town", "county")
STATUSES = ("reported", "accepted", "in_progress", "resolved", "closed", "rejected", "duplicate")
OPEN = ("reported", "accepted", "in_progress")  # still to be resolved
STATUS_NAMES = {
    "reported": ("已报告", "Reported"),
    "accepted": ("已受理", "Accepted"),
    "in_progress": ("处理中", "In progress"),
    "resolved": ("已办结", "Resolved"),
    "closed": ("已关闭", "Closed"),
    "rejected": ("不予受理", "Rejected"),
    "duplicate": ("重复", "Duplicate"),
}
NOT_ACTIONABLE = ("rejected", "duplicate")  # answered, but nothing to resolve

# action: (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "accept": (frozenset({"reported"}), "accepted"),
    "start": (frozenset({"accepted"}), "in_progress"),
    "resolve": (frozenset({"accepted", "in_progress"}), "resolved"),
    "close": (frozenset({"resolved"}), "closed"),
    "reject": (frozenset({"reported", "accepted"}), "rejected"),
    "duplicate": (frozenset({"reported", "accepted"}), "duplicate"),
    "reopen": (frozenset({"resolved", "closed", "rejected", "duplicate"}), "in_progress"),
}
# Reopening what was closed, rejected or marked duplicate undoes a verified decision: admin only.
ADMIN_REOPEN_FROM = frozenset({"closed", "rejected", "duplicate"})
WORKER_ROLES = (Role.STATION_MANAGER, Role.ENFORCEMENT_OFFICER)
CHINA = ZoneInfo("Asia/Shanghai")


def _now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """An aware UTC datetime. SQLite hands back naive UTC datetimes, PostgreSQL aware ones; and
    SQLite stores a datetime's wall time without its zone, so everything written must be UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- placement --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    grid_id: int | None
    grid_code: str | None
    grid_match: str  # inside, near, none
    grid_distance_m: float | None
    side: str
    town: str | None
    border_distance_m: float


_border_cache: dict[str, Any] = {}


def _border_metric(session: Session):
    """The provincial border line, lon/lat and metric (cached by its WKB)."""
    wkb = session.scalar(select(func.ST_AsBinary(Boundary.geom)).where(Boundary.code == BORDER_CODE))
    if wkb is None:
        raise InvalidRequest("the provincial border is not loaded; run `mangrove db upgrade`")
    key = bytes(wkb)
    if _border_cache.get("key") != key:
        line = shapely.from_wkb(key)
        _border_cache.update(key=key, line=line, metric=shapely.transform(line, project, interleaved=False))
    return _border_cache["line"], _border_cache["metric"]


def check_position(lon: float, lat: float) -> None:
    """Refuse positions that cannot be right here, naming the problem."""
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        raise InvalidRequest(f"the position {lon!r}, {lat!r} is not a pair of numbers") from None
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise InvalidRequest(f"the position {lon}, {lat} is not a finite number")
    if not in_region(np.array([lon]), np.array([lat]))[0] and in_region(np.array([lat]), np.array([lon]))[0]:
        raise InvalidRequest(f"lon {lon}, lat {lat} looks swapped: longitude comes first")
    if abs(lat) > 90 or abs(lon) > 180:
        raise InvalidRequest(f"the position lon {lon}, lat {lat} is out of range (lat ±90, lon ±180)")
    if not in_region(np.array([lon]), np.array([lat]))[0]:
        minx, miny, maxx, maxy = REGION_BBOX
        raise InvalidRequest(
            f"the position lon {lon}, lat {lat} is far outside Lianjiang and Hepu "
            f"(the service covers lon {minx}–{maxx}, lat {miny}–{maxy})"
        )


def place(session: Session, lon: float, lat: float, settings: IncidentSettings) -> Placement:
    """Grid (inside, or nearest within ``near_grid_m``), side and distance to the border."""
    check_position(lon, lat)
    index, grid_ids = metric_grid_index(session)
    x, y = project(np.array([lon], float), np.array([lat], float))
    inside = index.assign_index(x, y)[0]
    match, distance = "none", None
    found = inside
    if inside != NO_GRID:
        match, distance = "inside", 0.0
    else:
        near, dist = index.nearest(x, y, settings.near_grid_m)
        if near[0] != NO_GRID:
            found, match, distance = near[0], "near", round(float(dist[0]), 1)
    line, metric_line = _border_metric(session)
    border_m = round(float(shapely.distance(metric_line, shapely.Point(x[0], y[0]))), 1)
    # Inside a grid, the grid's side; anywhere else the side of the border the point is on, even
    # when the nearest grid is across it.
    east = side_of_border(np.array([lon]), np.array([lat]), line)[0] == EAST
    by_location = "GD-LJ" if east else "GX-HP"
    if found != NO_GRID:
        grid = session.get(Grid, int(grid_ids[found]))
        side = grid.side if match == "inside" else by_location
        return Placement(grid.id, grid.code, match, distance, side, grid.town, border_m)
    return Placement(None, None, "none", None, by_location, None, border_m)


# --- who sees and works what ------------------------------------------------------------------


def visible_clause(principal: Principal, settings: IncidentSettings):
    """A WHERE clause for the incidents ``principal`` may see (None: all)."""
    if principal.is_admin:
        return None
    parts = [Incident.reporter_id == principal.user_id]
    if principal.has(*WORKER_ROLES):
        parts += [
            Incident.side == principal.side,
            Incident.referred_to == principal.side,
            Incident.joint_case_id.is_not(None),
            Incident.border_distance_m <= settings.border_distance_m,
        ]
    return or_(*parts)


def can_see(principal: Principal, incident: Incident, settings: IncidentSettings) -> bool:
    if principal.is_admin or incident.reporter_id == principal.user_id:
        return True
    if not principal.has(*WORKER_ROLES):
        return False
    return (
        principal.side in (incident.side, incident.referred_to)
        or incident.joint_case_id is not None
        or incident.border_distance_m <= settings.border_distance_m
    )


def can_work(principal: Principal, incident: Incident) -> bool:
    if principal.is_admin:
        return True
    if not principal.has(*WORKER_ROLES):
        return False
    return principal.side in (incident.side, incident.referred_to) or incident.joint_case_id is not None


def can_see_photos(principal: Principal, incident: Incident) -> bool:
    """Photos are read by the reporter, those who may work the incident (managers and officers
    of its side, of the side it was referred to, or of a joint case it is in) and admins. Seeing
    an incident only because it lies near the border shows the incident, not its photos: they
    may show the people and boats of the other side."""
    return incident.reporter_id == principal.user_id or can_work(principal, incident)


def get_incident(
    session: Session, principal: Principal, incident_id: int, settings: IncidentSettings
) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None or not can_see(principal, incident, settings):
        raise NotFound(f"no incident {incident_id}")
    return incident


# --- reporting --------------------------------------------------------------------------------


@dataclass
class IncidentReport:
    category: str
    lon: float
    lat: float
    description: str = ""
    severity: str = "medium"
    level: str = "village"
    observed_at: datetime | None = None  # default: now
    patrol_id: int | None = None


def _check_choice(name: str, value: str, choices) -> str:
    if value not in choices:
        raise InvalidRequest(f"unknown {name} {value!r}: use one of {', '.join(choices)}")
    return value


def _category(session: Session, code: str) -> IncidentCategory:
    category = session.get(IncidentCategory, code)
    if category is None or not category.active:
        known = session.scalars(
            select(IncidentCategory.code).where(IncidentCategory.active).order_by(IncidentCategory.sort_order)
        ).all()
        raise InvalidRequest(f"unknown incident category {code!r}: use one of {', '.join(known)}")
    return category


# What an audit entry of a new incident names (the description stays in the incident itself).
REPORT_AUDIT_FIELDS = (
    "category", "severity", "level", "status", "observed_at", "lon", "lat", "grid_match", "side",
    "town", "patrol_id", "accept_due", "resolve_due",
)  # fmt: skip
# What a transition may change.
TRANSITION_AUDIT_FIELDS = (
    "status", "level", "duplicate_of", "resolve_due", "responded_at", "accepted_at", "resolved_at",
    "closed_at", "version",
)  # fmt: skip


def _report_changes(session: Session, incident: Incident) -> dict[str, list]:
    """The key fields of a new incident, as ``[None, value]``."""
    grid = session.get(Grid, incident.grid_id) if incident.grid_id is not None else None
    fields = {**audit.snapshot(incident, REPORT_AUDIT_FIELDS), "grid": grid.code if grid else None}
    return audit.changes({}, fields)


def report_incident(
    session: Session,
    principal: Principal,
    report: IncidentReport,
    settings: IncidentSettings,
    *,
    now: datetime | None = None,
    audited: bool = True,
) -> Incident:
    """Save a new incident with its placement, due times and first history entry, and its audit
    entry (``audited=False``: the caller records one entry for a larger operation, see
    :func:`report_with_photo`). The caller commits."""
    now = aware(now) or _now()
    if not principal.roles:
        raise PermissionDenied("only patrol members, station managers, officers and admins report incidents")
    _category(session, report.category)
    _check_choice("severity", report.severity, SEVERITIES)
    _check_choice("handling level", report.level, LEVELS)
    observed = report.observed_at
    if observed is not None and observed.tzinfo is None:
        observed = observed.replace(tzinfo=CHINA)  # the users' clock, as in every date filter
    try:
        observed = aware(observed) or now
    except OverflowError:
        raise InvalidRequest(f"observed_at {report.observed_at} is out of range") from None
    if observed.year < 2000:
        raise InvalidRequest(f"observed_at {observed.isoformat()} is implausibly far in the past")
    if observed > now + timedelta(minutes=10):
        raise InvalidRequest(f"observed_at {observed.isoformat()} is in the future")
    description = (report.description or "").strip()
    if len(description) > 5000:
        raise InvalidRequest("the description is longer than 5,000 characters")
    if report.patrol_id is not None:
        patrol = session.get(Patrol, report.patrol_id)
        if patrol is None or not can_see_patrol(session, principal, patrol):
            raise InvalidRequest(f"unknown patrol {report.patrol_id}")
    where = place(session, report.lon, report.lat, settings)
    incident = Incident(
        category=report.category,
        severity=report.severity,
        level=report.level,
        description=description,
        observed_at=observed,
        reported_at=now,
        reporter_id=principal.user_id,
        patrol_id=report.patrol_id,
        lon=float(report.lon),
        lat=float(report.lat),
        geom=geometry_from_wkb(shapely.Point(float(report.lon), float(report.lat))),
        grid_id=where.grid_id,
        grid_match=where.grid_match,
        grid_distance_m=where.grid_distance_m,
        side=where.side,
        town=where.town,
        border_distance_m=where.border_distance_m,
        status="reported",
        accept_due=now + timedelta(hours=settings.accept_within_hours),
        resolve_due=now + timedelta(days=settings.resolve_within(report.level)),
        updated_at=now,
    )
    session.add(incident)
    session.flush()
    details = {"grid": where.grid_code, "grid_match": where.grid_match, "side": where.side}
    _event(session, incident, principal, "reported", None, "reported", None, details, now)
    if audited:
        changes = _report_changes(session, incident)
        audit.record(session, principal, "incident.report", "incident", incident.id, changes)
    return incident


def report_with_photo(
    session: Session,
    principal: Principal,
    report: IncidentReport,
    settings: IncidentSettings,
    *,
    photo: bytes | None,
    photo_dir: Path,
    now: datetime | None = None,
) -> tuple[Incident, Path | None]:
    """One report form: the incident and (optionally) its first photo, in the caller's
    transaction, with ONE audit entry — ``incident.report`` naming the photo too (a form
    submission is one operation). Returns (incident, photo file written or None); the caller
    commits, or rolls back and discards the file."""
    from patrol.photos import add_photo, discard  # photos build on incidents

    if photo is None:
        return report_incident(session, principal, report, settings, now=now), None
    incident = report_incident(session, principal, report, settings, now=now, audited=False)
    row, written = add_photo(session, principal, incident.id, photo, settings, photo_dir, audited=False)
    try:
        changes = _report_changes(session, incident)
        changes["photos"] = [None, [audit.snapshot(row, ("id", "sha256", "size_bytes", "content_type"))]]
        audit.record(session, principal, "incident.report", "incident", incident.id, changes)
    except BaseException:
        discard(written)
        raise
    return incident, written


def _event(session, incident, principal, action, before, after, note, details, now) -> None:
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            at=now,
            actor_id=principal.user_id,
            action=action,
            from_status=before,
            to_status=after,
            note=note,
            details=details,
        )
    )


# --- lifecycle --------------------------------------------------------------------------------


def _check_version(incident: Incident, version: int | None) -> None:
    if version is None:
        raise InvalidRequest("send the version of the incident you read (optimistic concurrency)")
    if version != incident.version:
        raise Conflict(
            f"incident {incident.id} was changed by someone else (it is at version {incident.version}, "
            f"you sent {version}): reload it and try again"
        )


def _flush(session: Session, incident_id: int) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(f"incident {incident_id} was changed by someone else meanwhile: reload it") from None


def transition(
    session: Session,
    principal: Principal,
    incident_id: int,
    action: str,
    settings: IncidentSettings,
    *,
    version: int | None,
    note: str | None = None,
    duplicate_of: int | None = None,
    level: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Move an incident along its lifecycle. The caller commits."""
    incident, changes = _transition(
        session, principal, incident_id, action, settings,
        version=version, note=note, duplicate_of=duplicate_of, level=level, now=now,
    )  # fmt: skip
    audit.record(session, principal, "incident.transition", "incident", incident.id, changes)
    return incident


def _transition(
    session: Session,
    principal: Principal,
    incident_id: int,
    action: str,
    settings: IncidentSettings,
    *,
    version: int | None,
    note: str | None,
    duplicate_of: int | None,
    level: str | None,
    now: datetime | None,
) -> tuple[Incident, dict[str, list]]:
    """:func:`transition` without its audit entry: the incident and the changes to record."""
    now = aware(now) or _now()
    incident = get_incident(session, principal, incident_id, settings)
    if action not in TRANSITIONS:
        raise InvalidRequest(f"unknown action {action!r}: use one of {', '.join(TRANSITIONS)}")
    _check_version(incident, version)
    if not can_work(principal, incident):
        raise PermissionDenied(
            f"you may see incident {incident.id} but not work it: that is for managers and officers of "
            f"{incident.side}" + (f" or {incident.referred_to}" if incident.referred_to else "")
        )
    sources, target = TRANSITIONS[action]
    before = incident.status
    audit_before = audit.snapshot(incident, TRANSITION_AUDIT_FIELDS)
    if before not in sources:
        hint = {
            "resolve": "accept it first",
            "close": "it must be resolved first",
            "start": "accept it first",
        }
        raise Conflict(
            f"cannot {action} incident {incident.id}: it is {before}"
            + (f"; {hint[action]}" if action in hint and before == "reported" else "")
        )
    if action == "reopen" and before in ADMIN_REOPEN_FROM and not principal.is_admin:
        raise PermissionDenied(f"only an admin may reopen an incident that is {before}")
    note = (note or "").strip() or None
    if action in ("reject", "reopen") and not note:
        raise InvalidRequest(f"say why: a note is required to {action} an incident")
    if action == "close" and not principal.is_admin:
        if last_resolver(session, incident.id) == principal.user_id:
            raise PermissionDenied(
                "closing verifies the resolution: someone other than the resolver must do it"
            )
    details: dict[str, Any] = {}
    if action == "duplicate":
        if duplicate_of is None:
            raise InvalidRequest("say which incident this duplicates (duplicate_of)")
        if duplicate_of == incident.id:
            raise InvalidRequest("an incident cannot duplicate itself")
        original = session.get(Incident, duplicate_of)
        if original is None or not can_see(principal, original, settings):
            raise InvalidRequest(f"unknown incident {duplicate_of} (duplicate_of)")
        incident.duplicate_of = duplicate_of
        details["duplicate_of"] = duplicate_of
    if level is not None:
        if action not in ("accept", "start"):
            raise InvalidRequest("the handling level is set when accepting or starting an incident")
        _check_choice("handling level", level, LEVELS)
        if level != incident.level:
            details["level"] = [incident.level, level]
            incident.level = level
            incident.resolve_due = aware(incident.reported_at) + timedelta(
                days=settings.resolve_within(level)
            )

    incident.status = target
    if action in ("accept", "reject", "duplicate") and incident.responded_at is None:
        incident.responded_at = now
    if action == "accept":
        incident.accepted_at = now
    elif action == "resolve":
        incident.resolved_at = now
    elif action == "close":
        incident.closed_at = now
    elif action == "reopen":
        incident.resolved_at = None
        incident.closed_at = None
        incident.duplicate_of = None
    incident.updated_at = now
    _event(session, incident, principal, action, before, target, note, details or None, now)
    _flush(session, incident.id)
    changes = audit.changes(audit_before, audit.snapshot(incident, TRANSITION_AUDIT_FIELDS))
    if note:
        changes["note"] = [None, note]
    return incident, changes


def resolve_with_photos(
    session: Session,
    principal: Principal,
    incident_id: int,
    settings: IncidentSettings,
    *,
    version: int | None,
    note: str | None,
    photos: list[bytes],
    photo_dir: Path,
    now: datetime | None = None,
) -> tuple[Incident, list[Path]]:
    """One resolve form: the transition and its evidence photos in the caller's transaction, with
    ONE audit entry (``incident.transition`` naming the photos). Returns the incident and the files
    written; the caller commits, or rolls back and discards them. A photo that is refused is
    reported as ``PhotoRejected`` naming which one (1-based), and every file written is removed."""
    from patrol.photos import PhotoRejected, add_photo, discard  # photos build on incidents

    incident, changes = _transition(
        session, principal, incident_id, "resolve", settings,
        version=version, note=note, duplicate_of=None, level=None, now=now,
    )  # fmt: skip
    written: list[Path] = []
    rows = []
    try:
        for number, data in enumerate(photos, start=1):
            try:
                row, path = add_photo(
                    session, principal, incident.id, data, settings, photo_dir, audited=False
                )
            except (InvalidRequest, Conflict) as exc:
                prefix = f"photo {number}: " if len(photos) > 1 else ""
                raise PhotoRejected(prefix + exc.message) from None
            written.append(path)
            rows.append(row)
        if rows:
            changes["photos"] = [
                None, [audit.snapshot(r, ("id", "sha256", "size_bytes", "content_type")) for r in rows]
            ]  # fmt: skip
        audit.record(session, principal, "incident.transition", "incident", incident.id, changes)
    except BaseException:
        for path in written:
            discard(path)
        raise
    return incident, written


def last_resolver(session: Session, incident_id: int) -> int | None:
    """The user who last resolved the incident (None: never resolved)."""
    return session.scalar(
        select(IncidentEvent.actor_id)
        .where(IncidentEvent.incident_id == incident_id, IncidentEvent.action == "resolve")
        .order_by(IncidentEvent.id.desc())
        .limit(1)
    )


# What a page may offer, in the order it offers them.
ACTIONS = ("accept", "start", "resolve", "close", "reject", "duplicate", "refer", "joint", "reopen")


def available_actions(session: Session, principal: Principal, incident: Incident) -> list[str]:
    """The actions ``principal`` may take on ``incident`` in its current state — exactly those
    :func:`transition`, :func:`refer` and ``patrol.joint.add_incident`` would accept (bar a
    stale version or bad input). Nothing for those who may not work it."""
    if not can_work(principal, incident):
        return []
    offered = []
    for action in ACTIONS:
        if action in TRANSITIONS:
            sources, _ = TRANSITIONS[action]
            if incident.status not in sources:
                continue
            if action == "reopen" and incident.status in ADMIN_REOPEN_FROM and not principal.is_admin:
                continue
            if (
                action == "close"
                and not principal.is_admin
                and last_resolver(session, incident.id) == principal.user_id
            ):
                continue
        elif action == "refer":
            if incident.status not in OPEN or incident.referred_to not in (None, incident.side):
                continue
        elif action == "joint":
            if incident.joint_case_id is not None or not (principal.is_admin or principal.has(*WORKER_ROLES)):
                continue
        offered.append(action)
    return offered


# The fields a change on the desk can make different, for "what changed" after a stale version.
TRACKED_FIELDS = ("status", "level", "referred_to", "joint_case_id", "duplicate_of", "patrol_id")


def changed_since(detail: dict[str, Any], version: int) -> dict[str, Any]:
    """What happened to an incident after the ``version`` someone read, from its detail
    (:func:`incident_detail`): the history entries made since (every entry after the report is one
    version) and the tracked fields whose value now differs, as ``{field: [then, now]}``."""
    history = detail["history"]
    version = max(1, min(int(version), len(history)))
    # Replay the history to the state at ``version``; the start is what the entries imply.
    levels = [e["details"]["level"] for e in history if (e.get("details") or {}).get("level")]
    linked = any(e["action"] == "link_patrol" for e in history)
    state = {
        "status": "reported",
        "level": levels[0][0] if levels else detail["level"],
        "referred_to": None,
        "joint_case_id": None,
        "duplicate_of": None,
        "patrol_id": None if linked else detail["patrol_id"],
    }
    for event in history[1:version]:
        details = event.get("details") or {}
        if event.get("to"):
            state["status"] = event["to"]
        if details.get("level"):
            state["level"] = details["level"][1]
        if event["action"] == "refer":
            state["referred_to"] = details.get("to")
        elif event["action"] == "joint":
            state["joint_case_id"] = details.get("case")
        elif event["action"] == "duplicate":
            state["duplicate_of"] = details.get("duplicate_of")
        elif event["action"] == "reopen":
            state["duplicate_of"] = None
        elif event["action"] == "link_patrol":
            state["patrol_id"] = details.get("patrol_id")
    fields = {name: [state[name], detail[name]] for name in TRACKED_FIELDS if state[name] != detail[name]}
    return {"version": version, "events": history[version:], "fields": fields}


def refer(
    session: Session,
    principal: Principal,
    incident_id: int,
    to_side: str,
    settings: IncidentSettings,
    *,
    version: int | None,
    note: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Refer an incident to the other side (e.g. pollution from across the border)."""
    now = aware(now) or _now()
    incident = get_incident(session, principal, incident_id, settings)
    _check_version(incident, version)
    if not can_work(principal, incident):
        raise PermissionDenied(f"only managers and officers working incident {incident.id} may refer it")
    if session.get(Side, to_side) is None:
        raise InvalidRequest(f"unknown side {to_side!r}")
    if to_side == incident.side:
        raise InvalidRequest(f"incident {incident.id} is already {to_side}'s")
    if incident.status not in OPEN:
        raise Conflict(f"incident {incident.id} is {incident.status}: only open incidents are referred")
    audit_before = audit.snapshot(incident, ("referred_to", "version"))
    incident.referred_to = to_side
    incident.updated_at = now
    _event(
        session, incident, principal, "refer", incident.status, incident.status, note, {"to": to_side}, now
    )
    _flush(session, incident.id)
    changes = audit.changes(audit_before, audit.snapshot(incident, ("referred_to", "version")))
    if note:
        changes["note"] = [None, note]
    audit.record(session, principal, "incident.refer", "incident", incident.id, changes)
    return incident


def link_patrol(
    session: Session,
    principal: Principal,
    incident_id: int,
    patrol_id: int,
    settings: IncidentSettings,
    *,
    now: datetime | None = None,
) -> Incident:
    """Name the patrol a report was found on, after the report: the field app sends a report at
    once (its time limit runs from then) while the patrol it was found on is still being recorded.
    Only the reporter, only once, and only a patrol they may see; naming the same patrol again is
    a no-op, so a retried request changes nothing."""
    now = aware(now) or _now()
    incident = get_incident(session, principal, incident_id, settings)
    if incident.reporter_id != principal.user_id:
        raise PermissionDenied(f"only the reporter of incident {incident.id} may name its patrol")
    patrol = session.get(Patrol, patrol_id)
    if patrol is None or not can_see_patrol(session, principal, patrol):
        raise InvalidRequest(f"unknown patrol {patrol_id}")
    if incident.patrol_id == patrol_id:
        return incident
    if incident.patrol_id is not None:
        raise Conflict(f"incident {incident.id} is already linked to patrol {incident.patrol_id}")
    audit_before = audit.snapshot(incident, ("patrol_id", "version"))
    incident.patrol_id = patrol_id
    incident.updated_at = now
    _event(
        session, incident, principal, "link_patrol", incident.status, incident.status, None,
        {"patrol_id": patrol_id}, now,
    )  # fmt: skip
    _flush(session, incident.id)
    changes = audit.changes(audit_before, audit.snapshot(incident, ("patrol_id", "version")))
    audit.record(session, principal, "incident.link_patrol", "incident", incident.id, changes)
    return incident


def overdue_clause(now: datetime):
    """Open incidents past a due time: not answered within the accept limit, or not resolved."""
    return or_(
        and_(Incident.status == "reported", Incident.accept_due < now),
        and_(Incident.status.in_(OPEN), Incident.resolve_due < now),
    )


def overdue_state(incident_like, now: datetime) -> str | None:
    """'accept' or 'resolve' when that deadline has passed on an open incident, else None."""
    status = incident_like.status
    if status == "reported" and aware(incident_like.accept_due) < now:
        return "accept"
    if status in OPEN and aware(incident_like.resolve_due) < now:
        return "resolve"
    return None


# --- queries ----------------------------------------------------------------------------------

SORTS = {
    "-observed_at": (Incident.observed_at, True),
    "observed_at": (Incident.observed_at, False),
    "-reported_at": (Incident.reported_at, True),
    "reported_at": (Incident.reported_at, False),
    "-id": (Incident.id, True),
    "id": (Incident.id, False),
}


@dataclass
class IncidentQuery:
    grids: tuple[str, ...] = ()
    towns: tuple[str, ...] = ()
    side: str | None = None
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    overdue: bool | None = None
    start: datetime | None = None  # observed at or after
    end: datetime | None = None  # observed before
    bbox: tuple[float, float, float, float] | None = None
    joint_case_id: int | None = None
    mine: bool = False
    limit: int = 100
    sort: str = "-observed_at"
    cursor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _filters(session: Session, principal: Principal, q: IncidentQuery, settings: IncidentSettings, now):
    """WHERE clauses for ``q``, validating every value first."""
    clauses = []
    visible = visible_clause(principal, settings)
    if visible is not None:
        clauses.append(visible)
    if q.grids:
        rows = session.execute(select(Grid.code, Grid.id).where(Grid.code.in_(q.grids))).all()
        missing = sorted(set(q.grids) - {r.code for r in rows})
        if missing:
            raise InvalidRequest(f"unknown grid(s): {', '.join(missing)}")
        clauses.append(Incident.grid_id.in_([r.id for r in rows]))
    if q.towns:
        clauses.append(Incident.town.in_(q.towns))
    if q.side:
        if session.get(Side, q.side) is None:
            raise InvalidRequest(f"unknown side {q.side!r}: use GD-LJ or GX-HP")
        clauses.append(Incident.side == q.side)
    if q.categories:
        known = set(session.scalars(select(IncidentCategory.code)))
        unknown = sorted(set(q.categories) - known)
        if unknown:
            raise InvalidRequest(
                f"unknown incident category {', '.join(unknown)}: use one of {', '.join(sorted(known))}"
            )
        clauses.append(Incident.category.in_(q.categories))
    if q.statuses:
        for status in q.statuses:
            _check_choice("status", status, STATUSES)
        clauses.append(Incident.status.in_(q.statuses))
    if q.overdue is not None:
        clauses.append(overdue_clause(now) if q.overdue else ~overdue_clause(now))
    if q.start:
        clauses.append(Incident.observed_at >= q.start)
    if q.end:
        clauses.append(Incident.observed_at < q.end)
    if q.start and q.end and q.end <= q.start:
        raise InvalidRequest("the time range is empty or reversed: its end must come after its start")
    if q.bbox:
        minx, miny, maxx, maxy = q.bbox
        clauses += [Incident.lon >= minx, Incident.lon <= maxx, Incident.lat >= miny, Incident.lat <= maxy]
    if q.joint_case_id is not None:
        clauses.append(Incident.joint_case_id == q.joint_case_id)
    if q.mine:
        clauses.append(Incident.reporter_id == principal.user_id)
    return clauses


LIST_COLUMNS = (
    Incident.id,
    Incident.category,
    Incident.severity,
    Incident.level,
    Incident.status,
    Incident.description,
    Incident.observed_at,
    Incident.reported_at,
    Incident.lon,
    Incident.lat,
    Incident.grid_match,
    Incident.grid_distance_m,
    Incident.side,
    Incident.town,
    Incident.border_distance_m,
    Incident.referred_to,
    Incident.joint_case_id,
    Incident.duplicate_of,
    Incident.patrol_id,
    Incident.accept_due,
    Incident.resolve_due,
    Incident.responded_at,
    Incident.resolved_at,
    Incident.closed_at,
    Incident.version,
)


def encode_cursor(sort: str, value, row_id: int) -> str:
    raw = json.dumps([sort, value.isoformat() if isinstance(value, datetime) else value, row_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if kind != sort or not isinstance(row_id, int):
            raise ValueError
        if sort.lstrip("-") != "id":
            value = aware(datetime.fromisoformat(value))
        return value, row_id
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
        raise InvalidRequest(
            "the cursor is not one this service gave for this sort order; start again"
        ) from None


def query_incidents(
    session: Session,
    principal: Principal,
    q: IncidentQuery,
    settings: IncidentSettings,
    *,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of incidents as dicts (newest observed first by default) and the cursor of the
    next page (None at the end). Keyset pagination on (sort key, id): stable while others report."""
    now = aware(now) or _now()
    if q.sort not in SORTS:
        raise InvalidRequest(f"unknown sort {q.sort!r}: use one of {', '.join(SORTS)}")
    if not 1 <= q.limit <= 10_000:
        raise InvalidRequest("limit must be between 1 and 10000")
    column, descending = SORTS[q.sort]
    clauses = _filters(session, principal, q, settings, now)
    if q.cursor:
        value, last_id = _decode_cursor(q.cursor, q.sort)
        if column is Incident.id:
            clauses.append(Incident.id < last_id if descending else Incident.id > last_id)
        elif descending:
            clauses.append(or_(column < value, and_(column == value, Incident.id < last_id)))
        else:
            clauses.append(or_(column > value, and_(column == value, Incident.id > last_id)))
    order = [column.desc(), Incident.id.desc()] if descending else [column.asc(), Incident.id.asc()]
    if column is Incident.id:
        order = order[:1]
    query = list_select().where(*clauses).order_by(*order).limit(q.limit + 1)
    # Plain columns: run on the session's connection, without the ORM's result machinery.
    rows = session.connection().execute(query).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    items = [incident_row(r, now) for r in rows]
    cursor = None
    if more:
        last = rows[-1]
        key = column.key
        cursor = encode_cursor(q.sort, aware(getattr(last, key)) if key != "id" else last.id, last.id)
    return items, cursor


def list_select():
    """SELECT the listing columns (LIST_COLUMNS, then the grid's code and the reporter's name) of
    incidents: the rows ``incident_row`` reads. Callers add WHERE, ORDER BY and may add columns."""
    return (
        select(*LIST_COLUMNS, Grid.code.label("grid"), User.username.label("reporter"))
        .outerjoin(Grid, Grid.id == Incident.grid_id)
        .join(User, User.id == Incident.reporter_id)
    )


def incident_row(r, now: datetime) -> dict[str, Any]:
    """The listing form of an incident (a row of ``list_select()``, perhaps with more columns after).
    Run for every listed row: the row is unpacked by position (named access on a Row costs more than
    the rest of the dict), which ``list_select`` keeps in step with these names."""
    (id_, category, severity, level, status, description, observed_at, reported_at, lon, lat, grid_match,
     grid_distance_m, side, town, border_distance_m, referred_to, joint_case_id, duplicate_of, patrol_id,
     accept_due, resolve_due, responded_at, resolved_at, closed_at, version, grid, reporter, *_) = r  # fmt: skip
    overdue = None
    if status in OPEN:
        if status == "reported" and aware(accept_due) < now:
            overdue = "accept"
        elif aware(resolve_due) < now:
            overdue = "resolve"
    return {
        "id": id_,
        "category": category,
        "severity": severity,
        "level": level,
        "status": status,
        "overdue": overdue,
        "description": description,
        "observed_at": iso_utc(observed_at),
        "reported_at": iso_utc(reported_at),
        "reporter": reporter,
        "lon": lon,
        "lat": lat,
        "grid": grid,
        "grid_match": grid_match,
        "grid_distance_m": grid_distance_m,
        "side": side,
        "town": town,
        "border_distance_m": border_distance_m,
        "referred_to": referred_to,
        "joint_case_id": joint_case_id,
        "duplicate_of": duplicate_of,
        "patrol_id": patrol_id,
        "accept_due": iso_utc(accept_due),
        "resolve_due": iso_utc(resolve_due),
        "responded_at": iso_utc(responded_at),
        "resolved_at": iso_utc(resolved_at),
        "closed_at": iso_utc(closed_at),
        "version": version,
    }


# incident_row unpacks by position: these are the names it gives the columns, in order.
_ROW_NAMES = (
    "id", "category", "severity", "level", "status", "description", "observed_at", "reported_at", "lon",
    "lat", "grid_match", "grid_distance_m", "side", "town", "border_distance_m", "referred_to",
    "joint_case_id", "duplicate_of", "patrol_id", "accept_due", "resolve_due", "responded_at",
    "resolved_at", "closed_at", "version", "grid", "reporter",
)  # fmt: skip
assert tuple(c.key for c in LIST_COLUMNS) + ("grid", "reporter") == _ROW_NAMES


def incident_feature(item: dict[str, Any]) -> dict[str, Any]:
    """A listed incident (``incident_row``) as a GeoJSON Feature: its point, ~1 cm, and every field."""
    return {
        "type": "Feature",
        "id": item["id"],
        "geometry": {"type": "Point", "coordinates": [round(item["lon"], 7), round(item["lat"], 7)]},
        "properties": item,
    }


def incident_detail(
    session: Session, principal: Principal, incident_id: int, settings: IncidentSettings, *, now=None
) -> dict[str, Any]:
    """One incident with its history and photos."""
    now = aware(now) or _now()
    incident = get_incident(session, principal, incident_id, settings)
    row = session.execute(list_select().where(Incident.id == incident_id)).one()
    history = session.execute(
        select(IncidentEvent, User.username, User.display_name)
        .join(User, User.id == IncidentEvent.actor_id)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.id)
    ).all()
    photos = (
        session.scalars(
            select(IncidentPhoto).where(IncidentPhoto.incident_id == incident_id).order_by(IncidentPhoto.id)
        ).all()
        if can_see_photos(principal, incident)
        else []  # listed only to those who may read them
    )
    return {
        **incident_row(row, now),
        "history": [
            {
                "at": iso_utc(e.at),
                "by": username,
                "by_name": display_name,
                "action": e.action,
                "from": e.from_status,
                "to": e.to_status,
                "note": e.note,
                "details": e.details,
            }
            for e, username, display_name in history
        ],
        "photos": [
            {
                "id": p.id,
                "href": f"/api/v1/incidents/{incident_id}/photos/{p.id}",
                "content_type": p.content_type,
                "width": p.width,
                "height": p.height,
                "size_bytes": p.size_bytes,
            }
            for p in photos
        ],
    }


def counts_by_grid(
    session: Session, principal: Principal, q: IncidentQuery, settings: IncidentSettings, *, now=None
) -> list[dict[str, Any]]:
    """Incident counts per grid with the same filters as the list (grid None: outside grids)."""
    now = aware(now) or _now()
    clauses = _filters(session, principal, q, settings, now)
    per_grid = (
        select(Incident.grid_id, func.count().label("n"))
        .where(*clauses)
        .group_by(Incident.grid_id)
        .subquery()
    )
    rows = session.execute(
        select(Grid.code, Grid.town, Grid.side, per_grid.c.n)
        .select_from(per_grid)
        .outerjoin(Grid, Grid.id == per_grid.c.grid_id)
        .order_by(Grid.code)
    ).all()
    return [{"grid": r.code, "town": r.town, "side": r.side, "count": int(r.n)} for r in rows]


def incident_points(
    session: Session,
    principal: Principal,
    q: IncidentQuery,
    settings: IncidentSettings,
    *,
    now: datetime | None = None,
    max_rows: int = 200_000,
) -> pd.DataFrame:
    """Every incident matching ``q`` that ``principal`` may see, as columns for a map (no paging),
    with ``overdue`` computed for all rows at once. More than ``max_rows`` is refused."""
    now = aware(now) or _now()
    clauses = _filters(session, principal, q, settings, now)
    query = (
        select(
            Incident.id,
            Incident.lon,
            Incident.lat,
            Incident.category,
            Incident.severity,
            Incident.status,
            Incident.observed_at,
            Incident.accept_due,
            Incident.resolve_due,
            Grid.code.label("grid"),
            Incident.side,
            Incident.referred_to,
            Incident.joint_case_id,
            Incident.border_distance_m,
        )
        .outerjoin(Grid, Grid.id == Incident.grid_id)
        .where(*clauses)
        .order_by(Incident.id)
        .limit(max_rows + 1)
    )
    rows = session.execute(query).all()
    if len(rows) > max_rows:
        raise InvalidRequest(
            f"more than {max_rows} incidents match; choose a shorter time range or fewer grids"
        )
    frame = pd.DataFrame(rows, columns=[c.name for c in query.selected_columns])
    for column in ("observed_at", "accept_due", "resolve_due"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    now_ts = pd.Timestamp(now)
    late_accept = (frame.status == "reported") & (frame.accept_due < now_ts)
    late_resolve = frame.status.isin(OPEN) & (frame.resolve_due < now_ts)
    frame["overdue"] = np.where(late_accept, "accept", np.where(late_resolve, "resolve", None))
    return frame


def list_categories(session: Session, *, include_retired: bool = False) -> list[dict[str, Any]]:
    query = select(IncidentCategory).order_by(IncidentCategory.sort_order, IncidentCategory.code)
    if not include_retired:
        query = query.where(IncidentCategory.active)
    return [
        {"code": c.code, "label_zh": c.label_zh, "label_en": c.label_en, "active": c.active}
        for c in session.scalars(query)
    ]


def add_category(session: Session, principal: Principal, code: str, label_zh: str, label_en: str) -> None:
    if not principal.is_admin:
        raise PermissionDenied("only an admin may extend the incident categories")
    code = code.strip().lower()
    if not code.replace("_", "").isalnum() or len(code) > 32:
        raise InvalidRequest("a category code is up to 32 lower-case letters, digits and underscores")
    if not label_zh.strip() or not label_en.strip():
        raise InvalidRequest("a category needs both a Chinese and an English label")
    if session.get(IncidentCategory, code) is not None:
        raise Conflict(f"category {code!r} exists already")
    last = session.scalar(select(func.max(IncidentCategory.sort_order))) or 0
    category = IncidentCategory(
        code=code, label_zh=label_zh.strip(), label_en=label_en.strip(), sort_order=last + 10, active=True
    )
    session.add(category)
    session.flush()
    fields = ("code", "label_zh", "label_en", "sort_order", "active")
    audit.record(
        session,
        principal,
        "category.create",
        "category",
        code,
        audit.changes({}, audit.snapshot(category, fields)),
    )
