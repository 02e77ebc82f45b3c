"""Patrol effort per grid over any time range, team, member or side, and grids left unpatrolled.

Aggregates are computed from the stored visits (one row per pass of a patrol through a grid).
Days are counted in China Standard Time: a patrol at 07:00 local is on that local day, not on the
previous UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.coverage import covered_share
from geodata.crs import METRIC, WGS84, transformer
from patrol.errors import InvalidRequest
from patrol.models import Grid, Patrol, PatrolMember, PatrolVisit, Team, User

LOCAL_TIME = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class EffortFilter:
    start: datetime | None = None  # visits ending at or after this instant
    end: datetime | None = None  # visits starting before this instant
    side: str | None = None
    town: str | None = None
    team: str | None = None
    member: str | None = None  # username
    grids: tuple[str, ...] = ()

    def __post_init__(self):
        if self.start and self.end and self.end <= self.start:
            raise InvalidRequest("the time range is empty or reversed: its end must come after its start")


def _grid_clauses(flt: EffortFilter) -> list:
    """Which grids the filter asks for (active ones only)."""
    clauses = [Grid.retired_at.is_(None)]
    if flt.side:
        clauses.append(Grid.side == flt.side)
    if flt.town:
        clauses.append(Grid.town == flt.town)
    if flt.grids:
        clauses.append(Grid.code.in_(flt.grids))
    return clauses


def _grids(session: Session, flt: EffortFilter):
    query = select(
        Grid.id, Grid.code, Grid.name_zh, Grid.name_en, Grid.side, Grid.town, Grid.team, Grid.area_ha
    )
    query = query.where(*_grid_clauses(flt)).order_by(Grid.code)
    rows = session.execute(query).all()
    missing = sorted(set(flt.grids) - {r.code for r in rows})
    if missing:
        raise InvalidRequest(f"unknown grid(s): {', '.join(missing)}")
    return rows


def _visits(session: Session, flt: EffortFilter, with_geometry: bool) -> pd.DataFrame:
    members = (
        select(PatrolMember.patrol_id, func.count().label("crew")).group_by(PatrolMember.patrol_id).subquery()
    )
    columns = [
        PatrolVisit.grid_id,
        PatrolVisit.patrol_id,
        PatrolVisit.entered_at,
        PatrolVisit.exited_at,
        PatrolVisit.distance_m,
        PatrolVisit.duration_s,
        members.c.crew,
    ]
    if with_geometry:
        columns.append(func.ST_AsBinary(PatrolVisit.geom).label("wkb"))
    query = (
        select(*columns)
        .join(Patrol, Patrol.id == PatrolVisit.patrol_id)
        .join(members, members.c.patrol_id == Patrol.id)
        # The grids as a subquery, not a list of their ids: a province's 10,000 grids were 10,000
        # bound parameters, ~200 ms of parsing and planning before any visit was read.
        .where(PatrolVisit.grid_id.in_(select(Grid.id).where(*_grid_clauses(flt))))
    )
    if flt.start:
        query = query.where(PatrolVisit.exited_at >= flt.start)
    if flt.end:
        query = query.where(PatrolVisit.entered_at < flt.end)
    if flt.team:
        query = query.where(Patrol.team == flt.team)
    if flt.member:
        member_patrols = (
            select(PatrolMember.patrol_id)
            .join(User, User.id == PatrolMember.user_id)
            .where(User.username == flt.member)
        )
        query = query.where(Patrol.id.in_(member_patrols))
    rows = session.execute(query).all()
    names = ["grid_id", "patrol_id", "entered_at", "exited_at", "distance_m", "duration_s", "crew"]
    return pd.DataFrame(rows, columns=names + (["wkb"] if with_geometry else []))


def grid_effort(
    session: Session, flt: EffortFilter, *, swath_width_m: float, coverage: bool = True
) -> list[dict[str, Any]]:
    """One row per active grid matching the filter, patrolled or not, in code order."""
    if flt.team and session.get(Team, flt.team) is None:
        raise InvalidRequest(f"unknown team {flt.team!r}")
    if flt.member and session.scalar(select(User.id).where(User.username == flt.member)) is None:
        raise InvalidRequest(f"unknown member {flt.member!r}")
    grids = _grids(session, flt)
    visits = _visits(session, flt, with_geometry=coverage)
    covered = _coverage(session, visits, swath_width_m) if coverage and len(visits) else {}
    totals = _totals_by_grid(visits)
    rows = []
    for grid in grids:
        rows.append(
            {
                "code": grid.code,
                "name_zh": grid.name_zh,
                "name_en": grid.name_en,
                "side": grid.side,
                "town": grid.town,
                "team": grid.team,
                "area_ha": grid.area_ha,
                **_visit_totals(totals.get(grid.id), grid.area_ha),
                "coverage": round(covered.get(grid.id, 0.0), 4) if coverage else None,
            }
        )
    return rows


def _totals_by_grid(visits: pd.DataFrame) -> dict[int, tuple]:
    """Per grid id: (patrols, local patrol-days, metres, seconds, person-seconds, last exit), all
    grids in one grouped pass (a month over a province's grids touches thousands of them; a
    pandas pass per grid cost ~1.5 ms each). Seconds are NaN when no visit of the grid has times."""
    if visits.empty:
        return {}
    entered = pd.to_datetime(visits.entered_at, utc=True)
    v = pd.DataFrame(
        {
            "grid_id": visits.grid_id,
            "patrol_id": visits.patrol_id,
            "day": entered.dt.tz_convert(LOCAL_TIME).dt.date,  # NaT for visits without times
            "metres": visits.distance_m,
            "seconds": visits.duration_s,
            "person": visits.duration_s * visits.crew,
            "exited": pd.to_datetime(visits.exited_at, utc=True),  # SQLite's naive values are UTC
        }
    )
    g = v.groupby("grid_id", sort=False)
    agg = pd.DataFrame(
        {
            "patrols": g.patrol_id.nunique(),
            "days": g.day.nunique(),
            "metres": g.metres.sum(),
            "seconds": g.seconds.sum(min_count=1),
            "person": g.person.sum(min_count=1),
            "last": g.exited.max(),
        }
    )
    return {
        int(gid): row
        for gid, row in zip(
            agg.index.tolist(),
            zip(agg.patrols.tolist(), agg.days.tolist(), agg.metres.tolist(), agg.seconds.tolist(),
                agg.person.tolist(), agg["last"].tolist()),
        )
    }  # fmt: skip


def _visit_totals(totals: tuple | None, area_ha: float | None) -> dict[str, Any]:
    """One grid's totals as the effort row shows them. Hours are None when no visit has times
    (unknown, not zero)."""
    if totals is None:
        return {
            "patrols": 0,
            "patrol_days": 0,
            "km": 0.0,
            "hours": 0.0,
            "person_hours": 0.0,
            "km_per_ha": 0.0 if area_ha else None,
            "last_patrolled": None,
        }
    patrols, days, metres, seconds, person_seconds, last = totals
    km = float(metres) / 1000
    return {
        "patrols": int(patrols),
        "patrol_days": int(days),
        "km": round(km, 3),
        "hours": None if pd.isna(seconds) else round(float(seconds) / 3600, 2),
        "person_hours": None if pd.isna(person_seconds) else round(float(person_seconds) / 3600, 2),
        "km_per_ha": round(km / area_ha, 6) if area_ha else None,
        "last_patrolled": None if pd.isna(last) else _aware(last).isoformat(),
    }


def _aware(value) -> datetime:
    value = pd.Timestamp(value).to_pydatetime()
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite returns naive UTC


def _coverage(session: Session, visits: pd.DataFrame, swath_width_m: float) -> dict[int, float]:
    """Share of each grid's area within swath_width_m / 2 of any visit's line (estimated on a
    lattice of points: see geodata.coverage)."""
    visits = visits[visits.wkb.notna()]
    if visits.empty:
        return {}
    to_metric = transformer(WGS84, METRIC)
    lines = shapely.from_wkb([bytes(w) for w in visits.wkb])
    lines = shapely.transform(lines, lambda x, y: to_metric.transform(x, y), interleaved=False)
    grid_ids = visits.grid_id.to_numpy()
    wanted = np.unique(grid_ids).tolist()
    wkbs = dict(
        session.execute(select(Grid.id, func.ST_AsBinary(Grid.geom)).where(Grid.id.in_(wanted))).all()
    )
    result = {}
    for gid in wanted:
        grid = shapely.transform(
            shapely.from_wkb(bytes(wkbs[gid])), lambda x, y: to_metric.transform(x, y), interleaved=False
        )
        result[gid] = covered_share(grid, lines[grid_ids == gid], swath_width_m)
    return result


def unpatrolled_grids(
    session: Session,
    *,
    days: int,
    as_of: datetime | None = None,
    side: str | None = None,
    town: str | None = None,
) -> list[dict[str, Any]]:
    """Active grids with no visit in the ``days`` days before ``as_of`` (default now), oldest first."""
    if days < 1:
        raise InvalidRequest("days must be at least 1")
    as_of = as_of or datetime.now(UTC)
    since = as_of - timedelta(days=days)
    last = (
        select(PatrolVisit.grid_id, func.max(PatrolVisit.exited_at).label("last"))
        .where(PatrolVisit.grid_id.is_not(None), PatrolVisit.exited_at <= as_of)
        .group_by(PatrolVisit.grid_id)
        .subquery()
    )
    query = (
        select(Grid.code, Grid.name_zh, Grid.name_en, Grid.side, Grid.town, Grid.team, last.c.last)
        .outerjoin(last, last.c.grid_id == Grid.id)
        .where(Grid.retired_at.is_(None))
    )
    if side:
        query = query.where(Grid.side == side)
    if town:
        query = query.where(Grid.town == town)
    rows = []
    for r in session.execute(query).all():
        last_at = _aware(r.last) if r.last is not None else None
        if last_at is not None and last_at >= since:
            continue
        rows.append(
            {
                "code": r.code,
                "name_zh": r.name_zh,
                "name_en": r.name_en,
                "side": r.side,
                "town": r.town,
                "team": r.team,
                "last_patrolled": last_at.isoformat() if last_at else None,
                "days_since": None
                if last_at is None
                else round((as_of - last_at).total_seconds() / 86400, 1),
            }
        )
    # Never patrolled first, then the longest unpatrolled.
    return sorted(rows, key=lambda r: (r["last_patrolled"] is not None, r["last_patrolled"] or "", r["code"]))
