"""audit_events.completed: a request's audit record is written when it is accepted, completed later.

A row with `completed` false and no `status_code` is a request the gateway accepted (and may have
forwarded) but whose outcome it never recorded: it stopped in between. Rows from before this
revision were all written at the end of their request, so they are completed.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(
            sa.Column("completed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # An accepted request that was never completed has no status to put back: it answered nothing
    # the gateway knows of, so 500 (the server failed) is the honest one.
    op.execute("UPDATE audit_events SET status_code = 500 WHERE status_code IS NULL")
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("completed")
