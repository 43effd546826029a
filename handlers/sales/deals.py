"""商机 / deal: open a deal with an amount in any Chinese form; 阶段 / stage: move it."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from crm_store import config_data, deals
from crm_store.customers import NotAllowed
from crm_store.deals import MoveOutcome, OpportunityView
from crm_store.models import Customer
from handlers.common import customer_resolution as resolution
from handlers.common.format import money, needs_actor
from handlers.kit import state
from handlers.kit.context import HandlerContext
from handlers.kit.inbound import CardAction
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.parsing import find_amount
from handlers.sales.followup import split_head

router = Router(name=__name__)
_WORDS = re.compile(r"[\s,，;；]+")
DEAL_USAGE = "商机 <客户> <商机名称> [金额]"
DEAL_EXAMPLE = "商机 阿里 云服务器采购 50万"
STAGE_USAGE = "阶段 <客户或商机> <阶段> [输单原因]"
STAGE_EXAMPLE = "阶段 阿里 方案报价"


@router.command(
    "商机",
    "新商机",
    "deal",
    "opportunity",
    summary="新建商机，金额可写 50万、1.2亿、三十万、5w、80k",
    usage=DEAL_USAGE,
    example=DEAL_EXAMPLE,
    audience="sales",
)
@needs_actor
async def create_deal(ctx: HandlerContext, argument: str) -> list[Reply]:
    head, rest = split_head(argument)
    if not head or not rest:
        return [ctx.reply("help/usage", usage=DEAL_USAGE, example=DEAL_EXAMPLE)]
    amount: Decimal | None = None
    found = find_amount(rest)
    title = rest
    if found is not None:
        amount, (start, end) = found
        title = (rest[:start] + rest[end:]).strip(" ,，;；:：")
    if not title:
        return [ctx.reply("sales/deal_needs_title", example=DEAL_EXAMPLE)]
    return await resolution.resolve(
        ctx,
        head,
        purpose="deal",
        payload={"title": title[:200], "amount": None if amount is None else str(amount)},
    )


@resolution.continues("deal")
async def record_deal(
    ctx: HandlerContext, customer: Customer, payload: dict[str, Any]
) -> list[Reply]:
    amount = Decimal(payload["amount"]) if payload.get("amount") else None
    try:
        opportunity, _created = await deals.create_opportunity(
            ctx.session,
            scope=ctx.scope(),
            customer_id=customer.id,
            title=payload["title"],
            amount=amount,
            source_key=ctx.message.key,
            now=ctx.now(),
        )
    except NotAllowed:
        return [ctx.reply("sales/not_your_customer", name=customer.name)]
    return [
        ctx.reply(
            "sales/deal_created",
            customer=customer.name,
            title=opportunity.title,
            stage=opportunity.stage,
            amount=money(opportunity.amount),
        )
    ]


@router.command(
    "阶段",
    "推进",
    "stage",
    summary="推进商机阶段（赢单/成交/签了、输单/丢了 都认识）",
    usage=STAGE_USAGE,
    example=STAGE_EXAMPLE,
    audience="sales",
)
@needs_actor
async def move_deal(ctx: HandlerContext, argument: str) -> list[Reply]:
    words = [w for w in _WORDS.split(argument) if w]
    stages = await config_data.get_stages(ctx.session)
    names = [s.name for s in stages]
    index = next(
        (
            i
            for i in range(1, len(words))
            if config_data.resolve_stage(stages, words[i]) is not None
        ),
        None,
    )
    if index is None:
        if len(words) >= 2:
            return [ctx.reply("sales/unknown_stage", text=words[-1], stages=names)]
        return [ctx.reply("help/usage", usage=STAGE_USAGE, example=STAGE_EXAMPLE)]
    target = " ".join(words[:index])
    payload = {"stage": words[index], "reason": " ".join(words[index + 1 :]) or None}
    matches = await deals.find_opportunities(ctx.session, scope=ctx.scope(), text=target)
    if len(matches) == 1:
        return await _move(ctx, matches[0].id, payload)
    if len(matches) > 1:
        return [await _offer_deals(ctx, matches, payload)]
    return await resolution.resolve(ctx, target, purpose="stage", payload=payload)


@resolution.continues("stage")
async def stage_for_customer(
    ctx: HandlerContext, customer: Customer, payload: dict[str, Any]
) -> list[Reply]:
    open_deals = await deals.open_opportunities(
        ctx.session, scope=ctx.scope(), customer_id=customer.id
    )
    if not open_deals:
        return [ctx.reply("sales/no_open_deal", customer=customer.name, example=DEAL_EXAMPLE)]
    if len(open_deals) == 1:
        return await _move(ctx, open_deals[0].id, payload)
    return [await _offer_deals(ctx, open_deals, payload)]


async def _offer_deals(
    ctx: HandlerContext, found: list[OpportunityView], payload: dict[str, Any]
) -> Reply:
    options = [(d.id, f"{d.title}｜{d.stage}") for d in found[:5]]
    return await resolution.offer_options(
        ctx, purpose="stage_deal", payload=payload, title="要推进哪个商机？", options=options
    )


@resolution.continues_with_option("stage_deal")
async def stage_for_deal(
    ctx: HandlerContext, opportunity_id: int, payload: dict[str, Any]
) -> list[Reply]:
    return await _move(ctx, opportunity_id, payload)


async def _move(ctx: HandlerContext, opportunity_id: int, payload: dict[str, Any]) -> list[Reply]:
    move = await deals.move_stage(
        ctx.session,
        scope=ctx.scope(),
        opportunity_id=opportunity_id,
        stage_text=str(payload["stage"]),
        lost_reason=payload.get("reason"),
        source_key=ctx.message.key,
        now=ctx.now(),
    )
    if move.outcome is MoveOutcome.NEEDS_LOST_REASON:
        await state.remember(
            ctx, state.LOST_REASON, {"opportunity_id": opportunity_id, "stage": payload["stage"]}
        )
        title = move.opportunity.title if move.opportunity else ""
        return [ctx.reply("sales/ask_lost_reason", title=title)]
    await state.forget(ctx, state.LOST_REASON)
    return [
        ctx.reply(
            "sales/stage_result",
            outcome=move.outcome.value,
            title=move.opportunity.title if move.opportunity else "",
            from_stage=move.from_stage,
            to_stage=move.to_stage,
            stages=move.known_stages,
        )
    ]


@router.text
async def lost_reason(ctx: HandlerContext, text: str) -> list[Reply] | None:
    """The answer to "why was it lost?" is the next plain message."""
    if ctx.actor is None:
        return None
    waiting = await state.recall(ctx, state.LOST_REASON)
    if waiting is None:
        return None
    return await _move(
        ctx,
        int(waiting["opportunity_id"]),
        {"stage": waiting["stage"], "reason": text.strip()[:500]},
    )


@router.card_action("opt:")
async def tap_option(ctx: HandlerContext, _action: CardAction, rest: str) -> list[Reply]:
    if ctx.actor is None or not rest.isdigit():
        return []
    return await resolution.pick(ctx, option_id=int(rest)) or [ctx.reply("sales/choice_expired")]
