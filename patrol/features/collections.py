"""The feature collections the service publishes (OGC API – Features), over the domain's tables.

Each collection says what its rows are, which properties a filter or ``sortby`` may name
(queryables), and who may read it — by calling the same visibility functions the JSON API uses
(``patrol.incidents.visible_clause``, ``patrol.patrols.visible_patrols_clause``,
``patrol.joint.can_see_cases``), never a copy of their rules. The web layer never builds SQL: it
hands :func:`read_items` parsed parameters and gets features back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from patrol.accounts import Principal
from patrol.effort import EffortFilter, grid_effort
from patrol.errors import InvalidRequest, PermissionDenied
from patrol.features.cql2 import Compiler, Queryable
from patrol.incidents import incident_row, list_select, visible_clause
from patrol.joint import can_see_cases
from patrol.models import Boundary, Grid, Incident, JointCase, JointCaseParticipant, Patrol, User, iso_utc
from patrol.patrols import member_names, visible_patrols_clause
from patrol.settings import Settings
from patrol.spatial import envelope, intersects_bbox

BBox = tuple[float, float, float, float]
# The effort collection without a ``datetime``: the last 30 days, as the station map shows.
DEFAULT_EFFORT_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class ItemsQuery:
    """What a client asked of a collection, already parsed and in storage coordinates (lon/lat)."""

    bbox: BBox | None = None
    area: shapely.Geometry | None = None  # the bbox as drawn in bbox-crs, when not lon/lat
    start: datetime | None = None
    end: datetime | None = None
    filter: dict[str, Any] | None = None  # CQL2-JSON
    filter_to_storage: Callable[[shapely.Geometry], shapely.Geometry] | None = None
    equals: dict[str, str] = field(default_factory=dict)  # queryables as query parameters
    sortby: tuple[tuple[str, bool], ...] = ()  # (property, descending)
    limit: int = 100
    offset: int = 0
    # The id of the previous page's last feature (the default order only): pages found by key cost
    # the same however deep, where an offset makes the database walk every row before it.
    after: Any = None


@dataclass
class Page:
    ids: list[Any]
    geometries: list[shapely.Geometry | None] | None  # None: points, given as lon/lat below
    properties: list[dict[str, Any]]
    number_matched: int | None  # None: not counted (pages after the first)
    lonlat: tuple[np.ndarray, np.ndarray] | None = None
    more: bool = False  # another page follows


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    geometry_type: str
    public: bool
    keywords: tuple[str, ...] = ()
    # Set by the collection definitions below.
    id_column: Any = None
    geometry_column: Any = None
    temporal: Any = None  # an instant column the ``datetime`` parameter filters on

    def queryables(self) -> dict[str, Queryable]:
        return QUERYABLES[self.id]()

    def may_read(self, principal: Principal | None) -> bool:
        if self.public:
            return True
        if principal is None:
            return False
        if self.id == "joint-cases":
            return can_see_cases(principal)
        return True


def _grid_queryables() -> dict[str, Queryable]:
    return {
        "geometry": Queryable(Grid.geom, "geometry"),
        "code": Queryable(Grid.code, "string", "网格编号 grid code"),
        "name_zh": Queryable(Grid.name_zh, "string", "名称"),
        "name_en": Queryable(Grid.name_en, "string", "name"),
        "side": Queryable(Grid.side, "string", "GD-LJ Lianjiang or GX-HP Hepu", ("GD-LJ", "GX-HP")),
        "town": Queryable(Grid.town, "string", "town code"),
        "team": Queryable(Grid.team, "string", "patrol team"),
        "station": Queryable(Grid.station, "string", "station"),
        "area_ha": Queryable(Grid.area_ha, "number", "area, hectares"),
        "updated_at": Queryable(Grid.updated_at, "timestamp", "last changed"),
    }


def _incident_queryables() -> dict[str, Queryable]:
    return {
        "geometry": Queryable(Incident.geom, "geometry"),
        "id": Queryable(Incident.id, "integer"),
        "category": Queryable(Incident.category, "string", "category code"),
        "severity": Queryable(Incident.severity, "string", "严重程度", ("low", "medium", "high", "critical")),
        "level": Queryable(Incident.level, "string", "handling level", ("village", "town", "county")),
        "status": Queryable(Incident.status, "string", "状态 status"),
        "description": Queryable(Incident.description, "string", "note"),
        "observed_at": Queryable(Incident.observed_at, "timestamp", "seen at"),
        "reported_at": Queryable(Incident.reported_at, "timestamp", "reported at"),
        "grid": Queryable(Grid.code, "string", "grid code"),
        "side": Queryable(Incident.side, "string", "side", ("GD-LJ", "GX-HP")),
        "town": Queryable(Incident.town, "string", "town code"),
        "border_distance_m": Queryable(Incident.border_distance_m, "number", "distance to the border, m"),
        "referred_to": Queryable(Incident.referred_to, "string", "referred to side"),
        "joint_case_id": Queryable(Incident.joint_case_id, "integer", "joint case"),
        "patrol_id": Queryable(Incident.patrol_id, "integer", "patrol it was found on"),
        "reporter": Queryable(User.username, "string", "reporter's username"),
        "accept_due": Queryable(Incident.accept_due, "timestamp"),
        "resolve_due": Queryable(Incident.resolve_due, "timestamp"),
        "resolved_at": Queryable(Incident.resolved_at, "timestamp"),
        "closed_at": Queryable(Incident.closed_at, "timestamp"),
    }


def _patrol_queryables() -> dict[str, Queryable]:
    return {
        "geometry": Queryable(Patrol.geom, "geometry"),
        "id": Queryable(Patrol.id, "integer"),
        "side": Queryable(Patrol.side, "string", "side", ("GD-LJ", "GX-HP")),
        "team": Queryable(Patrol.team, "string", "patrol team"),
        "transport": Queryable(Patrol.transport, "string", "on foot or by boat", ("foot", "boat")),
        "started_at": Queryable(Patrol.started_at, "timestamp"),
        "ended_at": Queryable(Patrol.ended_at, "timestamp"),
        "distance_m": Queryable(Patrol.distance_m, "number", "length, metres"),
        "duration_s": Queryable(Patrol.duration_s, "number", "duration, seconds"),
        "fixes": Queryable(Patrol.fix_count, "integer", "GPS fixes"),
        "source_name": Queryable(Patrol.source_name, "string", "uploaded file name"),
        "uploaded_at": Queryable(Patrol.uploaded_at, "timestamp"),
    }


def _joint_case_queryables() -> dict[str, Queryable]:
    return {
        "id": Queryable(JointCase.id, "integer"),
        "title": Queryable(JointCase.title, "string", "案件 title"),
        "status": Queryable(JointCase.status, "string", "open or closed", ("open", "closed")),
        "opened_at": Queryable(JointCase.opened_at, "timestamp"),
        "closed_at": Queryable(JointCase.closed_at, "timestamp"),
    }


def _border_queryables() -> dict[str, Queryable]:
    return {
        "geometry": Queryable(Boundary.geom, "geometry"),
        "code": Queryable(Boundary.code, "string"),
        "name_zh": Queryable(Boundary.name_zh, "string"),
        "name_en": Queryable(Boundary.name_en, "string"),
    }


QUERYABLES: dict[str, Callable[[], dict[str, Queryable]]] = {
    "grids": _grid_queryables,
    "zones": _grid_queryables,
    "effort": _grid_queryables,
    "border": _border_queryables,
    "patrols": _patrol_queryables,
    "incidents": _incident_queryables,
    "joint-cases": _joint_case_queryables,
}

COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            "grids", "网格 Protection grids",
            "The mangrove protection grids of both sides (Lianjiang's 26 and any Hepu grids); "
            "WGS84 polygons.", "MultiPolygon", True, ("grid", "mangrove"),
            Grid.code, Grid.geom,
        ),
        Collection(
            "zones", "山口保护区巡护区 Hepu reserve zones",
            "The Shankou mangrove reserve's patrol zones (Hepu, Guangxi).", "MultiPolygon", True,
            ("zone", "Shankou"), Grid.code, Grid.geom,
        ),
        Collection(
            "border", "省界 Provincial border",
            "The Guangdong–Guangxi provincial border (approximate).", "LineString", True, ("border",),
            Boundary.code, Boundary.geom,
        ),
        Collection(
            "effort", "巡护工作量 Grid effort",
            "Patrol effort per grid and Hepu zone (patrols, patrol-days, km, hours, coverage) for the `datetime` "
            "interval (default: the last 30 days), as properties of the grid polygons.",
            "MultiPolygon", False, ("effort",), Grid.code, Grid.geom,
        ),
        Collection(
            "patrols", "巡护轨迹 Patrols", "Uploaded patrol tracks (simplified lines) you may see.",
            "MultiLineString", False, ("patrol", "track"), Patrol.id, Patrol.geom,
            func.coalesce(Patrol.started_at, Patrol.uploaded_at),
        ),
        Collection(
            "incidents", "事件 Incidents", "Reported incidents you may see (points, WGS84).",
            "Point", False, ("incident",), Incident.id, Incident.geom,
            Incident.observed_at,
        ),
        Collection(
            "joint-cases", "联合执法案件 Joint cases",
            "Cases both sides work together (五联); the geometry holds the case's incidents.",
            "MultiPoint", False, ("joint case",), JointCase.id, None,
            JointCase.opened_at,
        ),
    )
}  # fmt: skip


GRID_PROPERTIES = ("code", "name_zh", "name_en", "side", "town", "team", "station", "kind", "area_ha",
                   "approximate", "version", "updated_at")  # fmt: skip
# The properties each collection's features carry (what ``properties=`` may choose from).
PROPERTIES: dict[str, tuple[str, ...]] = {
    "grids": GRID_PROPERTIES,
    "zones": GRID_PROPERTIES,
    "effort": (*GRID_PROPERTIES, "patrols", "patrol_days", "km", "hours", "person_hours", "km_per_ha",
               "last_patrolled", "coverage", "period_start", "period_end"),
    "border": ("code", "name_zh", "name_en", "approximate"),
    "patrols": ("id", "side", "team", "members", "transport", "datum", "started_at", "ended_at",
                "distance_m", "duration_s", "outside_grids_m", "fixes", "flagged_fixes", "source_name",
                "uploaded_at"),
    "incidents": ("id", "category", "severity", "level", "status", "overdue", "description", "observed_at",
                  "reported_at", "reporter", "lon", "lat", "grid", "grid_match", "grid_distance_m", "side",
                  "town", "border_distance_m", "referred_to", "joint_case_id", "duplicate_of", "patrol_id",
                  "accept_due", "resolve_due", "responded_at", "resolved_at", "closed_at", "version"),
    "joint-cases": ("id", "title", "status", "opened_at", "closed_at", "incident_count", "participants"),
}  # fmt: skip


# The integer key SpatiaLite's spatial index knows rows by (the ROWID), where it differs from the id.
ROWIDS = {
    "grids": Grid.id,
    "zones": Grid.id,
    "effort": Grid.id,
    "patrols": Patrol.id,
    "incidents": Incident.id,
}


def get_collection(collection_id: str, principal: Principal | None) -> Collection:
    """The collection, or PermissionDenied when the caller may not read it (an anonymous caller
    learns only that it needs to sign in)."""
    collection = COLLECTIONS[collection_id]
    if not collection.may_read(principal):
        raise PermissionDenied(f"the collection {collection_id!r} is not open to you")
    return collection


def readable(principal: Principal | None) -> list[Collection]:
    return [c for c in COLLECTIONS.values() if c.may_read(principal)]


# --- reading items --------------------------------------------------------------------------


def _base(
    collection: Collection, session: Session, principal: Principal | None, settings: Settings
) -> Select:
    """The collection's rows the caller may see, before the client's own conditions."""
    cid = collection.id
    if cid == "effort":  # every active grid and zone, as GET /api/v1/effort
        return select(Grid).where(Grid.retired_at.is_(None))
    if cid in ("grids", "zones"):
        kind = "zone" if cid == "zones" else "grid"
        return select(Grid).where(Grid.kind == kind, Grid.retired_at.is_(None))
    if cid == "border":
        return select(Boundary)
    if cid == "patrols":
        query = select(Patrol)
        visible = visible_patrols_clause(session, principal)
        return query if visible is None else query.where(visible)
    if cid == "incidents":
        query = list_select()
        visible = visible_clause(principal, settings.incidents)
        return query if visible is None else query.where(visible)
    if cid == "joint-cases":
        return select(JointCase)  # may_read has checked can_see_cases: they see every case
    raise KeyError(cid)


def _conditions(collection: Collection, session: Session, q: ItemsQuery) -> list[Any]:
    dialect = session.bind.dialect.name
    queryables = collection.queryables()
    where = []
    if q.bbox is not None:
        if collection.geometry_column is None:
            where.append(
                collection.id_column.in_(
                    select(Incident.joint_case_id).where(
                        intersects_bbox(dialect, Incident.id, Incident.geom, q.bbox)
                    )
                )
            )
        else:
            rowid = ROWIDS.get(collection.id)
            if rowid is None:  # a small table without a spatial index
                found = func.ST_Intersects(collection.geometry_column, envelope(dialect, q.bbox))
                where.append(found == 1 if dialect == "sqlite" else found)
            else:
                where.append(intersects_bbox(dialect, rowid, collection.geometry_column, q.bbox))
            if q.area is not None:
                exact = func.ST_Intersects(collection.geometry_column, func.ST_GeomFromText(q.area.wkt, 4326))
                where.append(exact == 1 if dialect == "sqlite" else exact)
    if collection.temporal is not None and collection.id != "effort":
        if q.start is not None:
            where.append(collection.temporal >= q.start)
        if q.end is not None:
            where.append(collection.temporal < q.end)
    for name, value in q.equals.items():
        queryable = queryables[name]
        where.append(queryable.column == _typed(name, queryable, value))
    if q.filter is not None:
        compiler = Compiler(queryables, dialect, q.filter_to_storage or (lambda g: g))
        where.append(compiler.compile(q.filter))
    return where


def _typed(name: str, queryable: Queryable, value: str) -> Any:
    try:
        if queryable.type == "integer":
            return int(value)
        if queryable.type == "number":
            return float(value)
        if queryable.type == "boolean":
            return {"true": True, "false": False}[value.lower()]
        if queryable.type == "timestamp":
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    except (ValueError, KeyError):
        raise InvalidRequest(f"{name}={value!r} is not a {queryable.type}", field=name) from None
    if queryable.type == "geometry":
        raise InvalidRequest(f"{name} cannot be compared as a query parameter; use filter", field=name)
    return value


def _order(collection: Collection, q: ItemsQuery) -> list[Any]:
    queryables = collection.queryables()
    order = []
    for name, descending in q.sortby:
        column = queryables[name].column
        order.append(column.desc() if descending else column.asc())
    order.append(collection.id_column.asc())  # a stable order for paging
    return order


def read_items(
    session: Session,
    principal: Principal | None,
    collection_id: str,
    q: ItemsQuery,
    settings: Settings,
    *,
    now: datetime | None = None,
    count: bool = True,
) -> Page:
    """One page of a collection's features the caller may see, with the number that match."""
    collection = get_collection(collection_id, principal)
    now = now or datetime.now(UTC)
    query = _base(collection, session, principal, settings).where(*_conditions(collection, session, q))
    # Counting what a caller may see is most of a page's cost at a million rows (bench_ogc.py), so
    # the route asks for it on the first page only; numberMatched is optional in OGC API Features.
    matched = (
        session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) if count else None
    )
    if q.after is not None:
        query = query.where(collection.id_column > q.after)
    query = query.order_by(*_order(collection, q)).limit(q.limit + 1).offset(q.offset)
    if collection.geometry_column is not None and collection.id != "incidents":
        query = query.add_columns(func.ST_AsBinary(_output_geometry(collection)))
    rows = session.execute(query).all()
    more = len(rows) > q.limit
    page = _page(_features(collection, session, rows[: q.limit], q, now, settings), matched)
    page.more = more
    return page


