"""查 / find: a customer from whatever the rep remembers; 我的客户 / mine; answering choices."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from crm_store import deals, followups, tasks
from crm_store.models import Customer, Ticket
from crm_store.models.service import TicketStatus
from handlers.common import customer_resolution as resolution
from handlers.common.format import money, needs_actor, staff_names, when_text
from handlers.kit import state
from handlers.kit.context import HandlerContext
from handlers.kit.inbound import CardAction
from handlers.kit.replies import Reply
from handlers.kit.routing import Router

router = Router(name=__name__)
_NUMBER = re.compile(r"(?:第)?([1-9])(?:个)?")
TICKET_STATUS_TEXT = {"open": "待处理", "in_progress": "处理中", "resolved": "已解决"}


@router.command(
    "查",
    "查客户",
    "查找",
    "搜索",
    "find",
    "search",
    "lookup",
    summary="查客户：名称片段、拼音、首字母、错别字都能找到",
    usage="查 <名称/拼音/首字母>",
    example="查 albb",
    audience="sales",
)
@needs_actor
async def find_customer(ctx: HandlerContext, query: str) -> list[Reply]:
    """Search only what the actor may see: a result list is a leak too."""
    if not query:
        return [ctx.reply("help/usage", usage="查 <名称/拼音/首字母>", example="查 阿里")]
    return await resolution.resolve(ctx, query, purpose="show", payload={})


@resolution.continues("show")
async def show_customer(
    ctx: HandlerContext, customer: Customer, _payload: dict[str, Any]
) -> list[Reply]:
    return [await customer_card(ctx, customer)]


async def customer_card(ctx: HandlerContext, customer: Customer) -> Reply:
    """Everything a rep needs before a call, on one screen."""
    scope = ctx.scope()
    open_deals = await deals.open_opportunities(ctx.session, scope=scope, customer_id=customer.id)
    recent = await followups.recent_followups(
        ctx.session, scope=scope, customer_id=customer.id, limit=3
    )
    tickets = (
        await ctx.session.scalars(
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
    names = await staff_names(ctx, {customer.owner_id, *(f.author_id for f in recent)})
    owner = "公海" if customer.in_pool else names.get(customer.owner_id or "", "无")
    return ctx.reply(
        "customer/card",
        c=customer,
        owner=owner,
        stage=open_deals[0].stage if open_deals else None,
        next_followup=when_text(ctx, customer.next_followup_at),
        deals=[
            {"title": d.title, "stage": d.stage, "amount": money(d.amount)} for d in open_deals[:3]
        ],
        followups=[
            {
                "when": when_text(ctx, f.created_at, with_time=False),
                "author": names.get(f.author_id, f.author_id),
                "content": _short(f.content, 40),
            }
            for f in recent
        ],
        tickets=[
            {
                "number": t.number,
                "priority": t.priority,
                "status": TICKET_STATUS_TEXT.get(t.status, t.status),
                "content": _short(t.content, 24),
            }
            for t in tickets
        ],
    )


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@router.command(
    "我的客户",
    "我的",
    "mine",
    "my",
    summary="我名下的客户，按下次跟进时间排序",
    usage="我的客户",
    example="我的客户",
    audience="sales",
)
@needs_actor
async def list_my_customers(ctx: HandlerContext, _argument: str) -> list[Reply]:
    lines = await tasks.my_customers(
        ctx.session, scope=ctx.scope(), owner_id=ctx.user_id, now=ctx.now(), limit=21
    )
    shown = lines[:20]
    return [
        ctx.reply(
            "customer/mine",
            truncated=len(lines) > 20,
            lines=[
                {
                    "name": line.name,
                    "next": when_text(ctx, line.next_followup_at),
                    "stage": line.stage,
                }
                for line in shown
            ],
        )
    ]


@router.text
async def answer_choice(ctx: HandlerContext, text: str) -> list[Reply] | None:
    """A bare "2" (or "第2个") answers the list sent just before it."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None or ctx.actor is None or ctx.search is None:
        return None
    return await resolution.pick(ctx, number=int(match.group(1)))


@router.card_action("pick:")
async def tap_choice(ctx: HandlerContext, _action: CardAction, rest: str) -> list[Reply]:
    """A tap on a candidate: continue the waiting command, or just show that customer."""
    if ctx.actor is None or ctx.search is None or not rest.isdigit():
        return []
    picked = await resolution.pick(ctx, customer_id=int(rest))
    if picked is not None:
        return picked
    from crm_store.customers import get_visible

    customer = await get_visible(ctx.session, ctx.scope(), int(rest))
    if customer is None:
        return [ctx.reply("customer/gone")]
    await state.remember(ctx, state.LAST_CUSTOMER, {"id": customer.id})
    return [await customer_card(ctx, customer)]
