"""judgements: one row per Verdict the judge gave.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Types are spelled out here, not imported from tables.py: a migration is frozen at the schema it
# was written for, while the ORM models move on.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "judgements",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("input_digest", sa.String(64), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("categories", _JSON, nullable=False),
        sa.Column("verdict", _JSON, nullable=False),
        sa.Column("policy", sa.String(200), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_judgements"),
        sa.CheckConstraint("kind IN ('prompt', 'response')", name="ck_judgements_kind"),
    )
    op.create_index("ix_judgements_run_id", "judgements", ["run_id"])
    op.create_index("ix_judgements_input_digest", "judgements", ["input_digest"])
    op.create_index("ix_judgements_flagged", "judgements", ["flagged"])


def downgrade() -> None:
    op.drop_table("judgements")
