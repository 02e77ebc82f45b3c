"""Patrols: uploaded tracks, their members, raw fixes and per-grid visits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _spatial_index(table: str, column: str = "geom") -> None:
    # SpatiaLite keeps its R*Tree in a virtual table; PostGIS uses a GiST index.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"SELECT CreateSpatialIndex('{table}', '{column}')")
    else:
        op.create_index(f"idx_{table}_{column}", table, [column], postgresql_using="gist")


def upgrade() -> None:
    op.create_geospatial_table(
        "patrols",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("team", sa.String(16), sa.ForeignKey("teams.code"), nullable=True),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("source_name", sa.String(256), nullable=False),
        sa.Column("source_format", sa.String(32), nullable=False),
        sa.Column("datum", sa.String(16), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fix_count", sa.Integer, nullable=False),
        sa.Column("flagged_count", sa.Integer, nullable=False),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("outside_distance_m", sa.Float, nullable=False),
        sa.Column("outside_duration_s", sa.Float, nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("geom", Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=True),
        sa.Column(
            "geom_simplified", Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=True
        ),
        sa.CheckConstraint("transport IN ('foot', 'boat')", name="ck_patrols_transport"),
    )
    for column in ("side", "team", "started_at", "ended_at"):
        op.create_index(f"ix_patrols_{column}", "patrols", [column])
    _spatial_index("patrols")
    op.create_table(
        "patrol_members",
        sa.Column("patrol_id", sa.Integer, sa.ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    )
    op.create_index("ix_patrol_members_user_id", "patrol_members", ["user_id"])
    op.create_table(
        "patrol_fixes",
        sa.Column("patrol_id", sa.Integer, sa.ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("fix_count", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_geospatial_table(
        "patrol_visits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patrol_id", sa.Integer, sa.ForeignKey("patrols.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("grids.id"), nullable=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=True),
    )
    op.create_index("ix_patrol_visits_patrol_id", "patrol_visits", ["patrol_id"])
    op.create_index("ix_patrol_visits_grid_entered", "patrol_visits", ["grid_id", "entered_at"])


def downgrade() -> None:
    op.drop_geospatial_table("patrol_visits")
    op.drop_table("patrol_fixes")
    op.drop_table("patrol_members")
    op.drop_geospatial_table("patrols")
