"""Dialect-aware spatial SQL: the one place that knows SpatiaLite from PostGIS.

SpatiaLite never uses its R*Tree by itself: a bbox query must select candidate rowids from the
``SpatialIndex`` virtual table. PostGIS uses its GiST index for ``&&`` / ST_Intersects on its own.
"""

from __future__ import annotations

from sqlalchemy import Float, String, and_, bindparam, func, literal_column, text
from sqlalchemy.orm import InstrumentedAttribute

BBox = tuple[float, float, float, float]


def envelope(dialect: str, bbox: BBox):
    minx, miny, maxx, maxy = bbox
    if dialect == "sqlite":
        return func.BuildMbr(minx, miny, maxx, maxy, 4326)
    return func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)


def intersects_bbox(dialect: str, id_column: InstrumentedAttribute, geom: InstrumentedAttribute, bbox: BBox):
    """A WHERE clause: the row's geometry intersects ``bbox``, using the spatial index."""
    frame = envelope(dialect, bbox)
    if dialect == "sqlite":
        table = id_column.class_.__table__.name
        candidates = (
            text(
                "SELECT ROWID FROM SpatialIndex WHERE f_table_name = :si_table "
                "AND f_geometry_column = :si_column AND search_frame = BuildMbr(:si_minx, :si_miny, :si_maxx, :si_maxy, 4326)"
            )
            .bindparams(
                bindparam("si_table", table, type_=String),
                bindparam("si_column", geom.key, type_=String),
                *(
                    bindparam(f"si_{k}", float(v), type_=Float)
                    for k, v in zip(("minx", "miny", "maxx", "maxy"), bbox)
                ),
            )
            .columns(literal_column("ROWID"))
        )
        return and_(id_column.in_(candidates), func.ST_Intersects(geom, frame) == 1)
    return func.ST_Intersects(geom, frame)
