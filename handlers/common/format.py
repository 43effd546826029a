"""One formatter for what people read: dates with weekdays, money, shortened text.

format_when and money are the only formatters of dates, weekdays and amounts.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from handlers.kit.context import HandlerContext

_WEEKDAYS = "一二三四五六日"


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
    """Amounts the way sales people write them: 80万, 3,500万, 1.2亿; odd sums in yuan."""
    if amount is None:
        return "—"
    if amount >= 100_000_000 and amount % 1_000_000 == 0:
        return f"{_trimmed(amount / 100_000_000)}亿"
    if amount >= 10_000 and amount % 100 == 0:
        return f"{_trimmed(amount / 10_000)}万"
    return f"¥{amount:,.2f}".rstrip("0").rstrip(".")


def _trimmed(value: Decimal) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def short(text: str, limit: int) -> str:
    """One line of at most `limit` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
