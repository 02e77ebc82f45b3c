"""Monthly assessment (考核) of patrol teams and their members.

For one China-time calendar month (``month="2026-11"``: from 00:00 on the 1st to 00:00 on the 1st
of the next month, China Standard Time) and per team (``by="team"``) or per patrol member
(``by="member"``):

- ``patrols``, ``patrol_days`` (distinct China-time days), ``km``, ``hours``: the patrols that
  *started* in the month — a team's are those uploaded for the team, a member's those they were
  in the crew of (each crew member is credited with the whole patrol's distance and time);
- ``grids_assigned``: the team's active grids (``grids.team``); for each, the team's patrols and
  km inside it (its stored visits) in the month against the grid's effective quota
  (``patrol.analysis.quotas``): ``met`` when both the patrols and the km reach it.
  ``quota_compliance`` = grids meeting their quota / grids assigned (None: no grids). A member's
  row carries their team's grid figures (a quota is a team's duty for its grids);
- ``incidents_found``: incidents *observed* in the month and reported by the team's members (users
  with the patrol-member role in the team) / by the member; with the handling rates of those
  reports — response, on-time response, resolution, on-time resolution, median hours to accept
  and to resolve (close), open overdue — computed exactly as ``patrol.incident_stats``.

Teams, their grids and their members are taken as they are now (grid assignments, the accounts'
patrol-member roles), not as they were in the month. Patrols without times have no start and
count in no month.

Ranking (``RANKING``): teams by quota compliance (highest first; no grids last), then km, then
patrols (most first), then team code; members by km, then patrols, then incidents found (most
first), then username. ``rank`` is the position 1, 2, 3… in that order.

Who sees what (anything asked beyond it is refused with PermissionDenied; within it rows are
filtered): an admin sees every team and member of both sides; an enforcement officer the teams and
members of their side; a station manager the teams of their station(s) and their members; a patrol
member their own team(s) with ``by="team"`` and only their own row with ``by="member"``. Holders
of several roles see the union. ``side`` other than the caller's own is refused unless admin.

A month that is malformed, in the future, or starts more than ``max_period_days`` ago is refused
with InvalidRequest naming ``month``.

The data is read with a fixed number of queries (teams, members, grids with quotas, patrols,
visits per grid and team, incidents) whatever the number of teams.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrol.analysis.quotas import effective_quotas
from patrol.errors import InvalidRequest, PermissionDenied
from patrol.incident_stats import HANDLING_COLUMNS, handling_rates
from patrol.models import Incident, Patrol, PatrolMember, PatrolVisit, Role, Side, Team, User, UserRole

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
MONTH = re.compile(r"(\d{4})-(\d{2})")
BY = ("team", "member")
RANKING = {
    "team": "quota_compliance desc (no grids last), km desc, patrols desc, team code",
    "member": "km desc, patrols desc, incidents_found desc, username",
}
RATE_FIELDS = (
    "responded", "response_rate", "on_time_response_rate", "resolved", "resolution_rate",
    "on_time_resolution_rate", "median_hours_to_accept", "median_hours_to_resolve", "open_overdue",
)  # fmt: skip


def month_range(month: str, *, now: datetime | None = None, max_days: int = 400) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the China-time calendar month ``YYYY-MM``, checked: not malformed,
    not in the future, not starting more than ``max_days`` days before ``now``."""
    now = now or datetime.now(UTC)
    match = MONTH.fullmatch(month) if isinstance(month, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise InvalidRequest(
            f"month must be a calendar month as YYYY-MM, e.g. 2026-11; got {month!r}", field="month"
        )
    year, mon = int(match.group(1)), int(match.group(2))
    start = datetime(year, mon, 1, tzinfo=LOCAL_TIME)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=LOCAL_TIME)
    local_now = now.astimezone(LOCAL_TIME)
    if (year, mon) > (local_now.year, local_now.month):
        raise InvalidRequest(
            f"month {month} is in the future (it is {local_now:%Y-%m} in China now)", field="month"
        )
    if start < now - timedelta(days=max_days):
        raise InvalidRequest(
            f"month {month} starts more than {max_days} days ago (MANGROVE_ANALYSIS_MAX_PERIOD_DAYS)",
            field="month",
        )
    return start.astimezone(UTC), end.astimezone(UTC)


