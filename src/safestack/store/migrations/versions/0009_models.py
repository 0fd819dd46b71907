"""models: the break-fix model lineage (`safestack align train`): base → round 1 → round 2 ...

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        # The model it was trained from; no foreign key, so a lineage row can name a base model
        # recorded later or in another store (its id is the red-team `target_model`).
        sa.Column("parent", sa.String(200), nullable=True),
        sa.Column("training_set", sa.String(32), nullable=True),
        sa.Column("training_set_version", sa.String(64), nullable=True),
        sa.Column("config_hash", sa.String(64), nullable=True),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("metrics", _JSON, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("target", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.CheckConstraint("kind IN ('base', 'fine-tune')", name="ck_models_kind"),
    )
    op.create_index("ix_models_parent", "models", ["parent"])


def downgrade() -> None:
    op.drop_index("ix_models_parent", table_name="models")
    op.drop_table("models")
