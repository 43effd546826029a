"""Cells to values: text, lists, names, local times and column widths; pure functions."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from crm_store.names import normalize_company_name

__all__ = [
    "cell_text",
    "core_name",
    "parse_local_datetime",
    "row_values",
    "split_list",
    "too_long",
]

# Column widths of the schema: PostgreSQL refuses a longer value, so it is a bad row up front.
_MAX_LEN = {
    "name": 200,
    "industry": 64,
    "city": 64,
    "phone": 32,
    "contact": 100,
    "source": 64,
    "level": 16,
    "status": 16,
    "tag": 32,
    "lead_name": 100,
    "company": 200,
}
_LABELS = {
    "name": "名称",
    "industry": "行业",
    "city": "城市",
    "contact": "联系人",
    "source": "来源",
    "level": "级别",
    "status": "状态",
    "tag": "标签",
    "lead_name": "名称",
    "company": "公司",
}
_LIST_SEPARATORS = re.compile(r"[,，、;；|｜\n]+")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def row_values(headers: list[str], cells: list[Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, cell in enumerate(cells):
        text = cell_text(cell)
        if text:
            header = (
                headers[index] if index < len(headers) and headers[index] else f"列{index + 1}"
            )
            values[header] = text
    return values


# Values -------------------------------------------------------------------------------------


def split_list(text: str) -> list[str]:
    """Tags and aliases as people type them: , ， 、 ; | separated, blanks and repeats dropped."""
    return list(dict.fromkeys(p.strip() for p in _LIST_SEPARATORS.split(text) if p.strip()))


def too_long(values: dict[str, str | None]) -> str | None:
    for key, value in values.items():
        limit = _MAX_LEN[key]
        if value is not None and len(value) > limit:
            return f"{_LABELS[key]}超过 {limit} 个字符 ({key} too long)"
    return None


def core_name(name: str) -> str:
    """The dedup key of a customer name (crm_store.names), never empty."""
    return (normalize_company_name(name) or name.strip().casefold())[:200]


def parse_local_datetime(value: Any, tz: tzinfo) -> datetime | None:
    """A date/datetime cell or 'YYYY-MM-DD[ HH:MM[:SS]]' text, read in the company's zone.

    A date alone means 09:00 that day, the start of the working day. Raises ValueError if the
    text is not a time; returns None for an empty cell.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(9))
    else:
        moment = _parse_text_time(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def _parse_text_time(value: str) -> datetime:
    """'2026-01-31 14:30', '2026/1/31', '2026年1月31日 9:00' as naive local time; a date alone
    is 09:00. Raises ValueError with the text as written."""
    text = unicodedata.normalize("NFKC", value).strip()
    text = re.sub(r"[年月/.]", "-", text).replace("日", " ").replace("T", " ")
    text = re.sub(r"\s+", " ", text).strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text, pattern)  # noqa: DTZ007 - zone added by the caller
        except ValueError:
            continue
        return moment.replace(hour=9) if pattern == "%Y-%m-%d" else moment
    raise ValueError(value)
