"""商机 / deal: open a deal with an amount in any Chinese form; 阶段 / stage: move it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from crm_store import config_data, customers, deals
from crm_store.customers import NotAllowed
from crm_store.deals import MoveOutcome, OpportunityView
from crm_store.models import Customer
from handlers.common import customer_resolution as resolution
from handlers.common.format import money
from handlers.kit.cards import CardKey
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.parsing import find_amount
from handlers.sales import undo
from handlers.sales.followup import split_head
from handlers.sales.steps import SELLERS, SalesStep

router = Router("sales.deals", audience="sales", title="销售", roles=SELLERS)


@dataclass(frozen=True)
class DealDraft:
    title: str
    amount: str | None  # a Decimal as text: JSON has no exact decimals
    confirmed: bool = False  # the rep said "yes, another one" after the same-name question


@dataclass(frozen=True)
class SameDealWait:
    customer_id: int
    draft: DealDraft


@dataclass(frozen=True)
class ConfirmDealKey(CardKey, prefix="same_deal"):
    customer_id: int


@dataclass(frozen=True)
class StageDraft:
    stage: str
    reason: str | None


@dataclass(frozen=True)
class LostReasonWait:
    opportunity_id: int
    stage: str


LOST_REASON = router.slot("lost_reason", LostReasonWait, ttl=timedelta(minutes=10))
SAME_DEAL = router.slot("same_deal", SameDealWait, ttl=timedelta(minutes=10))
REOPEN_WINDOW = timedelta(days=90)  # closed deals the card shows and a stage move reopens
_WORDS = re.compile(r"[\s,，;；]+")
# "算了，不丢了": taking the loss back rather than giving its reason.
CANCEL = re.compile(
    r"(取消|算了|不丢了|没丢|不输了|不是输单|搞错了|先不|cancel)[\s,，。.!！]*"
    r"(不丢了|没丢|不输了|先不改了|不改了|取消)?[\s,，。.!！]*",
    re.I,
)
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
)
async def create_deal(ctx: HandlerContext, argument: str) -> list[Reply]:
    head, rest = split_head(argument)
    if not head or not rest:
        return [ctx.usage()]
    amount: Decimal | None = None
    found = find_amount(rest)
    title = rest
    if found is not None:
        amount, (start, end) = found
        title = (rest[:start] + rest[end:]).strip(" ,，;；:：")
    if not title:
        return [ctx.reply("sales/deal_needs_title", example=DEAL_EXAMPLE)]
    draft = DealDraft(title[:200], None if amount is None else str(amount))
    return await resolution.resolve(ctx, head, step=SalesStep.DEAL, draft=draft)


@resolution.continues(SalesStep.DEAL, DealDraft)
async def record_deal(ctx: HandlerContext, customer: Customer, draft: DealDraft) -> list[Reply]:
    twin = await deals.same_title(
        ctx.session, scope=ctx.scope(), customer_id=customer.id, title=draft.title
    )
    if twin is not None and not draft.confirmed:
        await ctx.state.put(SAME_DEAL, SameDealWait(customer.id, draft))
        return [
            ctx.card_from(
                "sales/same_deal_card",
                task_id=resolution.task_id(ctx, "samedeal"),
                keys=((ConfirmDealKey(customer.id).pack(), 2),),
                customer=customer.name,
                title=twin.title,
                stage=twin.stage,
                amount=money(twin.amount),
            )
        ]
    await ctx.state.clear(SAME_DEAL)
    amount = Decimal(draft.amount) if draft.amount else None
    try:
        opportunity, created = await deals.create_opportunity(
            ctx.session,
            scope=ctx.scope(),
            customer_id=customer.id,
            title=draft.title,
            amount=amount,
            source_key=ctx.message.key,
            now=ctx.now(),
        )
    except NotAllowed:
        return [ctx.reply("sales/not_your_customer", name=customer.name)]
    if created:
        await undo.remember(ctx, undo.UndoKind.DEAL, opportunity.id)
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
)
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
        return [ctx.usage()]
    target = " ".join(words[:index])
    payload = StageDraft(words[index], " ".join(words[index + 1 :]) or None)
    matches = await deals.find_opportunities(ctx.session, scope=ctx.scope(), text=target)
    if not matches and _reopens(stages, payload.stage):
        matches = await deals.find_opportunities(
            ctx.session, scope=ctx.scope(), text=target, closed=True
        )
    if len(matches) == 1:
        return await _move(ctx, matches[0].id, payload)
    if len(matches) > 1:
        return [await _offer_deals(ctx, matches, payload)]
    return await resolution.resolve(ctx, target, step=SalesStep.STAGE, draft=payload)


@resolution.continues(SalesStep.STAGE, StageDraft)
async def stage_for_customer(
    ctx: HandlerContext, customer: Customer, payload: StageDraft
) -> list[Reply]:
    open_deals = await deals.open_opportunities(
        ctx.session, scope=ctx.scope(), customer_id=customer.id
    )
    if not open_deals and _reopens(await config_data.get_stages(ctx.session), payload.stage):
        open_deals = await deals.closed_opportunities(
            ctx.session,
            scope=ctx.scope(),
            customer_id=customer.id,
            since=ctx.now() - REOPEN_WINDOW,
        )
    if not open_deals:
        return [ctx.reply("sales/no_open_deal", customer=customer.name, example=DEAL_EXAMPLE)]
    if len(open_deals) == 1:
        return await _move(ctx, open_deals[0].id, payload)
    return [await _offer_deals(ctx, open_deals, payload)]


def _reopens(stages: list[config_data.Stage], stage_text: str) -> bool:
    """Moving to an open stage may reopen a won or lost deal (签错了, the customer came back)."""
    target = config_data.resolve_stage(stages, stage_text)
    return target is not None and target.outcome.value == "open"


@router.confirms(SAME_DEAL)
async def confirm_same_deal(ctx: HandlerContext, waiting: SameDealWait) -> list[Reply]:
    return await _create_anyway(ctx, waiting)


@router.card(ConfirmDealKey)
async def tap_same_deal(ctx: HandlerContext, key: ConfirmDealKey) -> list[Reply]:
    waiting = await ctx.state.get(SAME_DEAL)
    if waiting is None or waiting.customer_id != key.customer_id:
        return [ctx.reply("help/nothing_to_confirm")]
    return await _create_anyway(ctx, waiting)


async def _create_anyway(ctx: HandlerContext, waiting: SameDealWait) -> list[Reply]:
    customer = await customers.get_visible(ctx.session, ctx.scope(), waiting.customer_id)
    if customer is None:
        return [ctx.reply("customer/gone")]
    draft = DealDraft(waiting.draft.title, waiting.draft.amount, confirmed=True)
    return await record_deal(ctx, customer, draft)


async def _offer_deals(
    ctx: HandlerContext, found: list[OpportunityView], payload: StageDraft
) -> Reply:
    options = [(d.id, f"{d.title}｜{d.stage}") for d in found[:5]]
    return await resolution.offer_options(
        ctx,
        step=SalesStep.STAGE_DEAL,
        draft=payload,
        title=ctx.render("sales/which_deal"),
        options=options,
    )


@resolution.continues_with_option(SalesStep.STAGE_DEAL, StageDraft)
async def stage_for_deal(
    ctx: HandlerContext, opportunity_id: int, payload: StageDraft
) -> list[Reply]:
    return await _move(ctx, opportunity_id, payload)


async def _move(ctx: HandlerContext, opportunity_id: int, payload: StageDraft) -> list[Reply]:
    move = await deals.move_stage(
        ctx.session,
        scope=ctx.scope(),
        opportunity_id=opportunity_id,
        stage_text=payload.stage,
        lost_reason=payload.reason,
        source_key=ctx.message.key,
        now=ctx.now(),
    )
    if move.outcome is MoveOutcome.NEEDS_LOST_REASON:
        await ctx.state.put(LOST_REASON, LostReasonWait(opportunity_id, payload.stage))
        title = move.opportunity.title if move.opportunity else ""
        return [ctx.reply("sales/ask_lost_reason", title=title)]
    await ctx.state.clear(LOST_REASON)
    if move.outcome is MoveOutcome.MOVED:
        await undo.remember(ctx, undo.UndoKind.STAGE, opportunity_id)
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


@router.answers_to(LOST_REASON)
async def lost_reason(
    ctx: HandlerContext, text: str, waiting: LostReasonWait
) -> list[Reply] | None:
    """The answer to "why was it lost?" is the next plain message, unless it takes it back."""
    if CANCEL.fullmatch(text.strip()):
        await ctx.state.clear(LOST_REASON)
        return [await _loss_dropped(ctx, waiting, "sales/lost_cancelled")]
    return await _move(ctx, waiting.opportunity_id, StageDraft(waiting.stage, text.strip()[:500]))


@router.interrupted(LOST_REASON)
async def lost_reason_skipped(ctx: HandlerContext, waiting: LostReasonWait) -> list[Reply]:
    """Another command instead of a reason: the loss is not recorded, and the rep is told."""
    return [await _loss_dropped(ctx, waiting, "sales/lost_not_recorded")]


async def _loss_dropped(ctx: HandlerContext, waiting: LostReasonWait, template: str) -> Reply:
    view = await deals.get_view(
        ctx.session, scope=ctx.scope(), opportunity_id=waiting.opportunity_id
    )
    return ctx.reply(
        template,
        title=view.title if view else "",
        stage=view.stage if view else "",
        target=waiting.stage,
    )
