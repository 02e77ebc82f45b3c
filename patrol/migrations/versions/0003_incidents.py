"""Incidents, their categories, history and photos; joint cases with participants and actions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _spatial_index(table: str, column: str = "geom") -> None:
    # SpatiaLite keeps its R*Tree in a virtual table; PostGIS uses a GiST index.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"SELECT CreateSpatialIndex('{table}', '{column}')")
    else:
        op.create_index(f"idx_{table}_{column}", table, [column], postgresql_using="gist")


def upgrade() -> None:
    op.create_table(
        "incident_categories",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("label_zh", sa.String(64), nullable=False),
        sa.Column("label_en", sa.String(128), nullable=False),
        sa.Column("sort_order", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "joint_cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_joint_cases_status"),
    )
    op.create_table(
        "joint_case_participants",
        sa.Column(
            "case_id", sa.Integer, sa.ForeignKey("joint_cases.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    )
    op.create_table(
        "joint_case_actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("joint_cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("mechanism", sa.String(16), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_joint_case_actions_case_id", "joint_case_actions", ["case_id"])
    op.create_geospatial_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("category", sa.String(32), sa.ForeignKey("incident_categories.code"), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("observed_at", TZ, nullable=False),
        sa.Column("reported_at", TZ, nullable=False),
        sa.Column("reporter_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("patrol_id", sa.Integer, sa.ForeignKey("patrols.id", ondelete="SET NULL"), nullable=True),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("grids.id"), nullable=True),
        sa.Column("grid_match", sa.String(8), nullable=False),
        sa.Column("grid_distance_m", sa.Float, nullable=True),
        sa.Column("side", sa.String(8), sa.ForeignKey("sides.code"), nullable=False),
        sa.Column("town", sa.String(8), nullable=True),
        sa.Column("border_distance_m", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duplicate_of", sa.Integer, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("referred_to", sa.String(8), sa.ForeignKey("sides.code"), nullable=True),
        sa.Column("joint_case_id", sa.Integer, sa.ForeignKey("joint_cases.id"), nullable=True),
        sa.Column("accept_due", TZ, nullable=False),
        sa.Column("resolve_due", TZ, nullable=False),
        sa.Column("responded_at", TZ, nullable=True),
        sa.Column("accepted_at", TZ, nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name="ck_incidents_severity"),
        sa.CheckConstraint("level IN ('village', 'town', 'county')", name="ck_incidents_level"),
        sa.CheckConstraint("grid_match IN ('inside', 'near', 'none')", name="ck_incidents_grid_match"),
    )
    op.create_index("ix_incidents_reporter_id", "incidents", ["reporter_id"])
    op.create_index("ix_incidents_joint_case_id", "incidents", ["joint_case_id"])
    # Visibility columns included: an officer's counts per grid read the index alone.
    op.create_index(
        "ix_incidents_grid_observed",
        "incidents",
        [
            "grid_id",
            "observed_at",
            "id",
            "side",
            "referred_to",
            "joint_case_id",
            "border_distance_m",
            "reporter_id",
        ],
    )
    op.create_index("ix_incidents_side_observed", "incidents", ["side", "observed_at", "id"])
    op.create_index("ix_incidents_observed", "incidents", ["observed_at", "id"])
    op.create_index("ix_incidents_status", "incidents", ["status", "resolve_due"])
    _spatial_index("incidents")
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("details", sa.JSON, nullable=True),
    )
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id"])
    op.create_table(
        "incident_photos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("path", sa.String(256), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("uploaded_at", TZ, nullable=False),
    )
    op.create_index("ix_incident_photos_incident_id", "incident_photos", ["incident_id"])


def downgrade() -> None:
    op.drop_table("incident_photos")
    op.drop_table("incident_events")
    op.drop_geospatial_table("incidents")
    op.drop_table("joint_case_actions")
    op.drop_table("joint_case_participants")
    op.drop_table("joint_cases")
    op.drop_table("incident_categories")
