"""Which day or week a pulled digest is about: 今天 / 昨天 / 前天 / 11月20日 / 2026-11-20 for
日报, 本周 / 上周 / 上上周 or any day of the week for 周报. Pure, with the local date handed in.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_RELATIVE_DAYS = {"": 0, "今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2, "today": 0}
_RELATIVE_DAYS |= {"yesterday": 1}
_RELATIVE_WEEKS = {"": 0, "本周": 0, "这周": 0, "这个星期": 0, "上周": 1, "上个星期": 1}
_RELATIVE_WEEKS |= {"上上周": 2, "this week": 0, "last week": 1}
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_MONTH_DAY = re.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号]?")
_SHORT = re.compile(r"(\d{1,2})[-/.](\d{1,2})")


def _absolute(text: str, today: date) -> date | None:
    """A written date; one without a year is the latest such date not after today."""
    for pattern in (_ISO, _MONTH_DAY, _SHORT):
        match = pattern.fullmatch(text)
        if match is None:
            continue
        parts = [int(p) if p else None for p in match.groups()]
        year, month, day = parts if len(parts) == 3 else (None, *parts)
        try:
            found = date(year or today.year, month or 0, day or 0)
            if year is None and found > today:
                found = date(today.year - 1, found.month, found.day)
        except ValueError:
            return None
        return found
    return None


def parse_day(text: str, today: date) -> date | None:
    """The day 日报 is about; None when the words name no day (or a day still to come)."""
    words = " ".join(text.split()).lower()
    if words in _RELATIVE_DAYS:
        return today - timedelta(days=_RELATIVE_DAYS[words])
    found = _absolute(words, today)
    return found if found is not None and found <= today else None


def parse_week(text: str, today: date) -> date | None:
    """A day inside the week 周报 is about (its Monday), or None."""
    words = " ".join(text.split()).lower()
    monday = today - timedelta(days=today.weekday())
    if words in _RELATIVE_WEEKS:
        return monday - timedelta(weeks=_RELATIVE_WEEKS[words])
    found = _absolute(words, today)
    if found is None or found > today:
        return None
    return found - timedelta(days=found.weekday())
