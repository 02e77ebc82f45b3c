"""Grids: queries, the point → grid index, and replacing a side's grids from a survey file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.assign import GridIndex
from geodata.border import EAST, WEST, side_of_border
from geodata.crs import METRIC, WGS84, transformer
from geodata.errors import GeodataError, Problem
from geodata.filenames import printable_name
from geodata.gridfile import GridFileOptions, listed, overlap_pairs, read_grid_file
from patrol import audit
from patrol.accounts import Principal
from patrol.errors import InvalidRequest, NotFound
from patrol.models import Boundary, Grid, GridImport, Station, Team, Town, utcnow
from patrol.spatial import BBox, intersects_bbox

BORDER_CODE = "GD-GX-BORDER"
SIDE_OF_BORDER = {"GD-LJ": EAST, "GX-HP": WEST}
GRID_ATTRIBUTES = ("code", "name_zh", "name_en", "side", "town", "team", "station", "kind", "area_ha")


@dataclass(frozen=True)
class GridRecord:
    """A grid as the rest of the service sees it: attributes plus a shapely geometry."""

    code: str
    name_zh: str
    name_en: str
    side: str
    town: str | None
    team: str | None
    station: str | None
    kind: str
    area_ha: float
    approximate: bool
    source: str
    version: int
    updated_at: datetime
    retired_at: datetime | None
    geometry: Any

    def properties(self) -> dict[str, Any]:
        props = {k: v for k, v in asdict(self).items() if k != "geometry"}
        props["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        props["retired_at"] = self.retired_at.isoformat() if self.retired_at else None
        return props


def _records(session: Session, query) -> list[GridRecord]:
    rows = session.execute(query.add_columns(func.ST_AsBinary(Grid.geom))).all()
    geoms = shapely.from_wkb([bytes(wkb) for _, wkb in rows]) if rows else []
    return [
        GridRecord(
            code=g.code,
            name_zh=g.name_zh,
            name_en=g.name_en,
            side=g.side,
            town=g.town,
            team=g.team,
            station=g.station,
            kind=g.kind,
            area_ha=g.area_ha,
            approximate=g.approximate,
            source=g.source,
            version=g.version,
            updated_at=g.updated_at,
            retired_at=g.retired_at,
            geometry=geom,
        )
        for (g, _), geom in zip(rows, geoms)
    ]


def list_grids(
    session: Session,
    *,
    side: str | None = None,
    town: str | None = None,
    bbox: BBox | None = None,
    include_retired: bool = False,
) -> list[GridRecord]:
    query = select(Grid).order_by(Grid.code)
    if not include_retired:
        query = query.where(Grid.retired_at.is_(None))
    if side:
        query = query.where(Grid.side == side)
    if town:
        query = query.where(Grid.town == town)
    if bbox:
        query = query.where(intersects_bbox(session.bind.dialect.name, Grid.id, Grid.geom, bbox))
    return _records(session, query)


def get_grid(session: Session, code: str) -> GridRecord:
    records = _records(session, select(Grid).where(Grid.code == code))
    if not records:
        raise NotFound(f"no grid with code {code!r}")
    return records[0]


def grid_index(session: Session, side: str | None = None) -> GridIndex:
    """The point → grid index over the active grids (of one side, or all)."""
    records = list_grids(session, side=side)
    return GridIndex([r.code for r in records], [r.geometry for r in records])


# --- import --------------------------------------------------------------------------------------


@dataclass
class GridImportReport:
    side: str
    source_name: str
    source_format: str
    source_crs: str
    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    repaired: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    total_area_ha: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Lookup:
    """Resolve a town/team/station value given as a code or a Chinese or English name."""

    def __init__(self, rows, kind: str):
        self.kind = kind
        self.by_key: dict[str, Any] = {}
        for row in rows:
            for key in (row.code, row.name_zh, row.name_en):
                self.by_key[str(key).strip().casefold()] = row
        self.known = sorted(row.code for row in rows)

    def resolve(self, value, grid_code: str, problems: list[Problem]):
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
            return None
        row = self.by_key.get(str(value).strip().casefold())
        if row is None:
            problems.append(
                Problem(
                    f"unknown-{self.kind}",
                    f"grid {grid_code}: unknown {self.kind} {value!r}; known: {', '.join(self.known)}",
                    {"code": grid_code, "value": str(value)},
                )
            )
        return row


def _resolve_references(session: Session, grids: gpd.GeoDataFrame, side: str) -> list[dict]:
    """Attributes for each grid with town/team/station resolved to codes of ``side``."""
    towns = _Lookup(session.scalars(select(Town).where(Town.side == side)).all(), "town")
    teams = _Lookup(session.scalars(select(Team).where(Team.side == side)).all(), "team")
    stations = _Lookup(session.scalars(select(Station).where(Station.side == side)).all(), "station")
    team_of_town = {t.town: t for t in session.scalars(select(Team).where(Team.side == side)).all()}
    problems: list[Problem] = []
    rows = []
    for grid in grids.itertuples(index=False):
        town = towns.resolve(grid.town, grid.code, problems)
        team = teams.resolve(grid.team, grid.code, problems) or (
            team_of_town.get(town.code) if town else None
        )
        station = stations.resolve(grid.station, grid.code, problems)
        station_code = station.code if station else (team.station if team else None)
        town_label_zh = town.name_zh if town else ""
        town_label_en = f"{town.name_en} " if town else ""
        rows.append(
            {
                "code": grid.code,
                "name_zh": _text(grid.name_zh) or f"{town_label_zh}红树林保护网格 {grid.code}",
                "name_en": _text(grid.name_en) or f"{town_label_en}mangrove protection grid {grid.code}",
                "town": town.code if town else None,
                "team": team.code if team else None,
                "station": station_code,
                "area_ha": float(grid.area_ha),
            }
        )
    if problems:
        raise GeodataError(
            f"{len(problems)} grid attribute(s) refer to unknown places or teams", listed(problems)
        )
    return rows


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value).strip() or None


def _check_against_other_grids(
    session: Session, grids: gpd.GeoDataFrame, side: str, tolerance_m2: float
) -> None:
    """Refuse grids on the wrong side of the border, overlapping the other side's grids, or
    reusing the other side's codes."""
    problems: list[Problem] = []
    border_wkb = session.scalar(select(func.ST_AsBinary(Boundary.geom)).where(Boundary.code == BORDER_CODE))
    if border_wkb is not None and side in SIDE_OF_BORDER:
        points = shapely.point_on_surface(grids.geometry.values)
        sides = side_of_border(
            shapely.get_x(points), shapely.get_y(points), shapely.from_wkb(bytes(border_wkb))
        )
        for code in grids.code[sides != SIDE_OF_BORDER[side]]:
            problems.append(
                Problem(
                    "wrong-side",
                    f"grid {code} lies on the other side of the provincial border from {side}",
                    {"code": code},
                )
            )
    others = [g for g in list_grids(session) if g.side != side]
    clashes = sorted(set(grids.code) & {g.code for g in others})
    for code in clashes:
        problems.append(
            Problem("code-taken", f"code {code} is already used by a grid of the other side", {"code": code})
        )
    if others:
        combined = gpd.GeoDataFrame(
            {"code": list(grids.code) + [g.code for g in others]},
            geometry=list(grids.geometry.values) + [g.geometry for g in others],
            crs=grids.crs,
        )
        new = set(grids.code)
        for a, b, area in overlap_pairs(combined):
            if (a in new) != (b in new) and area > tolerance_m2:
                problems.append(
                    Problem(
                        "overlap",
                        f"grids {a} and {b} overlap by {area:.1f} m² across sides",
                        {"codes": [a, b], "area_m2": area},
                    )
                )
    if problems:
        raise GeodataError(
            f"{len(problems)} problem(s) with the other side's grids or the border", listed(problems)
        )


