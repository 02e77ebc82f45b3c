"""Foundation: sides, towns, stations, teams, grids, boundaries, grid imports, users and roles.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _spatial_index(table: str, column: str = "geom") -> None:
    # SpatiaLite keeps its R*Tree in a virtual table; PostGIS uses a GiST index.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"SELECT CreateSpatialIndex('{table}', '{column}')")
    else:
        op.create_index(f"idx_{table}_{column}", table, [column], postgresql_using="gist")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "sides",
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("name_zh", sa.String(64), nullable=False),
        sa.Column("name_en", sa.String(64), nullable=False),
    )
    op.create_geospatial_table(
        "towns",
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("name_zh", sa.String(64), nullable=False),
        sa.Column("name_en", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("seat", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
    )
    op.create_geospatial_table(
        "stations",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("name_zh", sa.String(64), nullable=False),
        sa.Column("name_en", sa.String(128), nullable=False),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("town", sa.String(8), sa.ForeignKey("towns.code"), nullable=True),
        sa.Column("approximate", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("location", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
    )
    op.create_table(
        "teams",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("name_zh", sa.String(64), nullable=False),
        sa.Column("name_en", sa.String(128), nullable=False),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("town", sa.String(8), sa.ForeignKey("towns.code"), nullable=True),
        sa.Column("station", sa.String(16), sa.ForeignKey("stations.code"), nullable=True),
    )
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("name_zh", sa.String(128), nullable=False),
        sa.Column("name_en", sa.String(160), nullable=False),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("town", sa.String(8), sa.ForeignKey("towns.code"), nullable=True),
        sa.Column("team", sa.String(16), sa.ForeignKey("teams.code"), nullable=True),
        sa.Column("station", sa.String(16), sa.ForeignKey("stations.code"), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("area_ha", sa.Float, nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("approximate", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint("kind IN ('grid', 'zone')", name="ck_grids_kind"),
    )
    op.create_index("ix_grids_side", "grids", ["side"])
    op.create_index("ix_grids_town", "grids", ["town"])
    _spatial_index("grids")
    op.create_geospatial_table(
        "boundaries",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name_zh", sa.String(128), nullable=False),
        sa.Column("name_en", sa.String(160), nullable=False),
        sa.Column("approximate", sa.Boolean, nullable=False),
        sa.Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=False),
    )
    op.create_table(
        "grid_imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("source_name", sa.String(256), nullable=False),
        sa.Column("source_format", sa.String(32), nullable=False),
        sa.Column("source_crs", sa.String(128), nullable=False),
        sa.Column("created", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("retired", sa.Integer, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("credentials_version", sa.Integer, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "user_roles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("team", sa.String(16), sa.ForeignKey("teams.code"), nullable=True),
        sa.Column("station", sa.String(16), sa.ForeignKey("stations.code"), nullable=True),
        sa.UniqueConstraint("user_id", "role", "team", "station", name="uq_user_roles"),
        sa.CheckConstraint(
            "role IN ('patrol_member', 'station_manager', 'enforcement_officer', 'admin')",
            name="ck_user_roles_role",
        ),
        sa.CheckConstraint(
            "(role = 'patrol_member' AND team IS NOT NULL) OR role <> 'patrol_member'",
            name="ck_user_roles_member_team",
        ),
        sa.CheckConstraint(
            "(role = 'station_manager' AND station IS NOT NULL) OR role <> 'station_manager'",
            name="ck_user_roles_manager_station",
        ),
    )
    op.create_index("ix_user_roles_user_id", "user_roles", ["user_id"])


def downgrade() -> None:
    for table in ("user_roles", "users", "grid_imports"):
        op.drop_table(table)
    for table in ("boundaries", "grids"):
        op.drop_geospatial_table(table)
    op.drop_table("teams")
    for table in ("stations", "towns"):
        op.drop_geospatial_table(table)
    op.drop_table("sides")
