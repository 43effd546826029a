"""工单 / ticket: open one from chat, show one with its history, list a customer's or mine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_store import config_data, tickets
from crm_store.models import Customer
from crm_store.models.service import Priority
from crm_store.ticket_views import customer_names, service_card, ticket_view
from handlers.common import customer_resolution as resolution
from handlers.common.format import money, short, when_text
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.service import capture
from handlers.service.keys import NoteKey, PriorityKey, SetPriorityKey, TakeKey
from handlers.service.notify import tell_assignee, tell_owner
from handlers.service.priority import choose_priority, infer_category
from handlers.service.render import line_of, ticket_reply
from handlers.service.steps import ServiceStep, parse_ref, split_head
from handlers.service.work import NOTE, NoteFor

router = Router("service.tickets", audience="service", title="客服")
USAGE = "工单 <客户> <问题>｜工单 #编号｜工单 <客户>"
EXAMPLE = "工单 阿里 系统登录不了，全公司都用不了"


@dataclass(frozen=True)
class TicketDraft:
    text: str


@router.command(
    "工单",
    "开工单",
    "ticket",
    summary="开工单（自动判断优先级和类别）；“工单 #编号”看详情；“工单 <客户>”看该客户的工单",
    usage=USAGE,
    example=EXAMPLE,
)
async def ticket_command(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = parse_ref(argument)
    if ref is not None and not ref[1]:
        return await show_ticket(ctx, ref[0])
    head, rest = split_head(argument)
    if not head:
        return [ctx.usage()]
    if not rest:
        held = await capture.held_text(ctx)
        if held is None:
            return await resolution.resolve(
                ctx, head, step=ServiceStep.LIST, draft=resolution.NoDraft()
            )
        return await resolution.resolve(ctx, head, step=ServiceStep.OPEN, draft=TicketDraft(""))
    return await resolution.resolve(ctx, head, step=ServiceStep.OPEN, draft=TicketDraft(rest))


async def show_ticket(ctx: HandlerContext, ticket_id: int) -> list[Reply]:
    view = await ticket_view(ctx.session, scope=ctx.scope(), ticket_id=ticket_id)
    if view is None:
        return [ctx.reply("service/not_found", number=ticket_id)]
    return [ticket_reply(ctx, view)]


@resolution.continues(ServiceStep.OPEN, TicketDraft)
async def open_for(ctx: HandlerContext, customer: Customer, draft: TicketDraft) -> list[Reply]:
    """Open the ticket; the words come from the command, or from the messages held for it."""
    text, attachments = draft.text, list[dict[str, Any]]()
    if not text:
        held = await capture.take_held(ctx)
        if held is not None:
            text, attachments = held
    if not text.strip() and not attachments:
        return [ctx.reply("service/needs_text", what="问题", example=EXAMPLE)]
    priority, content, stated = choose_priority(text)
    content = content or text or "（见附件）"
    categories = await config_data.get_ticket_categories(ctx.session)
    opened = await tickets.open_ticket(
        ctx.session,
        scope=ctx.scope(),
        customer=customer,
        content=content,
        priority=priority,
        category=infer_category(content, categories),
        attachments=attachments,
        source_key=ctx.message.key,
        now=ctx.now(),
        tz=ctx.tz,
    )
    ticket = opened.ticket
    view = await ticket_view(ctx.session, scope=ctx.scope(), ticket_id=ticket.id)
    assert view is not None
    clocks = {c.target: c for c in view.clocks}
    first = clocks.get("first_response")
    resolve_by = clocks.get("resolution")
    card = ctx.card_from(
        "service/opened_card",
        task_id=resolution.task_id(ctx, "ticket"),
        keys=(
            (TakeKey(ticket.id).pack(), 1),
            (PriorityKey(ticket.id).pack(), 2),
            (NoteKey(ticket.id).pack(), 2),
        ),
        number=ticket.number,
        customer=customer.name,
        priority=ticket.priority,
        stated=stated,
        category=ticket.category,
        content=short(ticket.content, 60),
        attachments=len(ticket.attachments or []),
        assignee=view.assignee_name or "待分配（排队中）",
        first_due=when_text(ctx, first.due_at if first else None),
        resolve_due=when_text(ctx, resolve_by.due_at if resolve_by else None),
    )
    replies: list[Reply] = [card]
    if opened.created:
        replies += await tell_assignee(ctx, ticket, customer.name, event="opened")
        replies += await tell_owner(ctx, ticket, customer, event="opened")
    return replies


@resolution.continues(ServiceStep.LIST, resolution.NoDraft)
async def list_for(
    ctx: HandlerContext, customer: Customer, _draft: resolution.NoDraft
) -> list[Reply]:
    """A customer as service sees it: tickets first, then follow-ups, owner and deals."""
    view = await service_card(ctx.session, scope=ctx.scope(), customer=customer, now=ctx.now())
    card = view.card
    return [
        ctx.reply(
            "service/customer",
            c=card,
            owner="公海" if card.in_pool else (card.owner_name or "无"),
            tickets=[line_of(ctx, t) for t in view.tickets],
            followups=[
                {
                    "when": when_text(ctx, f.created_at, with_time=False),
                    "author": f.author,
                    "content": short(f.content, 40),
                }
                for f in card.recent_followups
            ],
            deals=[
                {"title": d.title, "stage": d.stage, "amount": money(d.amount)}
                for d in card.open_deals
            ],
        )
    ]


@router.command(
    "我的工单",
    "mytickets",
    summary="我手上未完成的工单，超时的在前，按 SLA 期限排序",
    usage="我的工单",
    example="我的工单",
)
async def my_tickets(ctx: HandlerContext, _argument: str) -> list[Reply]:
    listed = await tickets.assigned_open(
        ctx.session, scope=ctx.scope(), assignee_id=ctx.user_id, now=ctx.now(), limit=21
    )
    names = await customer_names(ctx.session, {t.customer_id for t in listed if t.customer_id})
    return [
        ctx.reply(
            "service/list",
            title="我的工单",
            truncated=len(listed) > 20,
            lines=[line_of(ctx, t, names.get(t.customer_id or 0)) for t in listed[:20]],
        )
    ]


@router.card(PriorityKey)
async def tap_priority(ctx: HandlerContext, key: PriorityKey) -> list[Reply]:
    ticket = await tickets.get_visible(ctx.session, ctx.scope(), key.ticket_id)
    if ticket is None:
        return [ctx.reply("service/not_found", number=key.ticket_id)]
    return [
        ctx.card_from(
            "service/priority_card",
            task_id=resolution.task_id(ctx, "prio"),
            keys=tuple(
                (SetPriorityKey(ticket.id, p.value).pack(), 3 if p is Priority.P1 else 1)
                for p in Priority
            ),
            number=ticket.number,
            priority=ticket.priority,
        )
    ]


@router.card(NoteKey)
async def tap_note(ctx: HandlerContext, key: NoteKey) -> list[Reply]:
    ticket = await tickets.get_visible(ctx.session, ctx.scope(), key.ticket_id)
    if ticket is None:
        return [ctx.reply("service/not_found", number=key.ticket_id)]
    await ctx.state.put(NOTE, NoteFor(ticket.id))
    return [ctx.reply("service/ask_note", number=ticket.number)]
