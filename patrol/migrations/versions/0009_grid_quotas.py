"""Per-grid monthly patrol quotas set by admins (grids without a row take the settings' defaults).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grid_quotas",
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("patrols_per_month", sa.Integer, nullable=False),
        sa.Column("km_per_month", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("patrols_per_month >= 0", name="ck_grid_quotas_patrols"),
        sa.CheckConstraint("km_per_month >= 0", name="ck_grid_quotas_km"),
    )


def downgrade() -> None:
    op.drop_table("grid_quotas")
