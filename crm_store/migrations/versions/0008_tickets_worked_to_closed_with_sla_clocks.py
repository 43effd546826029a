"""tickets worked to closed: SLA clocks per target, event keys, merge, satisfaction

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-04 18:46:31.842467
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_store.base

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_slas",
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("budget_seconds", sa.Integer(), nullable=False),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("used_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", crm_store.base.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("warn_at", crm_store.base.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("due_at", crm_store.base.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("met_at", crm_store.base.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_slas_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "target", name=op.f("pk_ticket_slas")),
    )
    with op.batch_alter_table("ticket_slas", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_slas_due_at", ["due_at"], unique=False)
        batch_op.create_index("ix_ticket_slas_warn_at", ["warn_at"], unique=False)

    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_key", sa.String(length=128), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_ticket_events_source_key"), ["source_key"], unique=False
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auto_assignee_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("last_response_at", crm_store.base.DateTimeUTC(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "attachments",
                crm_store.base.JsonDoc(),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.add_column(
            sa.Column(
                "merged_into_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("satisfaction", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("satisfaction_note", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_merged_into_id_tickets"), "tickets", ["merged_into_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tickets_merged_into_id_tickets"), type_="foreignkey"
        )
        batch_op.drop_column("satisfaction_note")
        batch_op.drop_column("satisfaction")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("attachments")
        batch_op.drop_column("resolution")
        batch_op.drop_column("last_response_at")
        batch_op.drop_column("auto_assignee_id")

    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_events_source_key"))
        batch_op.drop_column("source_key")

    with op.batch_alter_table("ticket_slas", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_slas_warn_at")
        batch_op.drop_index("ix_ticket_slas_due_at")

    op.drop_table("ticket_slas")
