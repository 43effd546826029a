"""One formatter for what people read: dates with weekdays, money, shortened text."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from handlers.kit.context import HandlerContext

_WEEKDAYS = "一二三四五六日"


def when_text(ctx: HandlerContext, moment: datetime | None, *, with_time: bool = True) -> str:
    """ "11月25日(周三) 14:00", or "今天 14:00" / "明天 9:00" when close, in the company zone."""
    if moment is None:
        return "未设置"
    local = moment.astimezone(ctx.tz)
    today = ctx.local_now().date()
    days = (local.date() - today).days
    day = {0: "今天", 1: "明天", 2: "后天", -1: "昨天"}.get(days)
    if day is None:
        day = f"{local.month}月{local.day}日(周{_WEEKDAYS[local.weekday()]})"
        if local.year != today.year:
            day = f"{local.year}年{day}"
    return f"{day} {local:%H:%M}" if with_time else day


def short(text: str, limit: int) -> str:
    """One line of at most `limit` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(amount: Decimal | None) -> str:
    """¥1,200,000 as 120万 when round, the way sales people say it."""
    if amount is None:
        return "—"
    if amount >= 10_000 and amount % 100 == 0:
        wan = amount / 10_000
        text = f"{wan:,.2f}".rstrip("0").rstrip(".")
        return f"{text}万"
    return f"¥{amount:,.2f}".rstrip("0").rstrip(".")
