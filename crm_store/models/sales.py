"""The sales pipeline: leads, opportunities with their stage history, follow-ups and tasks."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_store.base import Base, IntPk, StrEnumType, UtcDatetime

if TYPE_CHECKING:
    from crm_store.models.customer import Customer


class LeadStatus(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    CONVERTED = "converted"
    INVALID = "invalid"


class OpportunityState(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class TaskSource(StrEnum):
    FOLLOWUP = "followup"
    MANUAL = "manual"
    TICKET = "ticket"
    SYSTEM = "system"


class Lead(Base):
    """A prospect not yet qualified; owner NULL means the lead pool, visible to everyone."""

    __tablename__ = "leads"

    id: Mapped[IntPk]
    name: Mapped[str] = mapped_column(String(100))
    company: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    source_channel: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[LeadStatus] = mapped_column(StrEnumType(LeadStatus, 16), default=LeadStatus.NEW)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff.userid"), index=True)
    converted_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    source_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[UtcDatetime]


class Opportunity(Base):
    """A deal with a customer; amounts are what service staff must not see of others."""

    __tablename__ = "opportunities"
    __table_args__ = (Index("ix_opportunities_owner_state", "owner_id", "state"),)

    id: Mapped[IntPk]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    stage: Mapped[str] = mapped_column(String(32))
    probability: Mapped[int] = mapped_column(Integer, default=0)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    owner_id: Mapped[str] = mapped_column(ForeignKey("staff.userid"))
    state: Mapped[OpportunityState] = mapped_column(
        StrEnumType(OpportunityState, 8), default=OpportunityState.OPEN
    )
    lost_reason: Mapped[str | None] = mapped_column(Text)
    source_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[UtcDatetime]
    updated_at: Mapped[UtcDatetime]

    customer: Mapped[Customer] = relationship(lazy="raise")
    stage_history: Mapped[list[OpportunityStageHistory]] = relationship(
        back_populates="opportunity", lazy="raise"
    )


class OpportunityStageHistory(Base):
    """One stage move; unique on the message key so a WeCom retry moves nothing twice."""

    __tablename__ = "opportunity_stage_history"

    id: Mapped[IntPk]
    opportunity_id: Mapped[int] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    by_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[UtcDatetime]
    source_key: Mapped[str | None] = mapped_column(String(128), unique=True)

    opportunity: Mapped[Opportunity] = relationship(back_populates="stage_history", lazy="raise")


class Followup(Base):
    """A logged contact with a customer; unique on the message key (WeCom retries)."""

    __tablename__ = "followups"
    __table_args__ = (Index("ix_followups_customer_created", "customer_id", "created_at"),)

    id: Mapped[IntPk]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    author_id: Mapped[str] = mapped_column(ForeignKey("staff.userid"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    next_step: Mapped[str | None] = mapped_column(Text)
    next_step_at: Mapped[datetime | None]
    source_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[UtcDatetime] = mapped_column(index=True)

    customer: Mapped[Customer] = relationship(lazy="raise")


class Task(Base):
    """A to-do or reminder for one person; follow-ups with a next step create one."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_owner_done_due", "owner_id", "done_at", "due_at"),)

    id: Mapped[IntPk]
    owner_id: Mapped[str] = mapped_column(ForeignKey("staff.userid"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    done_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16), default=TaskSource.MANUAL.value)
    source_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[UtcDatetime]
