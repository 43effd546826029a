"""Chat memory that must survive restarts and be shared by workers: pending choices, picks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.base import Base, IntPk, JsonType, UtcDatetime


class ConversationState(Base):
    """One slot of a person's conversation (a pending choice, the last customer shown, an undo)."""

    __tablename__ = "conversation_state"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JsonType)
    expires_at: Mapped[datetime]
    updated_at: Mapped[UtcDatetime]


class LearnedPick(Base):
    """A rep picked this customer for these words once: the same words find it first next time."""

    __tablename__ = "learned_picks"
    __table_args__ = (UniqueConstraint("user_id", "query", "customer_id"),)

    id: Mapped[IntPk]
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    query: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    hits: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[UtcDatetime]
