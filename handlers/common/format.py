"""Pieces the sales commands share: who is asking, formatting of times, money and people.

format_when and money are the only formatters of dates, weekdays and amounts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import wraps

from sqlalchemy import select

from crm_store.models import Staff
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply

Handler = Callable[[HandlerContext, str], Awaitable[list[Reply]]]
_WEEKDAYS = "一二三四五六日"


def needs_actor(handler: Handler) -> Handler:
    """Commands that touch CRM data answer unknown people politely instead of failing."""

    @wraps(handler)
    async def guarded(ctx: HandlerContext, argument: str) -> list[Reply]:
        if ctx.actor is None:
            return [ctx.reply("errors/not_registered")]
        if ctx.search is None:
            return [ctx.reply("errors/apology")]
        return await handler(ctx, argument)

    return guarded


_RELATIVE_DAYS = {0: "今天", 1: "明天", 2: "后天", -1: "昨天"}


def format_when(
    moment: datetime | None, *, now: datetime, tz: tzinfo, with_time: bool = True
) -> str:
    """The one way a moment is shown: "明天 12月4日(周五) 15:00" (the relative word only when
    close, the year only when another), so a rep typing near midnight sees which day was meant."""
    if moment is None:
        return "未设置"
    local = moment.astimezone(tz)
    today = now.astimezone(tz).date()
    day = f"{local.month}月{local.day}日(周{_WEEKDAYS[local.weekday()]})"
    if local.year != today.year:
        day = f"{local.year}年{day}"
    relative = _RELATIVE_DAYS.get((local.date() - today).days)
    if relative is not None:
        day = f"{relative} {day}"
    return f"{day} {local:%H:%M}" if with_time else day


def when_text(ctx: HandlerContext, moment: datetime | None, *, with_time: bool = True) -> str:
    """format_when in the company zone, against the handler's clock."""
    return format_when(moment, now=ctx.now(), tz=ctx.tz, with_time=with_time)


def money(amount: Decimal | None) -> str:
    """¥1,200,000 as 120万 when round, the way sales people say it."""
    if amount is None:
        return "—"
    if amount >= 10_000 and amount % 100 == 0:
        wan = amount / 10_000
        text = f"{wan:,.2f}".rstrip("0").rstrip(".")
        return f"{text}万"
    return f"¥{amount:,.2f}".rstrip("0").rstrip(".")


async def staff_names(ctx: HandlerContext, userids: set[str | None]) -> dict[str, str]:
    ids = sorted(u for u in userids if u)
    if not ids:
        return {}
    rows = await ctx.session.execute(select(Staff.userid, Staff.name).where(Staff.userid.in_(ids)))
    return {userid: name for userid, name in rows.all()}
