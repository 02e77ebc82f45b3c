"""Accounts: server-side sign-in sessions and login throttling; credentials_version retired.

Bearer tokens and the pages' cookie now name a row of ``auth_sessions`` (stored as a SHA-256 of
the secret), so sign-out, a password change or disabling an account ends them at once. Ending
sessions is the one mechanism: the credentials version the old stateless tokens carried is
dropped. Tokens issued before this revision stop working; clients sign in again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_used_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.CheckConstraint("kind IN ('token', 'page')", name="ck_auth_sessions_kind"),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])
    op.create_index("ix_auth_sessions_expires_at", "auth_sessions", ["expires_at"])
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failed_at", TZ, nullable=False),
        sa.Column("blocked_until", TZ, nullable=True),
        sa.Column("locked_at", TZ, nullable=True),
        sa.CheckConstraint("scope IN ('account', 'address')", name="ck_login_throttle_scope"),
    )
    op.create_index("ix_login_throttle_last_failed_at", "login_throttle", ["last_failed_at"])
    # SQLite (≥ 3.35) drops a plain column in place; no table rebuild under the users' foreign keys.
    op.drop_column("users", "credentials_version")


def downgrade() -> None:
    op.add_column("users", sa.Column("credentials_version", sa.Integer, nullable=False, server_default="1"))
    op.drop_index("ix_login_throttle_last_failed_at", "login_throttle")
    op.drop_table("login_throttle")
    op.drop_index("ix_auth_sessions_expires_at", "auth_sessions")
    op.drop_index("ix_auth_sessions_user_id", "auth_sessions")
    op.drop_table("auth_sessions")