def read_item(
    session: Session, principal: Principal | None, collection_id: str, item_id: str, settings: Settings
) -> Page:
    collection = get_collection(collection_id, principal)
    if collection.id_column.type.python_type is int:
        try:
            key: Any = int(item_id)
        except ValueError:
            return Page([], [], [], 0)
        if not -(2**63) <= key < 2**63:
            return Page([], [], [], 0)
    else:
        key = item_id
    query = _base(collection, session, principal, settings).where(collection.id_column == key)
    if collection.geometry_column is not None and collection.id != "incidents":
        query = query.add_columns(func.ST_AsBinary(_output_geometry(collection)))
    rows = session.execute(query).all()
    return _page(_features(collection, session, rows, ItemsQuery(), datetime.now(UTC), settings), len(rows))


def _page(parts: tuple, matched: int) -> Page:
    ids, geometries, properties, *lonlat = parts
    return Page(ids, geometries, properties, matched, lonlat[0] if lonlat else None)


def _output_geometry(collection: Collection):
    # Patrols are published as their simplified lines: a full track is for the patrol's own page.
    return Patrol.geom_simplified if collection.id == "patrols" else collection.geometry_column


def _features(collection, session, rows, q: ItemsQuery, now, settings):
    cid = collection.id
    if cid == "incidents":
        props = [incident_row(r, now) for r in rows]
        lon = np.fromiter((r.lon for r in rows), float, len(rows))
        lat = np.fromiter((r.lat for r in rows), float, len(rows))
        return [p["id"] for p in props], None, props, (lon, lat)
    if cid == "joint-cases":
        return _joint_cases(session, [r[0] for r in rows])
    objects = [r[0] for r in rows]
    geometries = [_geometry(r[-1]) for r in rows]
    if cid == "border":
        props = [{"code": b.code, "name_zh": b.name_zh, "name_en": b.name_en, "approximate": b.approximate}
                 for b in objects]  # fmt: skip
        return [b.code for b in objects], geometries, props
    if cid == "patrols":
        names = member_names(session, [p.id for p in objects])
        return [p.id for p in objects], geometries, [_patrol(p, names[p.id]) for p in objects]
    props = [_grid(g) for g in objects]
    if cid == "effort" and objects:
        start, end = q.start, q.end
        if start is None and end is None:
            end = now
            start = end - DEFAULT_EFFORT_PERIOD
        flt = EffortFilter(start=start, end=end, grids=tuple(g.code for g in objects))
        effort = {
            row["code"]: row
            for row in grid_effort(session, flt, swath_width_m=settings.patrols.swath_width_m)
        }
        for p in props:
            extra = {k: v for k, v in effort.get(p["code"], {}).items() if k not in p}
            p.update(extra, period_start=iso_utc(start), period_end=iso_utc(end))
    return [g.code for g in objects], geometries, props


