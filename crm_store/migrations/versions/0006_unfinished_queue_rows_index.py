"""partial indexes on unfinished inbox and outbox rows, for the batch claims

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-04 19:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INBOX_UNFINISHED = "status IN ('pending', 'processing')"
OUTBOX_UNFINISHED = "status IN ('pending', 'sending')"


def upgrade() -> None:
    op.create_index(
        "ix_inbox_unfinished",
        "inbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text(INBOX_UNFINISHED),
        sqlite_where=sa.text(INBOX_UNFINISHED),
    )
    op.create_index(
        "ix_outbox_unfinished",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text(OUTBOX_UNFINISHED),
        sqlite_where=sa.text(OUTBOX_UNFINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unfinished", table_name="outbox")
    op.drop_index("ix_inbox_unfinished", table_name="inbox")
