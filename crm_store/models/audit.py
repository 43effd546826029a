"""The audit log: who changed what, before and after, and which message caused it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.base import Base, IntPk, JsonType, UtcDatetime


class AuditEntry(Base):
    """One write; actor_id is a userid or a system name ("sync", "scheduler"), so no FK."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[IntPk]
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    source_key: Mapped[str | None] = mapped_column(String(128), index=True)
    at: Mapped[UtcDatetime] = mapped_column(index=True)
