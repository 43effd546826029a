"""跟进 / log: a follow-up in plain Chinese becomes a record and a reminder; 撤销 / undo."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from crm_store import config_data, followups, tasks
from crm_store.config_data import FollowupKind
from crm_store.customers import NotAllowed
from crm_store.models import Customer
from handlers.common import customer_resolution as resolution
from handlers.common.collisions import notify_owner
from handlers.common.format import when_text
from handlers.kit.cards import CardKey
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router, normalize_text, original_argument
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
from handlers.parsing.when import holiday_name, is_workday, next_workday
from handlers.sales import undo
from handlers.sales.steps import SELLERS, SalesStep

router = Router("sales.followup", audience="sales", title="销售", roles=SELLERS)


@dataclass(frozen=True)
class FollowupDraft:
    text: str


@dataclass(frozen=True)
class UndoKey(CardKey, prefix="undo", legacy="undo:"):
    followup_id: int


@dataclass(frozen=True)
class WorkdayKey(CardKey, prefix="workday"):
    """Move a reminder that fell on a weekend or holiday to the next working day."""

    task_id: int
    day: int  # the working day as YYYYMMDD


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
    # Matching used the normalised text; what is stored keeps the rep's own punctuation.
    typed = original_argument(ctx, argument)
    typed_head, typed_rest = split_head(typed)
    if typed_head and normalize_text(typed_head) == head:
        argument, rest = typed, typed_rest
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
    await undo.remember(ctx, undo.UndoKind.FOLLOWUP, logged.followup_id)
    await ctx.state.put(resolution.LAST_CUSTOMER, resolution.LastCustomer(customer.id))
    keys: tuple[tuple[str, int], ...] = ((UndoKey(logged.followup_id).pack(), 2),)
    off_day = workday = None
    if when is not None:
        local_day = when.at.astimezone(ctx.tz).date()
        if not is_workday(local_day):
            off_day = holiday_name(local_day) or "休息日"
            workday = next_workday(local_day)
            if logged.task_id is not None:
                day_key = workday.year * 10000 + workday.month * 100 + workday.day
                keys += ((WorkdayKey(logged.task_id, day_key).pack(), 1),)
    card = ctx.card_from(
        "sales/followup_card",
        task_id=resolution.task_id(ctx, "log"),
        keys=keys,
        customer=customer.name,
        kind=kind_label(kinds, kind),
        content=step.content or text,
        next_step=next_step,
        reminder=when_text(ctx, when.at) if when is not None else None,
        vague=when.text if when is not None and when.vague else None,
        off_day=off_day,
        workday=when_text(ctx, _on_day(when.at, workday, ctx)) if when and workday else None,
        workday_day=f"{workday.month}月{workday.day}日" if workday else None,
    )
    replies = [card]
    replies += await notify_owner(ctx, customer, action="followup", detail=step.content or text)
    return replies


_TIME_TAIL = re.compile(
    r"^\s*(?:之前|以前|之后|以后|前后|左右|上下|前|为止|之内|以内|内|的时候|时候|时|那天|当天)"
)
_TIME_LEAD = re.compile(r"(?:大概|大约|约莫|约|在|于|最晚|最迟|by|on|at)\s*$", re.I)


def _without_time(next_step: str | None, when: When | None) -> str | None:
    """ "下周三下午再联系" is stored as "再联系" due next Wednesday 14:00, "月底前发方案" as
    "发方案" due at the month's end: the time and its 前/左右 live apart."""
    if not next_step or when is None or when.text not in next_step:
        return next_step
    at = next_step.index(when.text)
    before = _TIME_LEAD.sub("", next_step[:at])
    after = _TIME_TAIL.sub("", next_step[at + len(when.text) :])
    rest = f"{before.rstrip()} {after.lstrip()}".strip(" ，,。.;；:：")
    return rest or "再次跟进"


def _on_day(moment: datetime, day: date, ctx: HandlerContext) -> datetime:
    """The same local time of day on another date."""
    local = moment.astimezone(ctx.tz)
    return local.replace(year=day.year, month=day.month, day=day.day)


@router.card(WorkdayKey)
async def tap_workday(ctx: HandlerContext, key: WorkdayKey) -> list[Reply]:
    """The reminder fell on a day off: move it to the working day the card offered."""
    year, rest = divmod(key.day, 10000)
    month, day = divmod(rest, 100)
    due = await tasks.due_of(ctx.session, owner_id=ctx.user_id, task_id=key.task_id)
    if due is None:
        return [ctx.reply("sales/task_result", outcome="not_found", title="", due="")]
    local = due.astimezone(ctx.tz)
    try:
        moved_to = local.replace(year=year, month=month, day=day)
    except ValueError:
        return [ctx.reply("errors/stale_card")]
    result = await tasks.postpone_task(
        ctx.session,
        owner_id=ctx.user_id,
        task_id=key.task_id,
        due_at=moved_to.astimezone(UTC),
        now=ctx.now(),
        source_key=ctx.message.key,
    )
    item = result.task
    return [
        ctx.reply(
            "sales/task_result",
            outcome=result.outcome.value,
            title=item.title if item else "",
            due=when_text(ctx, item.due_at) if item and item.due_at else "",
        )
    ]


@router.card(UndoKey)
async def tap_undo(ctx: HandlerContext, key: UndoKey) -> list[Reply]:
    return await undo.undo_followup(ctx, key.followup_id)
