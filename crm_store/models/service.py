"""Customer service: tickets, their history, and one SLA clock per ticket and target."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_store.base import Base, BigId, IntPk, JsonType, StrEnumType, UtcDatetime

if TYPE_CHECKING:
    from crm_store.models.customer import Customer


class TicketStatus(StrEnum):
    OPEN = "open"  # new, nobody has taken it yet
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # waiting on the customer: the SLA clocks pause
    RESOLVED = "resolved"
    CLOSED = "closed"
    MERGED = "merged"  # folded into another ticket, its history kept


ACTIVE_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.WAITING)


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class SlaTarget(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    OFF = "off"  # not started (next response before the customer came back) or cancelled


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
    # Whom the assignment rule chose: the round robin continues after the last one.
    auto_assignee_id: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[Priority] = mapped_column(StrEnumType(Priority, 2), default=Priority.P3)
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[TicketStatus] = mapped_column(
        StrEnumType(TicketStatus, 16), default=TicketStatus.OPEN
    )
    sla_due_at: Mapped[datetime | None]  # the earliest running SLA deadline, for lists
    first_response_at: Mapped[datetime | None]
    last_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    content: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tickets.id"))
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    satisfaction_note: Mapped[str | None] = mapped_column(Text)
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
    source_key: Mapped[str | None] = mapped_column(String(128), index=True)
    at: Mapped[UtcDatetime]

    ticket: Mapped[Ticket] = relationship(back_populates="events", lazy="raise")


class TicketSla(Base):
    """One SLA clock: its budget, time used while it ran, and the warning and breach moments.

    A running clock has due_at/warn_at; pausing folds the time run into used_seconds and clears
    them, so the scheduler's query never sees paused, met or stopped clocks.
    """

    __tablename__ = "ticket_slas"
    __table_args__ = (
        Index("ix_ticket_slas_warn_at", "warn_at"),
        Index("ix_ticket_slas_due_at", "due_at"),
    )

    ticket_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[ClockState] = mapped_column(StrEnumType(ClockState, 8), default=ClockState.OFF)
    budget_seconds: Mapped[int] = mapped_column(Integer)
    business_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    used_seconds: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]  # start of the current running stretch
    warn_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
    breached: Mapped[bool] = mapped_column(Boolean, default=False)


class MediaState(StrEnum):
    PENDING = "pending"  # to fetch (again) at next_attempt_at
    STORED = "stored"
    EXPIRED = "expired"  # WeCom no longer has it (media ids live 3 days)


class MediaFile(Base):
    """A forwarded file of a ticket: fetched once from WeCom's media/get and kept on disk.

    The row is the fetch queue (next_attempt_at, with a lease while a fetch runs) and the
    record of where the file landed; the ticket's attachment entry gets the same path.
    """

    __tablename__ = "media_files"
    __table_args__ = (
        UniqueConstraint("ticket_id", "message_key"),
        Index("ix_media_files_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[IntPk]
    ticket_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    message_key: Mapped[str] = mapped_column(String(128))
    media_id: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[UtcDatetime]  # when WeCom got it: the 3-day validity counts from here
    state: Mapped[str] = mapped_column(String(8), default=MediaState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    path: Mapped[str | None] = mapped_column(String(512))  # relative to WECRM_MEDIA_DIR
    size: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[UtcDatetime]
    updated_at: Mapped[UtcDatetime]
