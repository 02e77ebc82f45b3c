"""Timed track pieces for "who was near here, when" (patrol_segments), and on PostGIS monthly
partitions of them and of patrol_visits. Existing patrols get their pieces from their stored fixes;
existing visits move into the partitioned table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import io
import logging
import zipfile
from datetime import date

import numpy as np
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
VISIT_COLUMNS = "id, patrol_id, grid_id, seq, entered_at, exited_at, distance_m, duration_s, geom"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.create_geospatial_table(
            "patrol_segments",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "patrol_id", sa.Integer, sa.ForeignKey("patrols.id", ondelete="CASCADE"), nullable=False
            ),
            sa.Column("seq", sa.Integer, nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("fix_count", sa.Integer, nullable=False),
            sa.Column("times", sa.LargeBinary, nullable=False),
            sa.Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=False),
        )
        op.execute("SELECT CreateSpatialIndex('patrol_segments', 'geom')")
    else:
        op.execute(
            """
            CREATE TABLE patrol_segments (
                id bigserial NOT NULL,
                patrol_id integer NOT NULL REFERENCES patrols (id) ON DELETE CASCADE,
                seq integer NOT NULL,
                started_at timestamptz NOT NULL,
                ended_at timestamptz NOT NULL,
                fix_count integer NOT NULL,
                times bytea NOT NULL,
                geom geometry(LINESTRING, 4326) NOT NULL,
                PRIMARY KEY (id, started_at)
            ) PARTITION BY RANGE (started_at)
            """
        )
        op.execute("CREATE INDEX idx_patrol_segments_geom ON patrol_segments USING gist (geom)")
        op.execute("CREATE TABLE patrol_segments_default PARTITION OF patrol_segments DEFAULT")
        _partition_visits()
    op.create_index("ix_patrol_segments_patrol_id", "patrol_segments", ["patrol_id"])
    op.create_index("ix_patrol_segments_started_at", "patrol_segments", ["started_at"])
    _segments_from_stored_fixes(bind)
    if bind.dialect.name == "postgresql":
        _months_for_existing_rows(bind)


def _partition_visits() -> None:
    """patrol_visits → partitioned by exited_at, rows moved. A partitioned table's unique keys must
    hold the partition column, which may be NULL here (tracks without times): ``id`` stays unique
    by its sequence and indexed, without a PRIMARY KEY constraint."""
    _rebuild_visits(partitioned=True)


def _rebuild_visits(*, partitioned: bool) -> None:
    """patrol_visits rebuilt, partitioned or plain, with its rows, indexes and id sequence; the old
    table's indexes are dropped first (their names are reused)."""
    old = "patrol_visits_unpartitioned" if partitioned else "patrol_visits_partitioned"
    old_indexes = ["ix_patrol_visits_patrol_id", "ix_patrol_visits_grid_entered"]
    if not partitioned:
        old_indexes.insert(0, "ix_patrol_visits_id")
    op.execute(f"ALTER TABLE patrol_visits RENAME TO {old}")
    op.execute("ALTER SEQUENCE patrol_visits_id_seq OWNED BY NONE")
    for name in old_indexes:
        op.execute(f"DROP INDEX {name}")
    op.execute(
        f"""
        CREATE TABLE patrol_visits (
            id integer {"NOT NULL" if partitioned else "PRIMARY KEY"} DEFAULT nextval('patrol_visits_id_seq'),
            patrol_id integer NOT NULL REFERENCES patrols (id) ON DELETE CASCADE,
            grid_id integer REFERENCES grids (id),
            seq integer NOT NULL,
            entered_at timestamptz,
            exited_at timestamptz,
            distance_m double precision NOT NULL,
            duration_s double precision,
            geom geometry(LINESTRING, 4326)
        ) {"PARTITION BY RANGE (exited_at)" if partitioned else ""}
        """
    )
    if partitioned:
        op.execute("CREATE TABLE patrol_visits_default PARTITION OF patrol_visits DEFAULT")
        op.execute("CREATE INDEX ix_patrol_visits_id ON patrol_visits (id)")
    op.execute("CREATE INDEX ix_patrol_visits_patrol_id ON patrol_visits (patrol_id)")
    op.execute("CREATE INDEX ix_patrol_visits_grid_entered ON patrol_visits (grid_id, entered_at)")
    op.execute(f"INSERT INTO patrol_visits ({VISIT_COLUMNS}) SELECT {VISIT_COLUMNS} FROM {old}")
    op.execute(f"DROP TABLE {old}")
    op.execute("ALTER SEQUENCE patrol_visits_id_seq OWNED BY patrol_visits.id")


def _segments_from_stored_fixes(bind) -> None:
    """Each stored patrol's pieces, from its fix blob: the good fixes' WGS84 positions, times and
    cleaned segments, cut the way uploads cut them."""
    from patrol.db import geometry_from_wkb
    from patrol.models import PatrolSegment
    from patrol.segments import segment_rows  # the same cutting as uploads

    # Through the model's table: its UTCDateTime writes times as every other row has them (SQLite
    # compares them as text).
    insert = sa.insert(PatrolSegment.__table__).values(geom=geometry_from_wkb("wkb"))
    ids = bind.execute(sa.text("SELECT patrol_id FROM patrol_fixes ORDER BY patrol_id")).scalars().all()
    for patrol_id in ids:
        blob = bind.execute(
            sa.text("SELECT data FROM patrol_fixes WHERE patrol_id = :p"), {"p": patrol_id}
        ).scalar()
        try:
            with np.load(io.BytesIO(bytes(blob))) as data:
                good = data["flags"] == 0
                known = data["time_known"][good]
                seconds = data["time"][good].astype(np.float64) / 1000
                seconds[~known] = np.nan
                # Without a WGS84 copy the file's own coordinates were WGS84 (see _pack_fixes).
                wgs84 = "wgs84_lon" in data.files
                lon = data["wgs84_lon" if wgs84 else "lon"][good]
                lat = data["wgs84_lat" if wgs84 else "lat"][good]
                segment = data["segment"][good]
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
            # A blob no reader can open has no track to cut: the patrol stays, without pieces.
            log.warning("patrol %s: its stored fixes cannot be read; no track pieces for it", patrol_id)
            continue
        rows = segment_rows(lon, lat, seconds, segment)
        if rows:
            bind.execute(insert, [row | {"patrol_id": patrol_id} for row in rows])


def _months_for_existing_rows(bind) -> None:
    """A partition for every month the moved rows fall in, so that the default holds none."""
    from patrol.partitions import create_months

    span = bind.execute(
        sa.text(
            "SELECT least((SELECT min(started_at) FROM patrol_segments), (SELECT min(exited_at) FROM patrol_visits)), "
            "greatest((SELECT max(started_at) FROM patrol_segments), (SELECT max(exited_at) FROM patrol_visits))"
        )
    ).one()
    if span[0] is not None:
        create_months(bind, date(span[0].year, span[0].month, 1), date(span[1].year, span[1].month, 1))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.drop_index("ix_patrol_segments_started_at", "patrol_segments")
        op.drop_index("ix_patrol_segments_patrol_id", "patrol_segments")
        op.drop_geospatial_table("patrol_segments")
        return
    op.execute("DROP TABLE patrol_segments")
    _rebuild_visits(partitioned=False)