def import_grids(
    session: Session,
    path: str | Path,
    options: GridFileOptions,
    *,
    side: str,
    imported_by: str,
    source_name: str | None = None,
    dry_run: bool = False,
    principal: Principal | None = None,
) -> GridImportReport:
    """Replace ``side``'s grids with those in ``path``, all or nothing.

    Everything is validated before anything is written. Grids whose code already exists are
    updated in place (so patrols and incidents keep pointing at them); grids missing from the file
    are retired, never deleted. An import (not a dry run) leaves one audit entry by ``principal``.
    The caller owns the transaction: on any exception, roll back. Messages and the report call the
    file ``source_name`` (the name it was uploaded under), never by the path it was saved to. A long
    list of warnings or repairs is cut to its first entries.
    """
    if side not in SIDE_OF_BORDER:
        raise InvalidRequest(f"unknown side {side!r}; expected one of {', '.join(SIDE_OF_BORDER)}")
    source_name = printable_name(source_name or Path(path).name, 200)
    result = read_grid_file(path, options, name=source_name)
    grids = result.grids
    _check_against_other_grids(session, grids, side, options.overlap_tolerance_m2)
    attributes = _resolve_references(session, grids, side)

    report = GridImportReport(
        side=side,
        source_name=source_name,
        source_format=result.source_format,
        source_crs=result.source_crs,
        dry_run=dry_run,
        repaired=[p.as_dict() for p in listed(result.repaired)],
        warnings=[p.as_dict() for p in listed(result.warnings)],
        total_area_ha=round(float(grids.area_ha.sum()), 2),
    )
    existing = {g.code: g for g in session.scalars(select(Grid).where(Grid.side == side))}
    existing_geoms = {r.code: r.geometry for r in list_grids(session, side=side, include_retired=True)}
    now = utcnow()
    source = f"import: {report.source_name} ({result.source_crs})"
    for attrs, geom in zip(attributes, grids.geometry.values):
        code = attrs["code"]
        grid = existing.get(code)
        if grid is None:
            report.created.append(code)
            if not dry_run:
                session.add(
                    Grid(
                        side=side,
                        kind="grid" if side == "GD-LJ" else "zone",
                        source=source,
                        approximate=False,
                        created_at=now,
                        updated_at=now,
                        geom=from_shape(geom, srid=4326),
                        **attrs,
                    )
                )
            continue
        same = (
            grid.retired_at is None
            and not grid.approximate  # a survey confirming a reference grid is an update
            and all(getattr(grid, k) == v for k, v in attrs.items() if k != "area_ha")
            and shapely.equals_exact(existing_geoms[code], geom, tolerance=1e-7)
        )
        if same:
            report.unchanged.append(code)
            continue
        report.updated.append(code)
        if not dry_run:
            for key, value in attrs.items():
                setattr(grid, key, value)
            grid.geom = from_shape(geom, srid=4326)
            grid.source, grid.approximate, grid.updated_at, grid.retired_at = source, False, now, None
    for code, grid in existing.items():
        if code not in set(grids.code) and grid.retired_at is None:
            report.retired.append(code)
            if not dry_run:
                grid.retired_at = now
    if not dry_run:
        session.add(
            log := GridImport(
                imported_at=now,
                imported_by=imported_by,
                side=side,
                source_name=report.source_name,
                source_format=result.source_format,
                source_crs=result.source_crs,
                created=len(report.created),
                updated=len(report.updated),
                unchanged=len(report.unchanged),
                retired=len(report.retired),
                report=report.as_dict(),
            )
        )
        session.flush()
        done = {
            **audit.snapshot(log, ("side", "source_name", "source_format", "source_crs", "unchanged")),
            **{kind: getattr(report, kind) for kind in ("created", "updated", "retired")},
        }
        audit.record(session, principal, "grid_import.import", "grid_import", log.id, audit.changes({}, done))
    return report


