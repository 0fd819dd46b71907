"""redteam_runs and attempts: red-team campaigns and one row per interaction, for resume and reports.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "redteam_runs",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("campaign_hash", sa.String(64), nullable=False),
        sa.Column("campaign", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_redteam_runs"),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("probe_id", sa.String(64), nullable=False),
        sa.Column("sample", sa.Integer(), nullable=False),
        sa.Column("attack", sa.String(200), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", _JSON, nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        # Resume looks an interaction up by these; a second write of the same one is a bug.
        sa.UniqueConstraint("run_id", "target", "probe_id", "sample", name="uq_attempts_probe"),
    )
    op.create_index("ix_attempts_run_id", "attempts", ["run_id"])


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("redteam_runs")
