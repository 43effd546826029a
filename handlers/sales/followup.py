"""跟进 / log: a follow-up in plain Chinese becomes a record and a reminder; 撤销 / undo."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, timedelta

from crm_store import config_data, followups
from crm_store.config_data import FollowupKind
from crm_store.customers import NotAllowed
from crm_store.followups import UndoResult
from crm_store.models import Customer
from handlers.common import customer_resolution as resolution
from handlers.common.collisions import notify_owner
from handlers.common.format import when_text
from handlers.kit.cards import CardKey
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.parsing import (
    FALLBACK_KIND,
    When,
    WhenError,
    WhenProblem,
    find_followup_kind,
    kind_label,
    looks_like_note,
    split_next_step,
)
from handlers.sales.steps import SELLERS, SalesStep

router = Router("sales.followup", audience="sales", title="销售", roles=SELLERS)


@dataclass(frozen=True)
class FollowupDraft:
    text: str


@dataclass(frozen=True)
class UndoFollowup:
    followup_id: int


@dataclass(frozen=True)
class UndoKey(CardKey, prefix="undo", legacy="undo:"):
    followup_id: int


UNDO = router.slot("undo", UndoFollowup, ttl=timedelta(minutes=10))
_HEAD = re.compile(r"\s*([^\s,，;；:：]+)[\s,，;；:：]*(.*)", re.S)
USAGE = "跟进 <客户> <发生了什么，下一步和时间>"
EXAMPLE = "跟进 阿里 今天拜访了王总，对报价有兴趣，下周三下午再联系"


def split_head(argument: str) -> tuple[str, str]:
    """The first word (a customer) and the rest; commas and colons count as spaces."""
    match = _HEAD.match(argument)
    if match is None:
        return "", ""
    return match.group(1), match.group(2).strip()


@router.command(
    "跟进",
    "记跟进",
    "记录",
    "log",
    "followup",
    summary="记跟进：自动识别方式、下一步和时间，并设好提醒",
    usage=USAGE,
    example=EXAMPLE,
)
async def log_followup(ctx: HandlerContext, argument: str) -> list[Reply]:
    head, rest = split_head(argument)
    if not head:
        return [ctx.usage()]
    if not await _is_customer_name(ctx, head):
        # Only a first word that is clearly part of the note goes to the last customer; a
        # name that finds nothing is answered "not found", never filed on someone else.
        kinds = await config_data.get_followup_kinds(ctx.session)
        if looks_like_note(head, kinds, now=ctx.now(), tz=ctx.tz):
            customer = await resolution.last_customer(ctx)
            if customer is not None:
                return await _record(ctx, customer, argument, kinds)
    if not rest:
        return [ctx.reply("sales/followup_needs_content", customer=head, example=EXAMPLE)]
    problem = _time_problem(ctx, rest)
    if problem is not None:
        return [problem]
    return await resolution.resolve(ctx, head, step=SalesStep.LOG, draft=FollowupDraft(rest))


async def _is_customer_name(ctx: HandlerContext, word: str) -> bool:
    """Does the first word name a customer well (not just a fuzzy echo of a sentence)?"""
    found = await ctx.search.search(ctx.session, scope=ctx.scope(), query=word, limit=1)
    return bool(found) and found[0].hit.kind in {
        "exact",
        "alias",
        "learned",
        "prefix",
        "substring",
        "pinyin",
        "initials",
    }


def _time_problem(ctx: HandlerContext, text: str) -> Reply | None:
    step = split_next_step(text, now=ctx.now(), tz=ctx.tz)
    if isinstance(step.when, WhenProblem):
        template = (
            "sales/time_in_past" if step.when.kind is WhenError.PAST else "sales/time_impossible"
        )
        return ctx.reply(template, text=step.when.text)
    return None


@resolution.continues(SalesStep.LOG, FollowupDraft)
async def record_followup(
    ctx: HandlerContext, customer: Customer, draft: FollowupDraft
) -> list[Reply]:
    kinds = await config_data.get_followup_kinds(ctx.session)  # read once per message
    return await _record(ctx, customer, draft.text, kinds)


async def _record(
    ctx: HandlerContext, customer: Customer, text: str, kinds: list[FollowupKind]
) -> list[Reply]:
    problem = _time_problem(ctx, text)
    if problem is not None:
        return [problem]
    step = split_next_step(text, now=ctx.now(), tz=ctx.tz)
    when = step.when if isinstance(step.when, When) else None
    found = find_followup_kind(text, kinds)
    kind = found.code if found else FALLBACK_KIND
    next_step = _without_time(step.next_step, when)
    try:
        logged = await followups.log_followup(
            ctx.session,
            scope=ctx.scope(),
            customer_id=customer.id,
            kind=kind,
            content=step.content or text,
            next_step=next_step,
            next_step_at=when.at.astimezone(UTC) if when else None,
            source_key=ctx.message.key,
            now=ctx.now(),
        )
    except NotAllowed:
        return [ctx.reply("sales/not_your_customer", name=customer.name)]
    await ctx.state.put(UNDO, UndoFollowup(logged.followup_id))
    await ctx.state.put(resolution.LAST_CUSTOMER, resolution.LastCustomer(customer.id))
    reminder = None
    if when is not None:
        reminder = (
            when_text(ctx, when.at) if when.has_time else when_text(ctx, when.at, with_time=False)
        )
    card = ctx.card_from(
        "sales/followup_card",
        task_id=resolution.task_id(ctx, "log"),
        keys=((UndoKey(logged.followup_id).pack(), 2),),
        customer=customer.name,
        kind=kind_label(kinds, kind),
        content=step.content or text,
        next_step=next_step,
        reminder=reminder,
    )
    replies = [card]
    replies += await notify_owner(ctx, customer, action="followup", detail=step.content or text)
    return replies


def _without_time(next_step: str | None, when: When | None) -> str | None:
    """ "下周三下午再联系" is stored as "再联系" due next Wednesday 14:00: the time lives apart."""
    if not next_step or when is None or when.text not in next_step:
        return next_step
    rest = next_step.replace(when.text, "", 1).strip(" ，,。.;；:：")
    return rest or "再次跟进"


@router.command(
    "撤销",
    "撤回",
    "undo",
    summary="撤销刚记的跟进（10 分钟内）",
    usage="撤销",
    example="撤销",
)
async def undo_last(ctx: HandlerContext, _argument: str) -> list[Reply]:
    pending = await ctx.state.get(UNDO)
    if pending is None:
        return [ctx.reply("sales/nothing_to_undo")]
    return await _undo(ctx, pending.followup_id)


@router.card(UndoKey)
async def tap_undo(ctx: HandlerContext, key: UndoKey) -> list[Reply]:
    return await _undo(ctx, key.followup_id)


async def _undo(ctx: HandlerContext, followup_id: int) -> list[Reply]:
    result = await followups.undo_followup(
        ctx.session,
        actor_id=ctx.user_id,
        followup_id=followup_id,
        now=ctx.now(),
        source_key=ctx.message.key,
    )
    if result in (UndoResult.UNDONE, UndoResult.ALREADY_UNDONE, UndoResult.NOT_FOUND):
        await ctx.state.clear(UNDO)
    return [ctx.reply("sales/undo_result", result=result.value)]
