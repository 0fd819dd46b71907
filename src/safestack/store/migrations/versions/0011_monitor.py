"""monitor: the end user of each audited request, and the enforcement decision log.

`audit_events.end_user` holds the HMAC-SHA256 of a request's `safety_identifier` (else `user`)
field, never the raw value; `audit_events.enforcement` the measures applied to the request. Rows
from before this revision have neither (NULL). `enforcement_decisions` is append-only: a decision
is reversed by a later `lift`. `monitor_secrets` keeps the end-user hashing key a deployment
that sets none (SAFESTACK_MONITOR_SECRET) uses, created once.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("end_user", sa.String(64), nullable=True))
        batch.add_column(sa.Column("enforcement", sa.Text(), nullable=True))
    op.create_index("ix_audit_events_end_user", "audit_events", ["end_user"])
    op.create_table(
        "enforcement_decisions",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_per_minute", sa.Integer(), nullable=True),
        sa.Column("burst", sa.Integer(), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_enforcement_decisions"),
        sa.UniqueConstraint("id", name="uq_enforcement_decisions_id"),
        sa.CheckConstraint(
            "action IN ('warn', 'throttle', 'suspend', 'lift')",
            name="ck_enforcement_decisions_action",
        ),
    )
    op.create_index("ix_enforcement_decisions_created_at", "enforcement_decisions", ["created_at"])
    op.create_index("ix_enforcement_decisions_account", "enforcement_decisions", ["account"])
    op.create_index("ix_enforcement_decisions_expires_at", "enforcement_decisions", ["expires_at"])
    op.create_table(
        "monitor_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitor_secrets"),
    )


def downgrade() -> None:
    op.drop_table("monitor_secrets")
    op.drop_index("ix_enforcement_decisions_expires_at", table_name="enforcement_decisions")
    op.drop_index("ix_enforcement_decisions_account", table_name="enforcement_decisions")
    op.drop_index("ix_enforcement_decisions_created_at", table_name="enforcement_decisions")
    op.drop_table("enforcement_decisions")
    op.drop_index("ix_audit_events_end_user", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("enforcement")
        batch.drop_column("end_user")