def _scope(session: Session, principal, side: str | None, by: str) -> tuple[list[Team], bool]:
    """The teams the caller may assess (code order), and whether they may see only their own row."""
    if by not in BY:
        raise InvalidRequest(f"by must be one of {', '.join(BY)}, got {by!r}", field="by")
    if side is not None and session.get(Side, side) is None:
        known = ", ".join(session.scalars(select(Side.code).order_by(Side.code)))
        raise InvalidRequest(f"unknown side {side!r}: use one of {known}", field="side")
    if not principal.is_admin and side not in (None, principal.side):
        raise PermissionDenied(f"side {side}: you may assess the teams of {principal.side or 'no side'} only")
    query = select(Team).order_by(Team.code)
    if side is not None:
        query = query.where(Team.side == side)
    teams = list(session.scalars(query))
    if principal.is_admin:
        return teams, False
    roles = principal.roles
    if not roles & {Role.PATROL_MEMBER, Role.STATION_MANAGER, Role.ENFORCEMENT_OFFICER}:
        raise PermissionDenied("the assessment is for patrol members, station managers, officers and admins")
    officer = Role.ENFORCEMENT_OFFICER in roles
    manager = Role.STATION_MANAGER in roles
    member = Role.PATROL_MEMBER in roles
    visible = [
        t
        for t in teams
        if (officer and t.side == principal.side)
        or (manager and t.station in principal.stations)
        or (member and t.code in principal.teams)
    ]
    return visible, by == "member" and not (officer or manager)


def assessment(
    session: Session,
    principal,
    settings,
    month: str,
    by: str = "team",
    side: str | None = None,
    *,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Ranked rows of the month's assessment, one per team or member the caller may see (see the
    module's docstring for every figure, the ranking and who sees what)."""
    now = now or datetime.now(UTC)
    analysis = getattr(settings, "analysis", settings)
    start, end = month_range(month, now=now, max_days=analysis.max_period_days)
    teams, self_only = _scope(session, principal, side, by)
    team_codes = [t.code for t in teams]
    if not team_codes:
        return []

    # Members of the visible teams (patrol-member grants), one row per (user, team).
    grants = session.execute(
        select(User.id, User.username, User.display_name, UserRole.team)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.PATROL_MEMBER.value, UserRole.team.in_(team_codes))
        .order_by(User.username, UserRole.team)
    ).all()
    teams_of: dict[int, list[str]] = {}
    for g in grants:
        teams_of.setdefault(g.id, []).append(g.team)

    quotas = effective_quotas(session, analysis)
    quotas = quotas[quotas.team.isin(team_codes)]
    grid_figures = _grid_figures(session, quotas, start, end)

    in_month = (Patrol.started_at >= start, Patrol.started_at < end)
    if by == "team":
        rows = session.execute(
            select(
                Patrol.team.label("key"), Patrol.id, Patrol.started_at, Patrol.distance_m, Patrol.duration_s
            ).where(Patrol.team.in_(team_codes), *in_month)
        ).all()
    else:
        ids = [principal.user_id] if self_only else list(teams_of)
        rows = session.execute(
            select(PatrolMember.user_id.label("key"), Patrol.id, Patrol.started_at, Patrol.distance_m,
                   Patrol.duration_s)
            .join(Patrol, Patrol.id == PatrolMember.patrol_id)
            .where(PatrolMember.user_id.in_(ids), *in_month)
        ).all()  # fmt: skip
    effort = _effort(
        pd.DataFrame(
            [tuple(r) for r in rows], columns=["key", "id", "started_at", "distance_m", "duration_s"]
        )
    )

    reporters = list(teams_of) if by == "team" or not self_only else [principal.user_id]
    incident_rows = session.execute(
        select(Incident.reporter_id, *HANDLING_COLUMNS).where(
            Incident.reporter_id.in_(reporters), Incident.observed_at >= start, Incident.observed_at < end
        )
    ).all()
    incidents = pd.DataFrame(
        [tuple(r) for r in incident_rows], columns=["reporter_id", *(c.key for c in HANDLING_COLUMNS)]
    )
    if by == "team" and len(incidents):
        # An incident counts for every visible team its reporter is a member of.
        incidents["key"] = incidents.reporter_id.map(lambda uid: teams_of.get(uid, []))
        incidents = incidents.explode("key").dropna(subset=["key"]).reset_index(drop=True)
    elif len(incidents):
        incidents["key"] = incidents.reporter_id
    rates = handling_rates(incidents, incidents["key"], now) if len(incidents) else {}

    out = []
    if by == "team":
        for team in teams:
            out.append(
                {
                    "team": team.code,
                    "name_zh": team.name_zh,
                    "name_en": team.name_en,
                    "side": team.side,
                    "station": team.station,
                    "members": sum(team.code in t for t in teams_of.values()),
                    **effort.get(team.code, _NO_EFFORT),
                    **grid_figures.get(team.code, _no_grids()),
                    **_incident_figures(rates.get(team.code)),
                }
            )
        out.sort(key=lambda r: (r["quota_compliance"] is None, -(r["quota_compliance"] or 0), -r["km"],
                                -r["patrols"], r["team"]))  # fmt: skip
    else:
        names = {t.code: t for t in teams}
        people = {g.id: g for g in grants}
        for uid, codes in teams_of.items():
            if self_only and uid != principal.user_id:
                continue
            person = people[uid]
            first = codes[0]
            out.append(
                {
                    "username": person.username,
                    "display_name": person.display_name,
                    "team": ",".join(codes),
                    "team_name_zh": "、".join(names[c].name_zh for c in codes),
                    "side": names[first].side,
                    "station": names[first].station,
                    **effort.get(uid, _NO_EFFORT),
                    **_merged_grid_figures([grid_figures.get(c, _no_grids()) for c in codes]),
                    **_incident_figures(rates.get(uid)),
                }
            )
        out.sort(key=lambda r: (-r["km"], -r["patrols"], -r["incidents_found"], r["username"]))
    for rank, row in enumerate(out, start=1):
        row["rank"] = rank
    return [{"rank": r.pop("rank"), **r} for r in out]


