"""The one formatter of dates, weekdays and money: what a rep reads back in every reply."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from handlers.common.format import format_when, money

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 3, 23, 50, tzinfo=SH)  # Thursday, ten minutes to midnight


@pytest.mark.parametrize(
    ("moment", "with_time", "shown"),
    [
        (datetime(2026, 12, 3, 9, 0, tzinfo=SH), True, "今天 12月3日(周四) 09:00"),
        (datetime(2026, 12, 4, 15, 0, tzinfo=SH), True, "明天 12月4日(周五) 15:00"),
        (datetime(2026, 12, 5, 9, 0, tzinfo=SH), False, "后天 12月5日(周六)"),
        (datetime(2026, 12, 2, 18, 0, tzinfo=SH), True, "昨天 12月2日(周三) 18:00"),
        (datetime(2026, 12, 12, 14, 0, tzinfo=SH), True, "12月12日(周六) 14:00"),
        (datetime(2027, 1, 3, 9, 0, tzinfo=SH), False, "2027年1月3日(周日)"),
        # 16:05 UTC is 00:05 the next day in Shanghai: the company's day counts.
        (datetime(2026, 12, 3, 16, 5, tzinfo=UTC), True, "明天 12月4日(周五) 00:05"),
        (None, True, "未设置"),
    ],
)
def test_format_when(moment: datetime | None, with_time: bool, shown: str) -> None:
    assert format_when(moment, now=NOW, tz=SH, with_time=with_time) == shown


def test_format_when_reads_now_in_the_company_zone() -> None:
    """A UTC clock at 16:30 is already the next day in Shanghai."""
    utc_now = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)
    moment = datetime(2026, 12, 4, 15, 0, tzinfo=SH)
    assert format_when(moment, now=utc_now, tz=SH) == "今天 12月4日(周五) 15:00"


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Decimal(1_200_000), "120万"),
        (Decimal(15_000), "1.5万"),
        (Decimal("8500"), "¥8,500"),
        (Decimal("1234.50"), "¥1,234.5"),
        (None, "—"),
    ],
)
def test_money(amount: Decimal | None, shown: str) -> None:
    assert money(amount) == shown
