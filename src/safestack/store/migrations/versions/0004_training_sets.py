"""training_sets: the break-fix training sets built from red-team findings (`safestack align data`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "training_sets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", _JSON, nullable=False),
        sa.Column("policy", sa.String(200), nullable=False),
        sa.Column("counts", _JSON, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("manifest", _JSON, nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_training_sets"),
        # A set is its content: the same rows built twice are one set.
        sa.UniqueConstraint("version", name="uq_training_sets_version"),
    )


def downgrade() -> None:
    op.drop_table("training_sets")