# --- metric index shared by track splitting and incident placement ---------------------------

# Shared by the service's worker threads: GridIndex gives each thread its own prepared polygons
# (GEOS prepared geometries are not thread-safe), the lattice and edges are read-only.
_metric_index_cache: dict[tuple, tuple[GridIndex, np.ndarray]] = {}


def metric_grid_index(session: Session) -> tuple[GridIndex, np.ndarray]:
    """A GridIndex over the active grids of both sides in UTM 49N, and the grid ids in its order.

    Rebuilt only when a grid changes (the key holds every id and version), so the lattice that
    makes large batches fast is built once per grid import, not once per upload."""
    rows = session.execute(
        select(Grid.id, Grid.code, Grid.version).where(Grid.retired_at.is_(None)).order_by(Grid.code)
    ).all()
    key = tuple((r.id, r.version) for r in rows)
    cached = _metric_index_cache.get(key)
    if cached is not None:
        return cached
    wkbs = dict(
        session.execute(select(Grid.id, func.ST_AsBinary(Grid.geom)).where(Grid.retired_at.is_(None))).all()
    )
    geoms = shapely.from_wkb([bytes(wkbs[r.id]) for r in rows]) if rows else np.array([], dtype=object)
    metric = shapely.transform(geoms, project, interleaved=False) if len(geoms) else geoms
    index = GridIndex([r.code for r in rows], metric)
    ids = dict(zip([r.code for r in rows], [r.id for r in rows]))
    result = (index, np.array([ids[c] for c in index.codes], dtype=np.int64))
    _metric_index_cache.clear()  # one generation is enough
    _metric_index_cache[key] = result
    return result


def project(x, y):
    """WGS84 lon/lat → the metric CRS (UTM 49N) used for distances and areas."""
    return transformer(WGS84, METRIC).transform(x, y)


def unproject(x, y):
    return transformer(METRIC, WGS84).transform(x, y)
