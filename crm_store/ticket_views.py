"""Ticket read models: a ticket with its clocks and history, and a customer seen by service.

Read under the actor's scope, returned as frozen dataclasses (see crm_store/views.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import sla, tickets
from crm_store.models.customer import Customer
from crm_store.models.service import SlaTarget, Ticket
from crm_store.scope import Scope
from crm_store.views import CustomerCard, card_of, staff_names

_CLOCK_ORDER = [t.value for t in SlaTarget]


@dataclass(frozen=True)
class ClockLine:
    target: str
    state: str
    due_at: datetime | None
    breached: bool


@dataclass(frozen=True)
class EventLine:
    at: datetime
    kind: str
    actor_name: str
    note: str | None


@dataclass(frozen=True)
class TicketView:
    ticket: Ticket
    customer_name: str | None
    customer_owner_id: str | None
    assignee_name: str | None
    opener_name: str
    clocks: tuple[ClockLine, ...]
    events: tuple[EventLine, ...]


async def ticket_view(session: AsyncSession, *, scope: Scope, ticket_id: int) -> TicketView | None:
    """The ticket with its history, or None when the actor may not see it."""
    ticket = await tickets.get_visible(session, scope, ticket_id)
    if ticket is None:
        return None
    customer = (
        await session.get(Customer, ticket.customer_id) if ticket.customer_id is not None else None
    )
    events = await tickets.events_of(session, ticket.id)
    clocks = await sla.clocks_of(session, ticket.id)
    names = await staff_names(
        session, [ticket.assignee_id, ticket.opened_by, *(e.actor_id for e in events)]
    )
    return TicketView(
        ticket=ticket,
        customer_name=customer.name if customer else None,
        customer_owner_id=customer.owner_id if customer and not customer.in_pool else None,
        assignee_name=names.get(ticket.assignee_id or ""),
        opener_name=names.get(ticket.opened_by, ticket.opened_by),
        clocks=tuple(
            ClockLine(c.target, c.state, c.due_at, c.breached)
            for c in sorted(clocks.values(), key=lambda c: _CLOCK_ORDER.index(c.target))
            if c.state != "off"
        ),
        events=tuple(
            EventLine(e.at, e.kind, names.get(e.actor_id or "", e.actor_id or ""), e.note)
            for e in events
        ),
    )


@dataclass(frozen=True)
class ServiceCard:
    """What service sees of a customer: tickets first, then the usual card (amounts masked)."""

    card: CustomerCard
    tickets: tuple[Ticket, ...]


async def service_card(
    session: AsyncSession, *, scope: Scope, customer: Customer, now: datetime, limit: int = 8
) -> ServiceCard:
    listed = await tickets.of_customer(
        session, scope=scope, customer_id=customer.id, now=now, limit=limit
    )
    return ServiceCard(await card_of(session, scope=scope, customer=customer), tuple(listed))


async def customer_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids)))
    return {i: n for i, n in rows.all()}
