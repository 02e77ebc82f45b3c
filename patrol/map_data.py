"""What the station, joint-enforcement and replay maps show, gathered under the API's own rules.

Each map gets one plain data object (geodataframes in WGS84 lon/lat, data frames, labels) and knows
nothing of the database; ``maps`` turns it into HTML. The rules are those of the data shown: grid
effort is visible to every signed-in user, tracks only where the patrol itself is
(``visible_patrols_clause``), incidents only where the incident is (``visible_clause``).
Tracks are simplified here, in metres, for the purpose of the map that shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.crs import WGS84
from geodata.reference import BORDER_CODE
from patrol.accounts import Principal
from patrol.analysis import data, reports
from patrol.analysis.scope import analysis_scope
from patrol.effort import LOCAL_TIME, EffortFilter, grid_effort, unpatrolled_grids
from patrol.errors import InvalidRequest, NotFound, PermissionDenied
from patrol.grids import list_grids, project, unproject
from patrol.incidents import OPEN, STATUS_NAMES, WORKER_ROLES, IncidentQuery, incident_points, list_categories
from patrol.joint import list_joint_cases
from patrol.models import Boundary, Grid, Incident, Patrol, PatrolVisit, Role, Side, Station, Team, Town
from patrol.patrols import get_patrol, member_names, patrol_fixes, visible_patrols_clause
from patrol.settings import Settings
from patrol.vocabulary import TRANSPORT_NAMES

EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass
class Labels:
    """Chinese and English names of the codes a map shows."""

    sides: dict[str, tuple[str, str]]
    towns: dict[str, tuple[str, str]]
    teams: dict[str, tuple[str, str]]
    categories: dict[str, tuple[str, str]]
    statuses: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(STATUS_NAMES))
    open_statuses: tuple[str, ...] = OPEN
    transports: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(TRANSPORT_NAMES))

    def name(self, kind: str, code) -> str:
        """'中文 English' for a code of ``kind`` (sides, towns, teams, …); the code itself only when
        it has no name."""
        zh, en = getattr(self, kind).get(code, (code, ""))
        return f"{zh} {en}".strip() if zh or en else ""

    @classmethod
    def load(cls, session: Session) -> Labels:
        def names(model):
            return {r.code: (r.name_zh, r.name_en) for r in session.scalars(select(model))}

        categories = {
            c["code"]: (c["label_zh"], c["label_en"]) for c in list_categories(session, include_retired=True)
        }
        return cls(names(Side), names(Town), names(Team), categories)


def map_period(
    days: int, now: datetime, start: datetime | None = None, end: datetime | None = None
) -> tuple[datetime, datetime]:
    """The period a map shows, defined once for the default and the filter form alike: whole China
    days. Without an end, to the end of today (China); without a start, from local midnight
    ``days`` − 1 days before the end's last day, so ``days`` days in all, today included. The form
    shows this period as its first and last days, and applying it unchanged gives the same bounds.
    Both bounds are returned in UTC."""
    if end is None:
        today = now.astimezone(LOCAL_TIME).date()
        end = datetime.combine(today + timedelta(days=1), time(), tzinfo=LOCAL_TIME)
    if start is None:
        last_day = (end - timedelta(microseconds=1)).astimezone(LOCAL_TIME).date()
        start = datetime.combine(last_day - timedelta(days=days - 1), time(), tzinfo=LOCAL_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


def _check_period(start: datetime | None, end: datetime | None) -> None:
    if start and end and end <= start:
        raise InvalidRequest("the time range is empty or reversed: its end must come after its start")


def _grids_frame(records) -> gpd.GeoDataFrame:
    columns = ["code", "name_zh", "name_en", "side", "town", "team", "station", "area_ha"]
    rows = [{c: getattr(r, c) for c in columns} for r in records]
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=columns), geometry=[r.geometry for r in records], crs=WGS84
    )


def current_and_reported(open_now: pd.DataFrame, reported: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """The incidents a map shows: every open one (current work, whenever it was reported) and those
    reported in the period (settled ones only then), once each, in id order."""
    frames = [f for f in (open_now, reported) if len(f)]
    if not frames:
        return reported
    both = pd.concat(frames, ignore_index=True).drop_duplicates("id").sort_values("id", ignore_index=True)
    if len(both) > max_rows:
        raise InvalidRequest(
            f"more than {max_rows} incidents match; choose a shorter time range or fewer grids"
        )
    return both


def simplify_lonlat(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Douglas–Peucker in metres (UTM 49N), all geometries at once; back in lon/lat."""
    if tolerance_m <= 0 or len(geoms) == 0:
        return geoms
    metric = shapely.transform(geoms, lambda xy: np.column_stack(project(xy[:, 0], xy[:, 1])))
    simple = shapely.simplify(metric, tolerance_m, preserve_topology=False)
    return shapely.transform(simple, lambda xy: np.column_stack(unproject(xy[:, 0], xy[:, 1])))


