"""Customer service: tickets with SLA times and an event history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_store.base import Base, IntPk, UtcDatetime

if TYPE_CHECKING:
    from crm_store.models.customer import Customer


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class Ticket(Base):
    """A customer's problem; the number is what people quote, the source key stops retries."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status_sla", "status", "sla_due_at"),)

    id: Mapped[IntPk]
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    opened_by: Mapped[str] = mapped_column(ForeignKey("staff.userid"), index=True)
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.userid"), index=True)
    priority: Mapped[str] = mapped_column(String(2), default=Priority.P3.value)
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.OPEN.value)
    sla_due_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    content: Mapped[str] = mapped_column(Text)
    source_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[UtcDatetime]
    updated_at: Mapped[UtcDatetime]

    customer: Mapped[Customer | None] = relationship(lazy="raise")
    events: Mapped[list[TicketEvent]] = relationship(back_populates="ticket", lazy="raise")


class TicketEvent(Base):
    """What happened to a ticket and who did it, so nothing is lost between departments."""

    __tablename__ = "ticket_events"

    id: Mapped[IntPk]
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[UtcDatetime]

    ticket: Mapped[Ticket] = relationship(back_populates="events", lazy="raise")
