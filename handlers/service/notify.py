"""Who else hears about a ticket: the new assignee, and the customer's sales owner."""

from __future__ import annotations

from crm_store.models import Customer
from crm_store.models.service import Priority, Ticket
from crm_store.staff import get_staff
from handlers.common.format import short
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply, addressed

OWNER_PRIORITIES = (Priority.P1.value, Priority.P2.value)
COMPLAINT = "投诉"


def concerns_sales(ticket: Ticket) -> bool:
    """P1/P2 and complaints cross to the sales owner; the rest stays with service."""
    return ticket.priority in OWNER_PRIORITIES or ticket.category == COMPLAINT


async def tell_owner(
    ctx: HandlerContext,
    ticket: Ticket,
    customer: Customer | None,
    *,
    event: str,
    callback: bool = False,
) -> list[Reply]:
    """The customer's owner hears of the ticket (opened or resolved), unless they did it."""
    if customer is None or customer.in_pool or customer.owner_id in (None, ctx.user_id):
        return []
    if not concerns_sales(ticket):
        return []
    owner = await get_staff(ctx.session, customer.owner_id or "")
    if owner is None or not owner.active:
        return []
    actor = await get_staff(ctx.session, ctx.user_id)
    reply = ctx.reply(
        "service/owner_notice",
        event=event,
        actor=actor.name if actor else ctx.user_id,
        customer=customer.name,
        number=ticket.number,
        priority=ticket.priority,
        category=ticket.category,
        content=short(ticket.content, 80),
        resolution=short(ticket.resolution or "", 80),
        callback=callback,
    )
    return [addressed(reply, owner.userid)]


async def tell_assignee(
    ctx: HandlerContext, ticket: Ticket, customer_name: str | None, *, event: str
) -> list[Reply]:
    """The person a ticket was given to hears of it (not when they gave it to themselves)."""
    if ticket.assignee_id is None or ticket.assignee_id == ctx.user_id:
        return []
    actor = await get_staff(ctx.session, ctx.user_id)
    reply = ctx.reply(
        "service/assigned_notice",
        event=event,
        actor=actor.name if actor else ctx.user_id,
        number=ticket.number,
        priority=ticket.priority,
        customer=customer_name or "—",
        content=short(ticket.content, 80),
    )
    return [addressed(reply, ticket.assignee_id)]