_NO_EFFORT = {"patrols": 0, "patrol_days": 0, "km": 0.0, "hours": 0.0}


def _effort(frame: pd.DataFrame) -> dict[Any, dict[str, Any]]:
    if frame.empty:
        return {}
    frame["day"] = pd.to_datetime(frame.started_at, utc=True).dt.tz_convert(LOCAL_TIME).dt.date
    out = {}
    for key, part in frame.groupby("key"):
        out[key] = {
            "patrols": int(part.id.nunique()),
            "patrol_days": int(part.day.nunique()),
            "km": round(float(part.distance_m.sum()) / 1000, 3),
            "hours": round(float(part.duration_s.astype(float).sum()) / 3600, 2),
        }
    return out


def _no_grids() -> dict[str, Any]:
    return {"grids_assigned": 0, "grids_meeting_quota": 0, "quota_compliance": None, "grids": []}


def _grid_figures(session: Session, quotas: pd.DataFrame, start: datetime, end: datetime) -> dict[str, dict]:
    """Per team: its grids' patrols and km in the month (its own patrols) against their quotas."""
    if quotas.empty:
        return {}
    grid_ids = [int(g) for g in quotas.grid_id]
    visits = session.execute(
        select(
            PatrolVisit.grid_id,
            Patrol.team,
            func.count(func.distinct(PatrolVisit.patrol_id)),
            func.sum(PatrolVisit.distance_m),
        )
        .join(Patrol, Patrol.id == PatrolVisit.patrol_id)
        .where(PatrolVisit.grid_id.in_(grid_ids), Patrol.started_at >= start, Patrol.started_at < end)
        .group_by(PatrolVisit.grid_id, Patrol.team)
    ).all()
    done = {(grid_id, team): (int(n), float(m or 0)) for grid_id, team, n, m in visits}
    out: dict[str, dict] = {}
    for q in quotas.itertuples(index=False):
        patrols, metres = done.get((q.grid_id, q.team), (0, 0.0))
        km = round(metres / 1000, 3)
        met_patrols = patrols >= q.patrols_per_month
        met_km = km >= q.km_per_month
        figures = out.setdefault(q.team, _no_grids())
        figures["grids"].append(
            {
                "grid": q.code,
                "patrols": patrols,
                "km": km,
                "quota_patrols": int(q.patrols_per_month),
                "quota_km": float(q.km_per_month),
                "quota_source": q.source,
                "met_patrols": met_patrols,
                "met_km": met_km,
                "met": met_patrols and met_km,
            }
        )
    for figures in out.values():
        figures["grids_assigned"] = len(figures["grids"])
        figures["grids_meeting_quota"] = sum(g["met"] for g in figures["grids"])
        figures["quota_compliance"] = round(figures["grids_meeting_quota"] / figures["grids_assigned"], 4)
    return out


def _merged_grid_figures(parts: list[dict]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0]
    grids = [g for p in parts for g in p["grids"]]
    met = sum(g["met"] for g in grids)
    return {
        "grids_assigned": len(grids),
        "grids_meeting_quota": met,
        "quota_compliance": round(met / len(grids), 4) if grids else None,
        "grids": grids,
    }


def _incident_figures(rates: dict[str, Any] | None) -> dict[str, Any]:
    if rates is None:
        return {"incidents_found": 0, **{f: (0 if f in ("responded", "resolved", "open_overdue") else None)
                                         for f in RATE_FIELDS}}  # fmt: skip
    return {"incidents_found": rates["count"], **{f: rates[f] for f in RATE_FIELDS}}
