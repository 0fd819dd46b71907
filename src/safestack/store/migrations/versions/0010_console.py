"""console: engagements, conversations (turns with their parent: branches), findings with
their edit history and version (optimistic concurrency), and reviews (`safestack console`).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_WHEN = sa.DateTime(timezone=True)


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=f"fk_{table}_{column}_{referred}"
    )


def upgrade() -> None:
    op.create_table(
        "console_engagements",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("targets", _JSON, nullable=False),
        sa.Column("policy", sa.String(200), nullable=False),
        sa.Column("categories", _JSON, nullable=False),
        sa.Column("languages", _JSON, nullable=False),
        sa.Column("starts_on", _WHEN, nullable=True),
        sa.Column("ends_on", _WHEN, nullable=True),
        sa.Column("experts", _JSON, nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_engagements"),
    )
    op.create_table(
        "console_conversations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("engagement_id", sa.String(32), nullable=False),
        sa.Column("expert", sa.String(32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_conversations"),
        _fk("console_conversations", "engagement_id", "console_engagements"),
    )
    op.create_index(
        "ix_console_conversations_engagement_id", "console_conversations", ["engagement_id"]
    )
    op.create_table(
        "console_turns",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("target", sa.String(100), nullable=True),
        sa.Column("target_model", sa.Text(), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_turns"),
        _fk("console_turns", "conversation_id", "console_conversations"),
        sa.CheckConstraint("role IN ('user', 'assistant')", name="ck_console_turns_role"),
    )
    op.create_index("ix_console_turns_conversation_id", "console_turns", ["conversation_id"])
    op.create_table(
        "console_findings",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("engagement_id", sa.String(32), nullable=False),
        sa.Column("turn_id", sa.String(32), nullable=False),
        sa.Column("expert", sa.String(32), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("technique", sa.String(100), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("ideal_answer", sa.Text(), nullable=False),
        sa.Column("judge", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_findings"),
        _fk("console_findings", "engagement_id", "console_engagements"),
        _fk("console_findings", "turn_id", "console_turns"),
    )
    op.create_index("ix_console_findings_engagement_id", "console_findings", ["engagement_id"])
    op.create_index("ix_console_findings_turn_id", "console_findings", ["turn_id"])
    op.create_table(
        "console_finding_edits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("finding_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("editor", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before", _JSON, nullable=False),
        sa.Column("after", _JSON, nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_finding_edits"),
        _fk("console_finding_edits", "finding_id", "console_findings"),
    )
    op.create_index("ix_console_finding_edits_finding_id", "console_finding_edits", ["finding_id"])
    op.create_table(
        "console_reviews",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("finding_id", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_reviews"),
        _fk("console_reviews", "finding_id", "console_findings"),
        sa.CheckConstraint(
            "decision IN ('agree', 'adjust', 'reject')", name="ck_console_reviews_decision"
        ),
    )
    op.create_index("ix_console_reviews_finding_id", "console_reviews", ["finding_id"])


def downgrade() -> None:
    for table in (
        "console_reviews",
        "console_finding_edits",
        "console_findings",
        "console_turns",
        "console_conversations",
        "console_engagements",
    ):
        op.drop_table(table)
