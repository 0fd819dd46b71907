"""rounds: break-fix rounds (`safestack align round`): one row per round of a series, with the
model it started from, the model it made, its training set and the red-team runs that measured
the model before and after.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rounds",
        sa.Column("series", sa.String(100), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("parent", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("training_set", sa.String(32), nullable=True),
        sa.Column("training_set_version", sa.String(64), nullable=True),
        sa.Column("runs", _JSON, nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("metrics", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", "number", name="pk_rounds"),
    )


def downgrade() -> None:
    op.drop_table("rounds")
