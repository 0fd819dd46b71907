"""media_banks, media_hashes, media_cases: hash banks of known material for image matching
(`safestack media`) and the cases its matches open for review and reporting.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "media_banks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media_banks"),
        sa.UniqueConstraint("name", name="uq_media_banks_name"),
    )
    op.create_table(
        "media_hashes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("bank_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_media_hashes"),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["media_banks.id"], name="fk_media_hashes_bank_id_media_banks"
        ),
        sa.UniqueConstraint("bank_id", "kind", "value", name="uq_media_hashes_entry"),
        sa.CheckConstraint("kind IN ('pdq', 'md5', 'sha256')", name="ck_media_hashes_kind"),
    )
    op.create_index("ix_media_hashes_bank_id", "media_hashes", ["bank_id"])
    op.create_index("ix_media_hashes_kind_value", "media_hashes", ["kind", "value"])
    op.create_table(
        "media_cases",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pdq", sa.String(64), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("matches", _JSON, nullable=False),
        sa.Column("context", _JSON, nullable=False),
        sa.Column("reviewer", sa.Text(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media_cases"),
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'dismissed', 'reported')",
            name="ck_media_cases_status",
        ),
    )
    op.create_index("ix_media_cases_created_at", "media_cases", ["created_at"])
    op.create_index("ix_media_cases_status", "media_cases", ["status"])
    op.create_index("ix_media_cases_sha256", "media_cases", ["sha256"])


def downgrade() -> None:
    op.drop_table("media_cases")
    op.drop_table("media_hashes")
    op.drop_table("media_banks")
