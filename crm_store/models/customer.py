"""Customers, their contacts, who owned them when, and who else may see them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_store.base import Base, IntPk, JsonType, UtcDatetime

if TYPE_CHECKING:
    from crm_store.models.org import Staff


class ShareAccess(StrEnum):
    READ = "read"
    WRITE = "write"


class OwnerChange(StrEnum):
    """Why a customer changed hands; the pool rules count CLAIM rows per day."""

    CREATE = "create"
    CLAIM = "claim"
    RELEASE = "release"
    HANDOVER = "handover"
    ASSIGN = "assign"


class Customer(Base):
    """A company (or person) the team sells to; owner NULL plus in_pool means 公海."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_owner_updated", "owner_id", "updated_at"),)

    id: Mapped[IntPk]
    name: Mapped[str] = mapped_column(String(200))
    # Search and dedup keys, filled from crm_store.names by the caller or create_customer.
    name_core: Mapped[str] = mapped_column(String(200), index=True)
    pinyin: Mapped[str] = mapped_column(String(1000), default="")
    initials: Mapped[str] = mapped_column(String(200), default="", index=True)
    aliases: Mapped[list[str]] = mapped_column(JsonType, default=list)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff.userid"))
    # The owner's main department when it was assigned: history for reports, not for scopes.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    industry: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    source_channel: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    in_pool: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    pool_entered_at: Mapped[datetime | None]
    previous_owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff.userid"))
    last_followup_at: Mapped[datetime | None]
    next_followup_at: Mapped[datetime | None] = mapped_column(index=True)
    source_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[UtcDatetime]
    updated_at: Mapped[UtcDatetime] = mapped_column(index=True)

    owner: Mapped[Staff | None] = relationship(foreign_keys=[owner_id], lazy="raise")
    contacts: Mapped[list[Contact]] = relationship(back_populates="customer", lazy="raise")
    shares: Mapped[list[CustomerShare]] = relationship(back_populates="customer", lazy="raise")


class CustomerOwnerHistory(Base):
    """Every change of hands, so a claim limit or a dispute can be answered from data."""

    __tablename__ = "customer_owner_history"
    __table_args__ = (
        Index("ix_customer_owner_history_to_reason_at", "to_owner_id", "reason", "at"),
    )

    id: Mapped[IntPk]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    from_owner_id: Mapped[str | None] = mapped_column(String(64))
    to_owner_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    at: Mapped[UtcDatetime]
    by_id: Mapped[str] = mapped_column(String(64))


class CustomerShare(Base):
    """A colleague let in on someone else's customer (joint deals), optionally until a time."""

    __tablename__ = "customer_shares"
    __table_args__ = (UniqueConstraint("customer_id", "userid"),)

    id: Mapped[IntPk]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    userid: Mapped[str] = mapped_column(ForeignKey("staff.userid", ondelete="CASCADE"), index=True)
    access: Mapped[str] = mapped_column(String(8), default=ShareAccess.READ.value)
    until: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[UtcDatetime]

    customer: Mapped[Customer] = relationship(back_populates="shares", lazy="raise")


class Contact(Base):
    """A person at a customer; the external userid links WeCom customer contact to the card."""

    __tablename__ = "contacts"

    id: Mapped[IntPk]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    wecom_external_userid: Mapped[str | None] = mapped_column(String(64), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[UtcDatetime]

    customer: Mapped[Customer] = relationship(back_populates="contacts", lazy="raise")


class Tag(Base):
    """A label teams put on customers; customers carry tag names, this table their colours."""

    __tablename__ = "tags"

    id: Mapped[IntPk]
    name: Mapped[str] = mapped_column(String(32), unique=True)
    color: Mapped[str | None] = mapped_column(String(16))
