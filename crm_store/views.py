"""Read models: what chat (and later the REST API and the chat page) shows, assembled once.

Every function reads under the actor's scope and returns frozen dataclasses, so no caller needs
the ORM and a view cannot drift between the places that render it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import deals, followups
from crm_store.customers import get_visible
from crm_store.models import Customer, Staff, Ticket
from crm_store.models.service import TicketStatus
from crm_store.scope import Scope

CLOSED_SHOWN = timedelta(days=90)


@dataclass(frozen=True)
class DealLine:
    title: str
    stage: str
    amount: Decimal | None  # None where the actor may not see it


@dataclass(frozen=True)
class ClosedDealLine:
    title: str
    won: bool
    amount: Decimal | None
    closed_at: datetime


@dataclass(frozen=True)
class FollowupLine:
    created_at: datetime
    author: str
    content: str


@dataclass(frozen=True)
class TicketLine:
    number: str
    priority: str
    status: str
    content: str


@dataclass(frozen=True)
class CustomerCard:
    id: int
    name: str
    owner_id: str | None
    owner_name: str | None  # None in the public pool
    in_pool: bool
    industry: str | None
    city: str | None
    phone: str | None
    tags: tuple[str, ...]
    next_followup_at: datetime | None
    open_deals: tuple[DealLine, ...]
    closed_deals: tuple[ClosedDealLine, ...]  # won or lost within CLOSED_SHOWN
    recent_followups: tuple[FollowupLine, ...]
    open_tickets: tuple[TicketLine, ...]

    @property
    def stage(self) -> str | None:
        return self.open_deals[0].stage if self.open_deals else None


async def staff_names(session: AsyncSession, userids: Iterable[str | None]) -> dict[str, str]:
    """Display names of people, one query; unknown ids are left out."""
    ids = sorted({u for u in userids if u})
    if not ids:
        return {}
    rows = await session.execute(select(Staff.userid, Staff.name).where(Staff.userid.in_(ids)))
    return {userid: name for userid, name in rows.all()}


async def customer_card(
    session: AsyncSession, *, scope: Scope, customer_id: int, deals_shown: int = 3
) -> CustomerCard | None:
    """Everything a rep needs before a call, or None if the actor may not see the customer."""
    customer = await get_visible(session, scope, customer_id)
    if customer is None:
        return None
    return await card_of(session, scope=scope, customer=customer, deals_shown=deals_shown)


async def card_of(
    session: AsyncSession, *, scope: Scope, customer: Customer, deals_shown: int = 3
) -> CustomerCard:
    """The card of a customer already read through `scope`."""
    open_deals = await deals.open_opportunities(session, scope=scope, customer_id=customer.id)
    closed = await deals.closed_opportunities(
        session, scope=scope, customer_id=customer.id, since=scope.now - CLOSED_SHOWN
    )
    recent = await followups.recent_followups(
        session, scope=scope, customer_id=customer.id, limit=3
    )
    tickets = (
        await session.scalars(
            select(Ticket)
            .where(
                Ticket.customer_id == customer.id,
                Ticket.status != TicketStatus.CLOSED.value,
                scope.tickets(),
            )
            .order_by(Ticket.created_at.desc())
            .limit(3)
        )
    ).all()
    names = await staff_names(session, [customer.owner_id, *(f.author_id for f in recent)])
    return CustomerCard(
        id=customer.id,
        name=customer.name,
        owner_id=customer.owner_id,
        owner_name=None if customer.in_pool else names.get(customer.owner_id or ""),
        in_pool=customer.in_pool,
        industry=customer.industry,
        city=customer.city,
        phone=customer.phone,
        tags=tuple(customer.tags or ()),
        next_followup_at=customer.next_followup_at,
        open_deals=tuple(DealLine(d.title, d.stage, d.amount) for d in open_deals[:deals_shown]),
        closed_deals=tuple(
            ClosedDealLine(d.title, d.state == "won", d.amount, d.updated_at or scope.now)
            for d in closed[:deals_shown]
        ),
        recent_followups=tuple(
            FollowupLine(f.created_at, names.get(f.author_id, f.author_id), f.content)
            for f in recent
        ),
        open_tickets=tuple(TicketLine(t.number, t.priority, t.status, t.content) for t in tickets),
    )
