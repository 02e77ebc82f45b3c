"""Loading the reference geodata the project ships (approximate, replaceable by a survey import)."""

from __future__ import annotations

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, Polygon
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata import reference
from patrol.models import Boundary, Grid, IncidentCategory, Side, Station, Team, Town, utcnow

REFERENCE_SOURCE = "reference: authored by the project from domain.md (approximate)"


def _multi(geom):
    return MultiPolygon([geom]) if isinstance(geom, Polygon) else geom


# The starting taxonomy of incidents (an admin may add more; existing labels are never overwritten).
INCIDENT_CATEGORIES = [
    ("cutting", "砍伐/毁坏红树林", "Cutting or damaging mangroves"),
    ("aquaculture", "非法养殖/围塘", "Illegal aquaculture or enclosure"),
    ("fishing_digging", "非法捕捞/挖掘", "Illegal fishing or digging on the flats"),
    ("pollution", "污染/排污", "Pollution or effluent"),
    ("rubbish", "垃圾", "Rubbish"),
    ("cordgrass", "互花米草入侵", "Invasive smooth cordgrass (Spartina)"),
    ("pests", "病虫害", "Pests (e.g. isopods, moths)"),
    ("fire", "火情", "Fire"),
    ("bird_disturbance", "惊扰鸟类", "Disturbance of birds"),
    ("facilities", "设施损坏", "Damaged signs, fences or facilities"),
    ("other", "其他", "Other"),
]


def _add_missing_categories(session: Session) -> None:
    existing = set(session.scalars(select(IncidentCategory.code)))
    for order, (code, zh, en) in enumerate(INCIDENT_CATEGORIES):
        if code not in existing:
            session.add(
                IncidentCategory(code=code, label_zh=zh, label_en=en, sort_order=order * 10, active=True)
            )
    session.flush()


def load_reference(session: Session) -> dict[str, int]:
    """Upsert sides, towns, stations, teams and the border; add the reference grids of a side only
    when that side has no grids yet (an official import is never overwritten). Idempotent."""
    places = reference.load_places()
    for row in places["sides"]:
        session.merge(Side(code=row["code"], name_zh=row["name_zh"], name_en=row["name_en"]))
    session.flush()
    for row in places["towns"]:
        session.merge(
            Town(
                code=row["code"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                side=row["side"],
                seat=from_shape(Point(row["seat"]), srid=4326),
            )
        )
    session.flush()
    for row in places["stations"]:
        session.merge(
            Station(
                code=row["code"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                side=row["side"],
                town=row.get("town"),
                approximate=bool(row.get("approximate", True)),
                note=row.get("note"),
                location=from_shape(Point(row["location"]), srid=4326),
            )
        )
    session.flush()
    for row in places["teams"]:
        session.merge(
            Team(
                code=row["code"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                side=row["side"],
                town=row.get("town"),
                station=row.get("station"),
            )
        )
    border = reference.load_border().iloc[0]
    session.merge(
        Boundary(
            code=border["code"],
            name_zh=border["name_zh"],
            name_en=border["name_en"],
            approximate=True,
            geom=from_shape(border.geometry, srid=4326),
        )
    )
    session.flush()

    added = 0
    grids = reference.load_grids()
    sides_with_grids = set(session.scalars(select(Grid.side).group_by(Grid.side)))
    now = utcnow()
    for row in grids.itertuples(index=False):
        if row.side in sides_with_grids:
            continue
        session.add(
            Grid(
                code=row.code,
                name_zh=row.name_zh,
                name_en=row.name_en,
                side=row.side,
                town=row.town,
                team=row.team,
                station=row.station,
                kind=row.kind,
                area_ha=float(row.area_ha),
                source=REFERENCE_SOURCE,
                approximate=True,
                created_at=now,
                updated_at=now,
                geom=from_shape(_multi(row.geometry), srid=4326),
            )
        )
        added += 1
    session.flush()
    _add_missing_categories(session)
    return {"grids_added": added, "grids_total": session.scalar(select(func.count(Grid.id)))}
