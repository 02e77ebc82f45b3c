"""The layers of an export as GeoDataFrames (WGS84), built through the domain's own query functions
with the same filters and visibility as the lists: never a copy of the visibility rules.

Each layer is read in chunks (incidents page by page through ``query_incidents``' cursor, patrols
page by page through ``list_patrols``) so that a writer never holds a whole large layer in memory.
Every chunk is cast to the layer's fixed schema, so that the first chunk (which creates the GDAL
layer) and the later ones (appended) agree even when a page happens to hold only nulls in a column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy.orm import Session

from patrol.accounts import Principal
from patrol.effort import EffortFilter, grid_effort
from patrol.errors import InvalidRequest
from patrol.grids import list_grids
from patrol.incidents import IncidentQuery, counts_by_grid, query_incidents
from patrol.joint import list_joint_cases
from patrol.patrols import PatrolQuery, list_patrols, patrol_fixes, patrol_properties
from patrol.settings import Settings

CRS = "EPSG:4326"
LAYERS = ("grids", "effort", "patrols", "incidents", "joint_cases")
PATROL_PAGE = 500  # patrols carry their full line: fewer per page than incidents

# Column → pandas dtype of each layer (text is "object" so that None stays a null).
TEXT, INT, FLOAT, BOOL = "object", "Int64", "float64", "boolean"
SCHEMAS: dict[str, dict[str, str]] = {
    "grids": {
        "code": TEXT, "name_zh": TEXT, "name_en": TEXT, "side": TEXT, "town": TEXT, "team": TEXT,
        "station": TEXT, "kind": TEXT, "area_ha": FLOAT, "approximate": BOOL, "source": TEXT,
        "version": INT, "updated_at": TEXT,
    },
    "effort": {
        "code": TEXT, "name_zh": TEXT, "name_en": TEXT, "side": TEXT, "town": TEXT, "team": TEXT,
        "area_ha": FLOAT, "patrols": INT, "patrol_days": INT, "km": FLOAT, "hours": FLOAT,
        "person_hours": FLOAT, "km_per_ha": FLOAT, "last_patrolled": TEXT, "coverage": FLOAT,
    },
    "patrols": {
        "id": INT, "side": TEXT, "team": TEXT, "members": TEXT, "transport": TEXT, "datum": TEXT,
        "started_at": TEXT, "ended_at": TEXT, "distance_km": FLOAT, "duration_min": FLOAT,
        "outside_grids_km": FLOAT, "fixes": INT, "flagged_fixes": INT, "grids": TEXT, "warnings": TEXT,
        "source_name": TEXT, "source_format": TEXT, "uploaded_at": TEXT, "notes": TEXT,
    },
    "incidents": {
        "id": INT, "category": TEXT, "severity": TEXT, "level": TEXT, "status": TEXT, "overdue": TEXT,
        "description": TEXT, "observed_at": TEXT, "reported_at": TEXT, "reporter": TEXT, "lon": FLOAT,
        "lat": FLOAT, "grid": TEXT, "grid_match": TEXT, "grid_distance_m": FLOAT, "side": TEXT,
        "town": TEXT, "border_distance_m": FLOAT, "referred_to": TEXT, "joint_case_id": INT,
        "duplicate_of": INT, "patrol_id": INT, "accept_due": TEXT, "resolve_due": TEXT,
        "responded_at": TEXT, "resolved_at": TEXT, "closed_at": TEXT, "version": INT,
    },
    "joint_cases": {
        "id": INT, "title": TEXT, "status": TEXT, "opened_at": TEXT, "closed_at": TEXT, "version": INT,
        "participants": TEXT, "incident_count": INT, "last_action_at": TEXT, "last_mechanism": TEXT,
    },
}  # fmt: skip
GEOMETRY_TYPES = {
    "grids": "MultiPolygon",
    "effort": "MultiPolygon",
    "patrols": "MultiLineString",
    "incidents": "Point",
    "joint_cases": "MultiPoint",  # where its incidents (those the reader may see) are
}


@dataclass
class ExportScope:
    """What to export: the incident list's filters (``IncidentQuery``) and, for patrols and effort,
    a team and a member. Each layer takes those its own list function takes:

    - grids: side, town, grid, bbox
    - effort: datetime, side, town, grid, team, member
    - patrols: datetime, side, grid (any of them), team, member
    - incidents: all the incident list's filters
    - joint_cases: none (all the cases the reader may see, as ``/joint-cases``); each is placed at
      the incidents of it the reader may see
    """

    incidents: IncidentQuery = field(default_factory=IncidentQuery)
    team: str | None = None
    member: str | None = None


@dataclass
class Layer:
    name: str
    count: int
    chunks: Callable[[], Iterator[gpd.GeoDataFrame]]
    # patrol id → its stored fixes (for GPX tracks with a time per point)
    fixes: Callable[[int], dict[str, np.ndarray]] | None = None

    @property
    def geometry_type(self) -> str:
        return GEOMETRY_TYPES[self.name]

    def empty(self) -> gpd.GeoDataFrame:
        return conform(self.name, pd.DataFrame(), [])


def conform(name: str, rows: pd.DataFrame, geometries) -> gpd.GeoDataFrame:
    """``rows`` with exactly the layer's columns and dtypes, and its geometry (multi where the layer
    is multi, so that GeoPackage and Shapefile get one geometry type per layer)."""
    schema = SCHEMAS[name]
    frame = rows.reindex(columns=list(schema)).astype(schema) if len(rows) else _empty_frame(schema)
    geoms = np.asarray(geometries, dtype=object)
    if GEOMETRY_TYPES[name].startswith("Multi") and len(geoms):
        geoms = _as_multi(geoms)
    return gpd.GeoDataFrame(frame.reset_index(drop=True), geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)


def _empty_frame(schema: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series([], dtype=v) for k, v in schema.items()})


def _as_multi(geoms: np.ndarray) -> np.ndarray:
    kinds = shapely.get_type_id(geoms)
    out = geoms.copy()
    for single, multi in (
        (0, shapely.multipoints),
        (1, shapely.multilinestrings),
        (3, shapely.multipolygons),
    ):
        which = kinds == single
        if which.any():
            out[which] = [multi([g]) for g in geoms[which]]
    return out


# --- counting and building ------------------------------------------------------------------------


def _towns(scope: ExportScope) -> tuple[str | None, ...]:
    return scope.incidents.towns or (None,)


def _grid_records(session: Session, scope: ExportScope):
    q = scope.incidents
    records = [g for town in _towns(scope) for g in list_grids(session, side=q.side, town=town, bbox=q.bbox)]
    if q.grids:
        existing = {g.code for g in list_grids(session, include_retired=True)}
        missing = sorted(set(q.grids) - existing)
        if missing:
            raise InvalidRequest(f"unknown grid(s): {', '.join(missing)}", field="grid")
        records = [g for g in records if g.code in q.grids]
    return records


def grids_layer(session: Session, scope: ExportScope) -> Layer:
    records = _grid_records(session, scope)

    def chunks():
        rows = pd.DataFrame([g.properties() for g in records])
        yield conform("grids", rows, [g.geometry for g in records])

    return Layer("grids", len(records), chunks)


def effort_layer(session: Session, settings: Settings, scope: ExportScope) -> Layer:
    q = scope.incidents
    rows: list[dict] = []
    for town in _towns(scope):
        flt = EffortFilter(
            start=q.start, end=q.end, side=q.side, town=town, team=scope.team, member=scope.member,
            grids=q.grids,
        )  # fmt: skip
        rows += grid_effort(session, flt, swath_width_m=settings.patrols.swath_width_m)
    # Effort rows carry no outline: each gets its grid's, as in the station map.
    outlines = {g.code: g.geometry for g in list_grids(session)}

    def chunks():
        yield conform("effort", pd.DataFrame(rows), [outlines.get(r["code"]) for r in rows])

    return Layer("effort", len(rows), chunks)


def _patrol_queries(scope: ExportScope, limit: int) -> list[PatrolQuery]:
    q = scope.incidents
    base = PatrolQuery(
        start=q.start, end=q.end, side=q.side, team=scope.team, member=scope.member, limit=limit
    )
    return [replace(base, grid=code) for code in q.grids] or [base]


def _flat(value) -> str | None:
    """A list or mapping as one text field: names joined, anything else as JSON."""
    if value is None or value == [] or value == {}:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    if isinstance(value, list) and all(isinstance(v, dict) and "grid" in v for v in value):
        return "; ".join(str(v["grid"]) for v in value)
    return json.dumps(value, ensure_ascii=False)


def patrols_layer(session: Session, principal: Principal, settings: Settings, scope: ExportScope) -> Layer:
    page = min(settings.exports.page_size, PATROL_PAGE)
    queries = _patrol_queries(scope, page)
    # With several grids a patrol through two of them is counted twice here (an upper bound for
    # the cap) but written once.
    count = sum(list_patrols(session, principal, replace(q, limit=1))[3] for q in queries)

    def chunks():
        seen: set[int] = set()
        for q in queries:
            offset = 0
            while True:
                found, geoms, names, _ = list_patrols(
                    session, principal, replace(q, offset=offset), simplified=False
                )
                if not found:
                    break
                offset += len(found)
                keep = [i for i, p in enumerate(found) if p.id not in seen]
                seen.update(p.id for p in found)
                rows = []
                for i in keep:
                    props = patrol_properties(found[i], names[found[i].id])
                    rows.append({k: _flat(v) if isinstance(v, list | dict) else v for k, v in props.items()})
                if rows:
                    yield conform("patrols", pd.DataFrame(rows), [geoms[i] for i in keep])
                if len(found) < q.limit:
                    break

    return Layer("patrols", count, chunks, fixes=lambda patrol_id: patrol_fixes(session, patrol_id))


def incidents_layer(
    session: Session, principal: Principal, settings: Settings, scope: ExportScope, now: datetime
) -> Layer:
    q = replace(scope.incidents, limit=settings.exports.page_size, sort="id", cursor=None)
    count = sum(r["count"] for r in counts_by_grid(session, principal, q, settings.incidents, now=now))

    def chunks():
        page = q
        while True:
            items, cursor = query_incidents(session, principal, page, settings.incidents, now=now)
            if items:
                rows = pd.DataFrame(items)
                yield conform("incidents", rows, shapely.points(rows["lon"], rows["lat"]))
            if cursor is None:
                break
            page = replace(page, cursor=cursor)

    return Layer("incidents", count, chunks)


def joint_cases_layer(
    session: Session, principal: Principal, settings: Settings, scope: ExportScope, now: datetime
) -> Layer:
    cases = list_joint_cases(session, principal)  # open and closed; refuses those who may not see cases

    def where(case_id: int):
        # Only the incidents the reader may see mark where a case is (the list's own visibility).
        q = IncidentQuery(joint_case_id=case_id, limit=10_000, sort="id")
        items, _ = query_incidents(session, principal, q, settings.incidents, now=now)
        return shapely.multipoints([(i["lon"], i["lat"]) for i in items]) if items else None

    def chunks():
        rows = [
            {
                **{k: c[k] for k in ("id", "title", "status", "opened_at", "closed_at", "version")},
                "participants": "; ".join(p["username"] for p in c["participants"]),
                "incident_count": c["incident_count"],
                "last_action_at": (c["last_action"] or {}).get("at"),
                "last_mechanism": (c["last_action"] or {}).get("mechanism"),
            }
            for c in cases
        ]
        yield conform("joint_cases", pd.DataFrame(rows), [where(c["id"]) for c in cases])

    return Layer("joint_cases", len(cases), chunks)


def build_layers(
    session: Session,
    principal: Principal,
    settings: Settings,
    scope: ExportScope,
    names: tuple[str, ...],
    now: datetime,
) -> list[Layer]:
    """The requested layers, in ``LAYERS`` order, each counted (its rows are read when written)."""
    builders = {
        "grids": lambda: grids_layer(session, scope),
        "effort": lambda: effort_layer(session, settings, scope),
        "patrols": lambda: patrols_layer(session, principal, settings, scope),
        "incidents": lambda: incidents_layer(session, principal, settings, scope, now),
        "joint_cases": lambda: joint_cases_layer(session, principal, settings, scope, now),
    }
    return [builders[name]() for name in LAYERS if name in names]
