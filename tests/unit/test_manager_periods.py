"""Which day 日报 and which week 周报 are about, from the words that follow them."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.manager.periods import parse_day, parse_week

FRIDAY = date(2026, 11, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", FRIDAY),
        ("今天", FRIDAY),
        (" 昨天 ", date(2026, 11, 19)),
        ("前天", date(2026, 11, 18)),
        ("yesterday", date(2026, 11, 19)),
        ("2026-11-03", date(2026, 11, 3)),
        ("2026/11/3", date(2026, 11, 3)),
        ("11月3日", date(2026, 11, 3)),
        ("11月3号", date(2026, 11, 3)),
        ("2025年12月31日", date(2025, 12, 31)),
        ("12-25", date(2025, 12, 25)),  # no year: the latest one not after today
        ("11-20", FRIDAY),
    ],
)
def test_days(text: str, expected: date) -> None:
    assert parse_day(text, FRIDAY) == expected


@pytest.mark.parametrize("text", ["明天", "2026-11-21", "2026-02-30", "13月1日", "上周", "张三"])
def test_what_is_not_a_past_day(text: str) -> None:
    assert parse_day(text, FRIDAY) is None


@pytest.mark.parametrize(
    ("text", "monday"),
    [
        ("", date(2026, 11, 16)),
        ("本周", date(2026, 11, 16)),
        ("上周", date(2026, 11, 9)),
        ("上上周", date(2026, 11, 2)),
        ("last week", date(2026, 11, 9)),
        ("11月4日", date(2026, 11, 2)),
        ("2026-11-16", date(2026, 11, 16)),
    ],
)
def test_weeks(text: str, monday: date) -> None:
    assert parse_week(text, FRIDAY) == monday


@pytest.mark.parametrize("text", ["下周", "2026-11-23", "昨天呀"])
def test_what_is_not_a_week(text: str) -> None:
    assert parse_week(text, FRIDAY) is None