def _geometry(wkb) -> shapely.Geometry | None:
    if wkb is None:
        return None
    geometry = shapely.from_wkb(bytes(wkb), on_invalid="ignore")
    return None if geometry is None or geometry.is_empty else geometry


def _grid(g: Grid) -> dict[str, Any]:
    return {
        "code": g.code, "name_zh": g.name_zh, "name_en": g.name_en, "side": g.side, "town": g.town,
        "team": g.team, "station": g.station, "kind": g.kind, "area_ha": g.area_ha,
        "approximate": g.approximate, "version": g.version, "updated_at": iso_utc(g.updated_at),
    }  # fmt: skip


def _patrol(p: Patrol, members: list[str]) -> dict[str, Any]:
    return {
        "id": p.id, "side": p.side, "team": p.team, "members": ", ".join(members),
        "transport": p.transport, "datum": p.datum, "started_at": iso_utc(p.started_at),
        "ended_at": iso_utc(p.ended_at), "distance_m": round(p.distance_m, 1),
        "duration_s": p.duration_s, "outside_grids_m": round(p.outside_distance_m, 1),
        "fixes": p.fix_count, "flagged_fixes": p.flagged_count, "source_name": p.source_name,
        "uploaded_at": iso_utc(p.uploaded_at),
    }  # fmt: skip


