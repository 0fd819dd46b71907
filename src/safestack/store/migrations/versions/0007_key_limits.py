"""api_keys.limits: a key's own limits on work (messages, inputs, characters per request and per
minute), as JSON; an empty object (every limit the server's) for the keys already there.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here, not imported from tables.py (see 0001).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("limits", _JSON, nullable=False, server_default=sa.text("'{}'")),
    )


def downgrade() -> None:
    # SQLite drops a column only by copying the table (batch mode).
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("limits")
