"""The durable edges of the bot: what WeCom delivered (inbox) and what we owe it (outbox)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.base import Base, IntPk, JsonType, StrEnumType, UtcDatetime


class InboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


INBOX_PENDING = InboxStatus.PENDING
INBOX_PROCESSING = InboxStatus.PROCESSING
INBOX_DONE = InboxStatus.DONE
INBOX_FAILED = InboxStatus.FAILED

OUTBOX_PENDING = OutboxStatus.PENDING
OUTBOX_SENDING = OutboxStatus.SENDING
OUTBOX_SENT = OutboxStatus.SENT
OUTBOX_DEAD = OutboxStatus.DEAD


class InboxMessage(Base):
    """One accepted callback. The unique dedup key is what makes WeCom's retries harmless."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_status_user", "status", "user_id", "id"),
        # The claim scans unfinished rows in id order; without this it walks the whole history.
        Index(
            "ix_inbox_unfinished",
            "id",
            postgresql_where=text("status IN ('pending', 'processing')"),
            sqlite_where=text("status IN ('pending', 'processing')"),
        ),
    )

    id: Mapped[IntPk]
    dedup_key: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[InboxStatus] = mapped_column(
        StrEnumType(InboxStatus, 16), default=InboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[UtcDatetime]
    finished_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """One message owed to a WeCom user; written in the transaction of the change it reports."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_user_sent", "to_user", "sent_at"),
        Index("ix_outbox_user_status", "to_user", "status", "id"),
        Index(
            "ix_outbox_unfinished",
            "id",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[IntPk]
    dedup_key: Mapped[str] = mapped_column(String(160), unique=True)
    to_user: Mapped[str] = mapped_column(String(64))
    msgtype: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    status: Mapped[OutboxStatus] = mapped_column(
        StrEnumType(OutboxStatus, 16), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set when an earlier attempt may have reached WeCom (timeout, dropped connection, 5xx):
    # the next attempt asks WeCom's duplicate check to suppress a second copy.
    uncertain: Mapped[bool] = mapped_column(default=False)
    next_attempt_at: Mapped[UtcDatetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    wecom_msgid: Mapped[str | None] = mapped_column(String(128))
    response_code: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[UtcDatetime]
    sent_at: Mapped[datetime | None]