def _joint_cases(session: Session, cases: Sequence[JointCase]):
    ids = [c.id for c in cases]
    points: dict[int, list[tuple[float, float]]] = {i: [] for i in ids}
    for case_id, lon, lat in session.execute(
        select(Incident.joint_case_id, Incident.lon, Incident.lat)
        .where(Incident.joint_case_id.in_(ids))
        .order_by(Incident.id)
    ):
        points[case_id].append((lon, lat))
    people: dict[int, list[str]] = {i: [] for i in ids}
    for case_id, name in session.execute(
        select(JointCaseParticipant.case_id, User.username)
        .join(User, User.id == JointCaseParticipant.user_id)
        .where(JointCaseParticipant.case_id.in_(ids))
        .order_by(User.username)
    ):
        people[case_id].append(name)
    geometries = [shapely.multipoints(points[i]) if points[i] else None for i in ids]
    props = [
        {
            "id": c.id, "title": c.title, "status": c.status, "opened_at": iso_utc(c.opened_at),
            "closed_at": iso_utc(c.closed_at), "incident_count": len(points[c.id]),
            "participants": ", ".join(people[c.id]),
        }
        for c in cases
    ]  # fmt: skip
    return ids, geometries, props


__all__ = [
    "COLLECTIONS",
    "Collection",
    "ItemsQuery",
    "Page",
    "get_collection",
    "read_item",
    "read_items",
    "readable",
]
