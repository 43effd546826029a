"""How tickets read in chat: one line in a list, the full ticket with its history."""

from __future__ import annotations

from typing import Any

from crm_store.models.service import Ticket
from crm_store.ticket_views import TicketView
from handlers.common.format import short, when_text
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.service.steps import EVENT_TEXT, STATUS_TEXT, TARGET_TEXT


def line_of(ctx: HandlerContext, ticket: Ticket, customer: str | None = None) -> dict[str, Any]:
    now = ctx.now()
    return {
        "number": ticket.number,
        "priority": ticket.priority,
        "status": STATUS_TEXT.get(ticket.status, ticket.status),
        "customer": customer or "",
        "content": short(ticket.content, 24),
        "due": when_text(ctx, ticket.sla_due_at) if ticket.sla_due_at else "",
        "breached": ticket.sla_due_at is not None and ticket.sla_due_at <= now,
    }


def ticket_reply(ctx: HandlerContext, view: TicketView) -> Reply:
    now = ctx.now()
    t = view.ticket
    return ctx.reply(
        "service/ticket",
        t=t,
        status=STATUS_TEXT.get(t.status, t.status),
        customer=view.customer_name or "—",
        assignee=view.assignee_name or "待分配",
        opener=view.opener_name,
        attachments=len(t.attachments or []),
        clocks=[
            {
                "target": TARGET_TEXT.get(c.target, c.target),
                "state": c.state,
                "due": when_text(ctx, c.due_at) if c.due_at else "",
                "breached": c.breached or (c.due_at is not None and c.due_at <= now),
            }
            for c in view.clocks
        ],
        events=[
            {
                "when": when_text(ctx, e.at),
                "who": e.actor_name,
                "what": EVENT_TEXT.get(e.kind, e.kind),
                "note": short(e.note or "", 60),
            }
            for e in view.events
        ],
    )