# --- station map -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StationMapQuery:
    station: str | None = None
    town: str | None = None
    grids: tuple[str, ...] = ()
    start: datetime | None = None  # default and end: see ``map_period``
    end: datetime | None = None
    unpatrolled_days: int | None = None  # default: ``patrols.unpatrolled_days``


@dataclass
class StationMapData:
    title: str
    start: datetime
    end: datetime
    unpatrolled_days: int
    grids: gpd.GeoDataFrame  # effort, unpatrolled, open incidents per grid
    tracks: gpd.GeoDataFrame | None  # None: this user may see no patrol of these grids
    incidents: pd.DataFrame
    labels: Labels
    track_tolerance_m: float = 0.0
    focus: tuple[str, ...] = ()  # the grids the map opens on (a patrol member's team's); () for all
    # For those who may analyse (managers, officers, admins; None for others): the encounter rate
    # of every grid (all categories) and the significant Gi* hot-spot cells, WGS84.
    rates: pd.DataFrame | None = None
    hotspots: gpd.GeoDataFrame | None = None
    hotspot_method: str = ""


def _station_scope(session: Session, principal: Principal, q: StationMapQuery) -> tuple[str, list]:
    """(title, grid records) for the station / town / grids asked for, or the user's own."""
    chosen = [name for name, value in (("station", q.station), ("town", q.town), ("grid", q.grids)) if value]
    if len(chosen) > 1:
        raise InvalidRequest(f"choose one of station, town or grid, not {' and '.join(chosen)}")
    records = list_grids(session)
    if q.station:
        station = session.get(Station, q.station)
        if station is None:
            raise NotFound(f"no station {q.station!r}")
        return f"{station.name_zh} {station.name_en}", [r for r in records if r.station == q.station]
    if q.town:
        town = session.get(Town, q.town)
        if town is None:
            raise NotFound(f"no town {q.town!r}")
        return f"{town.name_zh} {town.name_en}", [r for r in records if r.town == q.town]
    if q.grids:
        missing = sorted(set(q.grids) - {r.code for r in records})
        if missing:
            raise NotFound(f"no grid {', '.join(missing)}")
        return "网格 Grids " + ", ".join(sorted(q.grids)), [r for r in records if r.code in q.grids]
    if principal.stations and not principal.is_admin:
        names = [session.get(Station, code) for code in sorted(principal.stations)]
        title = "; ".join(f"{s.name_zh} {s.name_en}" for s in names if s)
        return title, [r for r in records if r.station in principal.stations]
    if principal.is_admin:
        return "全部网格 All grids", records
    side = session.get(Side, principal.side)
    return f"{side.name_zh} {side.name_en}", [r for r in records if r.side == principal.side]


