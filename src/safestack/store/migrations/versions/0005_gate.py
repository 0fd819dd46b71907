"""gate tables: model versions, pinned evidence, signers' public keys and the signed decision log.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "gate_model_versions",
        sa.Column("id", sa.String(320), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("pre_target", sa.String(200), nullable=False),
        sa.Column("post_target", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gate_model_versions"),
        sa.UniqueConstraint("model", "version", name="uq_gate_model_versions_model"),
    )
    op.create_table(
        "gate_evidence",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("model_version_id", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gate_evidence"),
    )
    op.create_index("ix_gate_evidence_model_version_id", "gate_evidence", ["model_version_id"])
    op.create_table(
        "gate_signers",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_gate_signers"),
    )
    op.create_index("ix_gate_signers_person", "gate_signers", ["person"])
    op.create_table(
        "gate_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry", _JSON, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_gate_log"),
        sa.UniqueConstraint("entry_hash", name="uq_gate_log_entry_hash"),
    )


def downgrade() -> None:
    op.drop_table("gate_log")
    op.drop_table("gate_signers")
    op.drop_index("ix_gate_evidence_model_version_id", table_name="gate_evidence")
    op.drop_table("gate_evidence")
    op.drop_table("gate_model_versions")