def station_map_data(
    session: Session,
    principal: Principal,
    q: StationMapQuery,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> StationMapData:
    now = now or datetime.now(UTC)
    start, end = map_period(settings.maps.default_days, now, q.start, q.end)
    _check_period(start, end)
    title, records = _station_scope(session, principal, q)
    if not records:
        raise NotFound("no active grid in this scope")
    codes = tuple(r.code for r in records)
    grids = _grids_frame(records)

    effort = pd.DataFrame(
        grid_effort(
            session,
            EffortFilter(start=start, end=end, grids=codes),
            swath_width_m=settings.patrols.swath_width_m,
            coverage=False,
        )
    ).set_index("code")
    for column in ("patrols", "patrol_days", "km", "hours", "person_hours", "km_per_ha", "last_patrolled"):
        grids[column] = grids.code.map(effort[column])
    grids["hours_per_ha"] = grids.hours.fillna(0) / grids.area_ha
    # Per week of the period (up to now), so that maps of different periods compare.
    weeks = (min(end, now) - start).total_seconds() / (7 * 86400)
    weeks = max(weeks, 1 / 7)  # at least a day: a period that began moments ago is not a rate
    grids["patrols_per_week"] = grids.patrols.fillna(0) / weeks
    grids["km_per_ha_week"] = grids.km_per_ha.fillna(0) / weeks
    grids["hours_per_ha_week"] = grids.hours_per_ha / weeks

    days = q.unpatrolled_days or settings.patrols.unpatrolled_days
    stale = {r["code"] for r in unpatrolled_grids(session, days=days, as_of=min(end, now))}
    grids["unpatrolled"] = grids.code.isin(stale)

    reported = incident_points(
        session,
        principal,
        IncidentQuery(grids=codes, start=start, end=end),
        settings.incidents,
        now=now,
        max_rows=settings.maps.max_incidents,
    )
    # Open now, whenever reported: an incident from before the period is still open work.
    open_now = incident_points(
        session,
        principal,
        IncidentQuery(grids=codes, statuses=OPEN),
        settings.incidents,
        now=now,
        max_rows=settings.maps.max_incidents,
    )
    incidents = current_and_reported(open_now, reported, settings.maps.max_incidents)
    grids["open_incidents"] = grids.code.map(open_now.groupby("grid").size()).fillna(0).astype(int)

    tracks = _tracks(session, principal, grids, start, end, settings.maps.track_tolerance_m)
    rates, spots = _analysis_layers(session, principal, settings, codes, start, min(end, now), now, effort)
    return StationMapData(
        title=title,
        start=start,
        end=end,
        unpatrolled_days=days,
        grids=grids,
        tracks=tracks,
        incidents=incidents,
        labels=Labels.load(session),
        track_tolerance_m=settings.maps.track_tolerance_m,
        focus=_focus(principal, q, grids),
        rates=rates,
        hotspots=None if spots is None else spots[0],
        hotspot_method="" if spots is None else spots[1],
    )


def _analysis_layers(session, principal, settings, codes, start, end, now, effort: pd.DataFrame):
    """Encounter rates and significant hot spots of the map's grids and period, for the roles that
    analyse, when the period is one an analysis takes; (None, None) otherwise."""
    if not principal.has(*WORKER_ROLES) or end <= start:
        return None, None
    try:
        scope = analysis_scope(session, principal, settings, start=start, end=end, grids=codes, now=now)
    except (InvalidRequest, PermissionDenied):  # e.g. a period beyond the cap, another side's grids
        return None, None
    incidents = data.incidents_frame(session, principal, scope, settings)
    # The map's own effort (same grids and period) serves the rates too.
    effort = effort.reset_index().rename(columns={"code": "grid"})
    effort["hours"] = effort["hours"].fillna(0.0)
    table = reports.rates_report(session, principal, settings, scope, incidents=incidents, effort=effort)
    rates = table[table.category == "all"].reset_index(drop=True)
    spots = reports.hotspots_report(session, principal, settings, scope, incidents=incidents)
    cells = spots.cells[spots.cells["significant"]].to_crs(WGS84)
    return rates, (cells, spots.method)


def _focus(principal: Principal, q: StationMapQuery, grids: gpd.GeoDataFrame) -> tuple[str, ...]:
    """A patrol member's own map (no scope chosen) shows their whole side's effort but opens on the
    grids of their team(s): those are the ones they walk."""
    if q.station or q.town or q.grids or principal.is_admin or principal.stations or not principal.teams:
        return ()
    return tuple(grids.code[grids.team.isin(principal.teams)])


def _tracks(session, principal, grids, start, end, tolerance_m) -> gpd.GeoDataFrame | None:
    """Simplified lines of the patrols through these grids in the period that the user may see."""
    if not _may_see_patrols(principal):
        return None
    visible = visible_patrols_clause(session, principal)
    grid_ids = select(Grid.id).where(Grid.code.in_(list(grids.code)))
    through = select(PatrolVisit.patrol_id).where(
        PatrolVisit.grid_id.in_(grid_ids), PatrolVisit.exited_at >= start, PatrolVisit.entered_at < end
    )
    query = select(
        Patrol.id,
        Patrol.team,
        Patrol.transport,
        Patrol.started_at,
        Patrol.distance_m,
        Patrol.duration_s,
        func.ST_AsBinary(Patrol.geom_simplified).label("wkb"),
    ).where(Patrol.id.in_(through), Patrol.geom_simplified.is_not(None))
    if visible is not None:
        query = query.where(visible)
    rows = session.execute(query.order_by(Patrol.started_at, Patrol.id)).all()
    frame = pd.DataFrame(
        rows, columns=["id", "team", "transport", "started_at", "distance_m", "duration_s", "wkb"]
    )
    geoms = (
        shapely.from_wkb([bytes(w) for w in frame.pop("wkb")]) if len(frame) else np.array([], dtype=object)
    )
    names = member_names(session, frame.id.tolist())
    frame["members"] = frame.id.map(lambda pid: ", ".join(names.get(pid, [])))
    frame["started_at"] = pd.to_datetime(frame.started_at, utc=True)
    return gpd.GeoDataFrame(frame, geometry=simplify_lonlat(geoms, tolerance_m), crs=WGS84)


def _may_see_patrols(principal: Principal) -> bool:
    """Whether any patrol track is for this user's eyes (see ``patrol.patrols.can_see``)."""
    return (
        principal.is_admin
        or principal.has(Role.ENFORCEMENT_OFFICER)
        or bool(principal.teams or principal.stations)
    )


# --- joint-enforcement map ---------------------------------------------------------------------


@dataclass(frozen=True)
class JointMapQuery:
    start: datetime | None = None
    end: datetime | None = None
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()


@dataclass
class JointMapData:
    start: datetime  # the period (``map_period``): settled incidents reported in it, and every open one
    end: datetime
    grids: gpd.GeoDataFrame  # both sides
    border: object  # shapely LineString, lon/lat
    border_band: object  # the strip within ``border_distance_m`` of the border, lon/lat
    border_distance_m: float
    incidents: pd.DataFrame  # with near_border; joint_case_id and referred_to as stored
    cases: list[dict]  # joint cases with the incidents on this map
    labels: Labels
    filters: JointMapQuery = field(default_factory=JointMapQuery)


def border_layers(session: Session, settings: Settings) -> tuple[object, object, float]:
    """(border line, the strip within ``border_distance_m`` of it, that distance), lon/lat."""
    wkb = session.scalar(select(func.ST_AsBinary(Boundary.geom)).where(Boundary.code == BORDER_CODE))
    if wkb is None:
        raise InvalidRequest("the provincial border is not loaded; run `mangrove db upgrade`")
    border = shapely.from_wkb(bytes(wkb))
    distance = settings.incidents.border_distance_m
    metric = shapely.transform(border, lambda xy: np.column_stack(project(xy[:, 0], xy[:, 1])))
    band = shapely.transform(
        shapely.simplify(shapely.buffer(metric, distance, quad_segs=4), 10),
        lambda xy: np.column_stack(unproject(xy[:, 0], xy[:, 1])),
    )
    return border, band, distance


def joint_map_data(
    session: Session,
    principal: Principal,
    q: JointMapQuery,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> JointMapData:
    if not (principal.is_admin or principal.has(*WORKER_ROLES)):
        raise PermissionDenied(
            "the joint-enforcement map is for station managers, enforcement officers and admins"
        )
    now = now or datetime.now(UTC)
    start, end = map_period(settings.maps.default_days, now, q.start, q.end)
    _check_period(start, end)
    grids = _grids_frame(list_grids(session))
    border, band, distance = border_layers(session, settings)
    reported = incident_points(
        session,
        principal,
        IncidentQuery(start=start, end=end, categories=q.categories, statuses=q.statuses),
        settings.incidents,
        now=now,
        max_rows=settings.maps.max_incidents,
    )
    # Open ones are current work whenever reported (within the statuses asked for, if any).
    open_statuses = tuple(s for s in OPEN if not q.statuses or s in q.statuses)
    open_now = (
        incident_points(
            session,
            principal,
            IncidentQuery(categories=q.categories, statuses=open_statuses),
            settings.incidents,
            now=now,
            max_rows=settings.maps.max_incidents,
        )
        if open_statuses
        else reported.iloc[:0]
    )
    incidents = current_and_reported(open_now, reported, settings.maps.max_incidents)
    incidents["near_border"] = incidents.border_distance_m <= distance
    # A case sits where all its incidents are, whatever the filter shows (one query for all cases).
    members = pd.DataFrame(
        session.execute(
            select(Incident.joint_case_id, Incident.id, Incident.lon, Incident.lat).where(
                Incident.joint_case_id.is_not(None)
            )
        ).all(),
        columns=["case", "id", "lon", "lat"],
    )
    by_case = members.groupby("case").agg(ids=("id", list), lon=("lon", "mean"), lat=("lat", "mean"))
    cases = [
        {
            **case,
            "incident_ids": sorted(int(i) for i in by_case.at[case["id"], "ids"]),
            "lon": float(by_case.at[case["id"], "lon"]),
            "lat": float(by_case.at[case["id"], "lat"]),
        }
        for case in list_joint_cases(session, principal)
        if case["id"] in by_case.index
    ]
    return JointMapData(
        start=start,
        end=end,
        grids=grids,
        border=border,
        border_band=band,
        border_distance_m=distance,
        incidents=incidents,
        cases=cases,
        labels=Labels.load(session),
        filters=q,
    )


def joint_case_map_data(
    session: Session, principal: Principal, case: dict, settings: Settings, *, now: datetime | None = None
) -> JointMapData:
    """The joint map of one case (``patrol.joint.joint_case_detail``, read by the caller under its
    rules): both sides' grids, the border, the case's incidents and its star; the period runs from
    the first incident seen to ``now``."""
    now = now or datetime.now(UTC)
    border, band, distance = border_layers(session, settings)
    incidents = incident_points(
        session, principal, IncidentQuery(joint_case_id=case["id"]), settings.incidents, now=now
    )
    incidents["near_border"] = incidents.border_distance_m <= distance
    start = incidents.observed_at.min() if len(incidents) else pd.Timestamp(now)
    cases = []
    if len(incidents):
        cases.append(
            {
                **case,
                "incident_ids": [int(i) for i in incidents.id],
                "lon": float(incidents.lon.mean()),
                "lat": float(incidents.lat.mean()),
            }
        )
    return JointMapData(
        start=min(start.to_pydatetime(), now),
        end=now,
        grids=_grids_frame(list_grids(session)),
        border=border,
        border_band=band,
        border_distance_m=distance,
        incidents=incidents,
        cases=cases,
        labels=Labels.load(session),
    )


# --- patrol replay -----------------------------------------------------------------------------


@dataclass
class ReplayTrack:
    patrol_id: int
    team: str
    transport: str
    members: str
    distance_km: float
    lon: np.ndarray
    lat: np.ndarray
    seconds: np.ndarray  # epoch seconds (UTC) of each kept fix


@dataclass
class ReplayData:
    title: str
    tracks: list[ReplayTrack]
    visits: pd.DataFrame  # patrol_id, grid, entered (s), exited (s)
    grids: gpd.GeoDataFrame  # the grids around the tracks, ``crossed`` marked
    labels: Labels


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` fixes spread evenly in order, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def replay_data(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    patrol_id: int | None = None,
    team: str | None = None,
    day: date | None = None,
) -> ReplayData:
    """One patrol, or the patrols of one team on one local (China) day, that the user may see."""
    labels = Labels.load(session)
    if patrol_id is not None:
        patrols = [get_patrol(session, principal, patrol_id)]  # NotFound when not visible
        title = f"巡护回放 Patrol replay #{patrol_id}"
    else:
        if team not in labels.teams:
            raise NotFound(f"no team {team!r}")
        begin = datetime.combine(day, time(), tzinfo=LOCAL_TIME)
        query = select(Patrol).where(
            Patrol.team == team, Patrol.started_at >= begin, Patrol.started_at < begin + timedelta(days=1)
        )
        visible = visible_patrols_clause(session, principal)
        if visible is not None:
            query = query.where(visible)
        patrols = list(session.scalars(query.order_by(Patrol.started_at, Patrol.id)))
        if not patrols:
            raise NotFound(f"no patrol of team {team} on {day.isoformat()} that you may see")
        title = f"巡护回放 Patrol replay {labels.teams[team][0]} {day.isoformat()}"

    names = member_names(session, [p.id for p in patrols])
    tracks = []
    for patrol in patrols:
        fixes = patrol_fixes(session, patrol.id)
        usable = (fixes["flags"] == 0) & ~np.isnat(fixes["time"])
        lon, lat = fixes["wgs84_lon"][usable], fixes["wgs84_lat"][usable]
        seconds = fixes["time"][usable].astype("datetime64[ms]").astype(np.int64) / 1000
        keep = _thin(len(lon), settings.maps.replay_max_points)
        tracks.append(
            ReplayTrack(
                patrol_id=patrol.id,
                team=patrol.team,
                transport=patrol.transport,
                members=", ".join(names.get(patrol.id, [])),
                distance_km=round(patrol.distance_m / 1000, 2),
                lon=lon[keep],
                lat=lat[keep],
                seconds=seconds[keep],
            )
        )
    if not any(len(t.lon) for t in tracks):
        raise InvalidRequest("these patrols have no timed fixes to replay")

    visit_rows = session.execute(
        select(PatrolVisit.patrol_id, Grid.code, PatrolVisit.entered_at, PatrolVisit.exited_at)
        .join(Grid, Grid.id == PatrolVisit.grid_id)
        .where(PatrolVisit.patrol_id.in_([p.id for p in patrols]))
        .order_by(PatrolVisit.entered_at)
    ).all()
    visits = pd.DataFrame(visit_rows, columns=["patrol_id", "grid", "entered", "exited"])
    for column in ("entered", "exited"):
        # Seconds since 1970 whatever unit pandas holds the times in (pandas 3 may use µs, not ns).
        visits[column] = (pd.to_datetime(visits[column], utc=True) - EPOCH) / pd.Timedelta(seconds=1)

    lon = np.concatenate([t.lon for t in tracks])
    lat = np.concatenate([t.lat for t in tracks])
    pad = 0.02  # degrees, ≈ 2 km: the grids around the walk, for orientation
    records = list_grids(session, bbox=(lon.min() - pad, lat.min() - pad, lon.max() + pad, lat.max() + pad))
    grids = _grids_frame(records)
    grids["crossed"] = grids.code.isin(set(visits.grid))
    return ReplayData(title=title, tracks=tracks, visits=visits, grids=grids, labels=labels)
