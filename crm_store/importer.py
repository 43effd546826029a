"""Bring customers, leads and follow-ups in from the spreadsheets teams already keep.

One pass over the file, no query per row: the existing names, phones and staff are loaded once
into dicts, each row is checked against them (and against the rows before it), and the good
rows go in with bulk INSERTs in chunks. A bad row is skipped whole, so nothing partial of it is
written; duplicates and bad rows come back in an ImportReport with the reason in Chinese. The
caller owns the transaction: it commits once at the end, or rolls back (a dry run writes
nothing at all).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import os
import re
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from rapidfuzz import fuzz, process
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit, config_data
from crm_store.customers import normalize_phone
from crm_store.followups import task_key
from crm_store.models.customer import Contact, Customer, CustomerOwnerHistory, OwnerChange
from crm_store.models.org import Staff
from crm_store.models.sales import Followup, Lead, LeadStatus, Task, TaskSource
from crm_store.names import normalize_company_name, pinyin_keys

__all__ = [
    "BadRow",
    "DuplicateRow",
    "ImportFileError",
    "ImportReport",
    "core_name",
    "count_rows",
    "parse_local_datetime",
    "import_customers",
    "import_followups",
    "import_leads",
    "stored_phone",
    "validate_phone",
    "read_table",
    "split_list",
    "write_report",
]

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
COMPANY_TZ = ZoneInfo("Asia/Shanghai")
FUZZY_CUTOFF = 92.0
CHUNK = 5000
PARALLEL_MIN_ROWS = 20_000  # below this, starting the pinyin helper costs more than it saves
IMPORT_KEY_PREFIX = "import:"

# Column synonyms per field, compared after _header_key(); the first one is what export writes.
CUSTOMER_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "客户名称", "公司名称", "企业名称", "客户", "name", "customer", "company"),
    "owner": ("负责人", "销售", "归属人", "跟进人", "owner", "sales", "userid"),
    "industry": ("行业", "所属行业", "industry"),
    "city": ("城市", "所在城市", "地区", "city"),
    "phone": ("电话", "手机", "手机号", "联系电话", "电话号码", "phone", "mobile", "tel"),
    "contact": ("联系人", "联系人姓名", "contact", "contact name"),
    "source": ("来源", "渠道", "客户来源", "来源渠道", "source", "channel"),
    "tags": ("标签", "tags", "tag", "labels"),
    "aliases": ("别名", "简称", "aliases", "alias"),
    "level": ("级别", "客户级别", "等级", "level", "grade"),
    "status": ("状态", "客户状态", "status"),
}
LEAD_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "姓名", "线索名称", "联系人", "name", "lead"),
    "company": ("公司", "公司名称", "单位", "company"),
    "phone": ("电话", "手机", "手机号", "联系电话", "phone", "mobile", "tel"),
    "source": ("来源", "渠道", "线索来源", "source", "channel"),
    "owner": ("负责人", "销售", "owner", "sales", "userid"),
    "status": ("状态", "线索状态", "status"),
}
FOLLOWUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": ("客户", "客户名称", "公司名称", "名称", "customer", "customer name"),
    "author": ("负责人", "作者", "跟进人", "记录人", "author", "owner", "userid"),
    "kind": ("方式", "跟进方式", "类型", "kind", "type"),
    "content": ("内容", "跟进内容", "记录", "content", "note"),
    "next_step": ("下一步", "下一步计划", "next step", "next"),
    "next_step_at": ("下次跟进时间", "下次跟进", "下一步时间", "next step time", "next step at"),
    "created_at": (
        "时间",
        "跟进时间",
        "创建时间",
        "日期",
        "created",
        "created at",
        "time",
        "date",
    ),
}
LEAD_STATUSES: dict[str, tuple[str, ...]] = {
    LeadStatus.NEW.value: ("新建", "新线索", "未跟进", "未处理", "new"),
    LeadStatus.CONTACTED.value: ("已联系", "跟进中", "联系中", "contacted"),
    LeadStatus.CONVERTED.value: ("已转化", "已转客户", "转化", "converted"),
    LeadStatus.INVALID.value: ("无效", "无效线索", "invalid"),
}
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
_ENTITIES = {"customers": "customer", "leads": "lead", "followups": "followup"}
_NUMERALS = re.compile(r"[0-9零〇一二三四五六七八九十百千万两壹贰叁肆伍陆柒捌玖拾佰仟]+")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LIST_SEPARATORS = re.compile(r"[,，、;；|｜\n]+")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, wrong type, no name column)."""


@dataclass(frozen=True)
class DuplicateRow:
    """A row not inserted because the record exists already (or came earlier in the file)."""

    row_number: int
    name: str
    reason: str
    existing_id: int | None
    existing_name: str
    existing_owner: str | None


@dataclass(frozen=True)
class BadRow:
    """A row skipped whole, with the reason an admin can fix and the cells as read."""

    row_number: int
    reason: str
    values: dict[str, str]
    name: str = ""


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    kind: str
    inserted: int = 0
    total_rows: int = 0
    duplicates: list[DuplicateRow] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    dry_run: bool = False


# Reading files ------------------------------------------------------------------------------


@dataclass
class Table:
    """A sheet as headers plus (row number, cells) pairs; row numbers are the sheet's own."""

    headers: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    estimated_rows: int | None
    close: Callable[[], None] = lambda: None

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _blank(cells: Sequence[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first; GB18030 covers the GBK files Excel writes in China."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "无法识别文件编码，请另存为 UTF-8 或 GBK 的 CSV (unknown encoding)"
        ) from exc


def _csv_table(path: Path) -> Table:
    text = _decode(path.read_bytes())
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    lines = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    numbered = [(i, row) for i, row in enumerate(lines, start=1) if not _blank(row)]
    if not numbered:
        return Table([], iter(()), 0)
    body: list[tuple[int, list[Any]]] = [(i, list(row)) for i, row in numbered[1:]]
    return Table([str(h) for h in numbered[0][1]], iter(body), len(body))


def _xlsx_table(path: Path) -> Table:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged or foreign file
        raise ImportFileError(
            f"无法读取 Excel 文件 (cannot read xlsx): {type(exc).__name__}"
        ) from exc
    sheet = workbook.active
    if sheet is None:
        workbook.close()
        return Table([], iter(()), 0)
    numbered = (
        (number, list(cells))
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1)
        if not _blank(cells)
    )
    first = next(numbered, None)
    headers = [] if first is None else ["" if c is None else str(c) for c in first[1]]
    estimate = sheet.max_row - 1 if sheet.max_row else None
    return Table(headers, numbered, estimate, workbook.close)


def read_table(path: Path) -> Table:
    """Open a .xlsx or .csv file as a Table (close it, or use `with`); others are refused."""
    if not path.is_file():
        raise ImportFileError(f"文件不存在 (file not found): {path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _csv_table(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_table(path)
    raise ImportFileError(f"只支持 .xlsx 和 .csv 文件 (only .xlsx and .csv): {path.name}")


def count_rows(path: Path) -> int | None:
    """A cheap row estimate for a progress bar (None if the file does not say)."""
    try:
        with read_table(path) as table:
            return table.estimated_rows
    except ImportFileError:
        return None


def _header_key(text: str) -> str:
    key = unicodedata.normalize("NFKC", text).casefold()
    key = re.sub(r"\(.*?\)", "", key)
    return re.sub(r"[\s_\-*:：.]+", "", key)


def _map_columns(
    headers: list[str], columns: dict[str, tuple[str, ...]]
) -> tuple[dict[str, int], list[str]]:
    """Which column holds which field; unknown or repeated headers are reported, not fatal."""
    lookup = {_header_key(s): name for name, synonyms in columns.items() for s in synonyms}
    found: dict[str, int] = {}
    unknown: list[str] = []
    for index, header in enumerate(headers):
        name = lookup.get(_header_key(header))
        if not header.strip():
            continue
        if name is None:
            unknown.append(header.strip())
        elif name in found:
            unknown.append(f"{header.strip()}（重复列，已忽略 duplicate column）")
        else:
            found[name] = index
    return found, unknown


def _cell_text(value: Any) -> str:
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


def _row_values(headers: list[str], cells: list[Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, cell in enumerate(cells):
        text = _cell_text(cell)
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


_PHONE_CHARS = re.compile(r"[\d\s\-.()（）+]+")
_EXTENSION = re.compile(
    r"(?:转|分机|ext\.?|x|#)\s*(\d{1,6})$|(?<=\d{7})-(\d{1,6})$", re.IGNORECASE
)


def _parse_phone(raw: str) -> tuple[str, str] | None:
    """(number, extension) of a mainland phone, the number in its readable form."""
    text = unicodedata.normalize("NFKC", raw).strip()
    extension = ""
    match = _EXTENSION.search(text)
    if match:
        extension = match.group(1) or match.group(2)
        text = text[: match.start()].rstrip(" -")
    if not text or not _PHONE_CHARS.fullmatch(text):
        return None
    international = text.startswith(("+", "0086"))
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") and not digits.startswith("86"):
        return None
    if international:
        digits = digits.removeprefix("00").removeprefix("86")
    elif len(digits) == 13 and digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        digits = digits[2:]
    if _MOBILE.fullmatch(digits):
        return (digits, "") if not extension else None
    if re.fullmatch(r"[48]00\d{7}", digits):
        return digits, extension
    if international and not digits.startswith("0"):
        digits = "0" + digits
    if not digits.startswith("0") or digits.startswith("00"):
        return None
    # Area codes: 010 and 020-029 have three digits, all others four (0571, 0755...).
    area_length = 3 if digits[1] in "12" else 4
    area, local = digits[:area_length], digits[area_length:]
    if not re.fullmatch(r"\d{7,8}", local):
        return None
    return f"{area}-{local}", extension


def validate_phone(raw: str) -> str | None:
    """A mainland phone in a readable canonical form, or None if it is not one.

    Mobiles become 11 digits (13800138000), landlines "area-number[-ext]" (0571-88888888),
    400/800 numbers 10 digits; +86 / 0086 / 86 prefixes are dropped.
    """
    parsed = _parse_phone(raw)
    if parsed is None:
        return None
    number, extension = parsed
    return f"{number}-{extension}" if extension else number


def stored_phone(raw: str) -> str | None:
    """The phone as the store keeps it (customers.normalize_phone, as chat 查重 compares it);
    an extension stays behind a dash, where digits alone would merge it into the number."""
    parsed = _parse_phone(raw)
    if parsed is None:
        return None
    number, extension = parsed
    stored = normalize_phone(number) or number
    return f"{stored}-{extension}" if extension else stored


def _phone_problem(raw: str) -> str:
    if re.search(r"[,，;；/、]", raw.strip()) and len(re.sub(r"\D", "", raw)) > 12:
        return f"电话格式不正确「{raw}」：一格只能填一个号码 (one phone number per cell)"
    digits = re.sub(r"\D", "", raw)
    if len(digits) in (7, 8) and not digits.startswith("0"):
        return (
            f"电话格式不正确「{raw}」：座机需带区号，如 0571-88888888 (landline needs area code)"
        )
    return (
        f"电话格式不正确「{raw}」：应为手机号 13800138000 或座机 0571-88888888 (malformed phone)"
    )


def _too_long(values: dict[str, str | None]) -> str | None:
    for key, value in values.items():
        limit = _MAX_LEN[key]
        if value is not None and len(value) > limit:
            return f"{_LABELS[key]}超过 {limit} 个字符 ({key} too long)"
    return None


def core_name(name: str) -> str:
    """The dedup key of a customer name (crm_store.names), never empty."""
    return (normalize_company_name(name) or name.strip().casefold())[:200]


def _joined(words: list[str], limit: int) -> str:
    out = ""
    for word in dict.fromkeys(words):
        candidate = f"{out} {word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    return out


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
        text = unicodedata.normalize("NFKC", str(value)).strip()
        text = re.sub(r"[年月/.]", "-", text).replace("日", " ").replace("T", " ")
        text = re.sub(r"\s+", " ", text).strip()
        moment = None
        for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
            try:
                moment = datetime.strptime(text, pattern)  # noqa: DTZ007 - zone added below
            except ValueError:
                continue
            if pattern == "%Y-%m-%d":
                moment = moment.replace(hour=9)
            break
        if moment is None:
            raise ValueError(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


# Rows ---------------------------------------------------------------------------------------


class _Rejected(Exception):
    """A row that goes to the report instead of the database (bad, or a duplicate)."""

    def __init__(self, reason: str, known: _Known | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.known = known


@dataclass(frozen=True)
class _Known:
    """A record a new row may duplicate: in the database (id) or earlier in the file (row)."""

    id: int | None
    name: str
    owner: str | None
    row_number: int | None = None


class _Row:
    """One data row, its cells looked up by field name."""

    __slots__ = ("cells", "columns", "number")

    def __init__(self, number: int, cells: list[Any], columns: dict[str, int]) -> None:
        self.number = number
        self.cells = cells
        self.columns = columns

    def raw(self, name: str) -> Any:
        index = self.columns.get(name)
        if index is None or index >= len(self.cells):
            return None
        return self.cells[index]

    def text(self, name: str) -> str:
        return _cell_text(self.raw(name))


Planner = Callable[[_Row], dict[str, Any]]
Flush = Callable[[list[dict[str, Any]]], Awaitable[None]]


async def _run(
    table: Table,
    columns: dict[str, int],
    report: ImportReport,
    *,
    plan: Planner,
    flush: Flush,
    name_field: str,
    progress: Progress | None,
) -> None:
    """Plan every row, write the planned ones in chunks; rejected rows go to the report."""
    pending: list[dict[str, Any]] = []
    for number, cells in table.rows:
        report.total_rows += 1
        row = _Row(number, cells, columns)
        try:
            pending.append(plan(row))
        except _Rejected as rejected:
            name = re.sub(r"\s+", " ", row.text(name_field))
            known = rejected.known
            if known is None:
                values = _row_values(table.headers, cells)
                report.bad_rows.append(BadRow(number, rejected.reason, values, name))
            else:
                report.duplicates.append(
                    DuplicateRow(number, name, rejected.reason, known.id, known.name, known.owner)
                )
        if len(pending) >= CHUNK:
            report.inserted += len(pending)
            if not report.dry_run:
                await flush(pending)
            pending = []
        if progress is not None and report.total_rows % 1000 == 0:
            progress(1000)
    if pending:
        report.inserted += len(pending)
        if not report.dry_run:
            await flush(pending)
    if progress is not None and report.total_rows % 1000:
        progress(report.total_rows % 1000)


def _duplicate(known: _Known, how: str, what: str) -> _Rejected:
    if known.row_number is not None:
        reason = f"与本文件第 {known.row_number} 行{how} (duplicate of row {known.row_number})"
    else:
        reason = f"与已有{what}{how} (duplicate of #{known.id})"
    return _Rejected(reason, known)


# Staff lookup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    userid: str
    name: str
    active: bool
    main_department_id: int | None


class _StaffIndex:
    """Owners as people write them: a WeCom userid (any case) or a name that is unique."""

    def __init__(self, people: list[_Person]) -> None:
        self.by_userid = {p.userid.casefold(): p for p in people}
        self.by_name: dict[str, list[_Person]] = defaultdict(list)
        for person in people:
            self.by_name[person.name.strip().casefold()].append(person)

    @classmethod
    async def load(cls, session: AsyncSession) -> _StaffIndex:
        rows = await session.execute(
            select(Staff.userid, Staff.name, Staff.active, Staff.main_department_id)
        )
        return cls([_Person(*row) for row in rows])

    def resolve(self, text: str, *, label: str = "负责人") -> _Person:
        """The person a cell names; an unknown or ambiguous name rejects the row."""
        key = text.strip().casefold()
        person = self.by_userid.get(key)
        if person is not None:
            return person
        named = self.by_name.get(key, [])
        candidates = [p for p in named if p.active] or named
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise _Rejected(
                f"找不到{label}「{text}」：请填企业微信 userid 或员工姓名 (unknown person)"
            )
        ids = "、".join(sorted(p.userid for p in candidates))
        raise _Rejected(f"{label}「{text}」对应多名员工（{ids}），请改填 userid (ambiguous)")


def _phone(row: _Row) -> str | None:
    raw = row.raw("phone")
    text = _cell_text(raw)
    if not text:
        return None
    number = text
    if isinstance(raw, int | float) and not text.startswith(("1", "400", "800")):
        number = "0" + text  # Excel drops a landline's leading 0 when the cell is a number
    phone = stored_phone(number)
    if phone is None:
        raise _Rejected(_phone_problem(text))
    return phone


def _check_lengths(values: dict[str, str | None]) -> None:
    problem = _too_long(values)
    if problem:
        raise _Rejected(problem)


async def _bulk_insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """A Core executemany on the table: the ORM's bulk path costs several times more per row."""
    await session.execute(insert(model.__table__), rows)


async def _audit_import(
    session: AsyncSession, report: ImportReport, *, path: Path, actor_id: str, now: datetime
) -> None:
    """One summary row per import: a row per record would double the import's cost."""
    await audit.record(
        session,
        actor_id=actor_id,
        action="import",
        entity=_ENTITIES[report.kind],
        entity_id=path.name[:64],
        before=None,
        after={
            "file": path.name,
            "rows": report.total_rows,
            "inserted": report.inserted,
            "duplicates": len(report.duplicates),
            "bad_rows": len(report.bad_rows),
        },
        source_key=None,
        now=now,
    )


# Customers ----------------------------------------------------------------------------------


class _NameIndex:
    """Exact core names and phones, plus buckets for the fuzzy check.

    Near-identical names (ratio ≥ 92) have nearly equal lengths and, unless the edit is right
    at the start, the same first two characters, so each core is filed under (prefix, length)
    and compared only with the cores of neighbouring lengths in its prefix. (Suffixes make
    poor buckets: thousands of cores end in 科技 or 贸易.)
    """

    def __init__(self) -> None:
        self.by_core: dict[str, _Known] = {}
        self.by_phone: dict[str, _Known] = {}
        self.buckets: dict[tuple[str, int], list[str]] = defaultdict(list)

    def add(self, core: str, known: _Known, *, phone: str | None = None) -> None:
        if core and core not in self.by_core:
            self.by_core[core] = known
            if len(core) >= 5:
                self.buckets[(core[:2], len(core))].append(core)
        if phone and phone not in self.by_phone:
            self.by_phone[phone] = known

    def near(self, core: str) -> tuple[_Known, float] | None:
        """The most similar known core at ratio ≥ 92 (short cores never get that close)."""
        if len(core) < 5:
            return None
        spread = int(len(core) * 0.09) + 1
        best: tuple[str, float] | None = None
        for length in range(len(core) - spread, len(core) + spread + 1):
            choices = self.buckets.get((core[:2], length))
            if not choices:
                continue
            cutoff = FUZZY_CUTOFF if best is None else best[1]
            numbers = _NUMERALS.findall(core)
            for choice, score, _ in process.extract(
                core, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=5
            ):
                # 第一分店 and 第二分店, or 3号厂 and 4号厂, are different places.
                if _NUMERALS.findall(choice) == numbers and (best is None or score > best[1]):
                    best = (choice, score)
                    break
        return None if best is None else (self.by_core[best[0]], best[1])

    def match(self, core: str, phone: str | None) -> _Rejected | None:
        """Why this customer is already known, if it is."""
        if core in self.by_core:
            return _duplicate(self.by_core[core], "重名（规范化名称相同 same name）", "客户")
        if phone and phone in self.by_phone:
            return _duplicate(self.by_phone[phone], f"电话相同 {phone} (same phone)", "客户")
        near = self.near(core)
        if near is not None:
            how = f"名称几乎相同（相似度 {near[1]:.0f} near-identical name）"
            return _duplicate(near[0], how, "客户")
        return None


async def _load_customer_index(session: AsyncSession) -> _NameIndex:
    index = _NameIndex()
    rows = await session.execute(
        select(
            Customer.id, Customer.name, Customer.name_core, Customer.owner_id, Customer.phone
        ).order_by(Customer.id)
    )
    for customer_id, name, core, owner_id, phone in rows:
        index.add(core, _Known(customer_id, name, owner_id), phone=phone)
    return index


async def import_customers(
    session: AsyncSession,
    *,
    path: Path,
    actor_id: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a customer list; duplicates and bad rows are reported, never half-written."""
    with read_table(path) as table:
        columns, unknown = _map_columns(table.headers, CUSTOMER_COLUMNS)
        if "name" not in columns:
            raise ImportFileError(
                "找不到客户名称列：表头需要「名称」「客户名称」或「name」之一 (no name column)"
            )
        report = ImportReport(kind="customers", unknown_columns=unknown, dry_run=dry_run)
        staff = await _StaffIndex.load(session)
        index = await _load_customer_index(session)

        def plan(row: _Row) -> dict[str, Any]:
            return _plan_customer(row, staff, index, now)

        async def insert(rows: list[dict[str, Any]]) -> None:
            await _insert_customers(session, rows, actor_id=actor_id, now=now)

        parallel = (table.estimated_rows or 0) >= PARALLEL_MIN_ROWS and not dry_run
        async with _PinyinPipeline(insert, parallel=parallel) as pipeline:
            await _run(
                table,
                columns,
                report,
                plan=plan,
                flush=pipeline.put,
                name_field="name",
                progress=progress,
            )
            await pipeline.drain()
    if not dry_run:
        await _audit_import(session, report, path=path, actor_id=actor_id, now=now)
    return report


def _plan_customer(
    row: _Row, staff: _StaffIndex, index: _NameIndex, now: datetime
) -> dict[str, Any]:
    """The insert values for one row; raises _Rejected for a bad or duplicate row."""
    name = re.sub(r"\s+", " ", row.text("name"))
    if not name:
        raise _Rejected("缺少客户名称 (name is empty)")
    owner_text = row.text("owner")
    owner = staff.resolve(owner_text) if owner_text else None
    phone = _phone(row)
    values: dict[str, str | None] = {
        key: row.text(key) or None
        for key in ("industry", "city", "contact", "source", "level", "status")
    }
    tags = split_list(row.text("tags"))
    aliases = [a for a in split_list(row.text("aliases")) if a != name]
    _check_lengths({"name": name, **values})
    for tag in tags:
        _check_lengths({"tag": tag})

    core = core_name(name)
    duplicate = index.match(core, phone)
    if duplicate is not None:
        raise duplicate
    owner_id = owner.userid if owner else None
    index.add(core, _Known(None, name, owner_id, row.number), phone=phone)
    return {
        "name": name,
        "name_core": core,
        "pinyin": "",  # filled in by _PinyinPipeline, off the main loop
        "initials": "",
        "aliases": aliases,
        "owner_id": owner_id,
        "department_id": owner.main_department_id if owner else None,
        "industry": values["industry"],
        "city": values["city"],
        "phone": phone,
        "source_channel": values["source"],
        "level": values["level"],
        "status": values["status"],
        "tags": tags,
        # 公海: a customer nobody owns is in the public pool from the start.
        "in_pool": owner is None,
        "pool_entered_at": None if owner else now,
        "created_at": now,
        "updated_at": now,
        "_contact": values["contact"],
    }


_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
# Runs in a helper process; imports only crm_store.names. ASCII JSON lines both ways, so the
# child's locale does not matter.
_PINYIN_WORKER = """
import json, sys
from crm_store.names import pinyin_keys
for line in sys.stdin:
    sys.stdout.write(json.dumps([pinyin_keys(core) for core in json.loads(line)]) + "\\n")
    sys.stdout.flush()
"""


class _PinyinPipeline:
    """Pinyin keys cost more than everything else an import does per row, so for a big file
    a helper process computes them for one chunk while this one reads, checks and inserts
    the next. A small import, one CPU, or a helper that fails computes them inline."""

    def __init__(self, insert: Flush, *, parallel: bool) -> None:
        self._insert = insert
        self._parallel = parallel and (os.cpu_count() or 1) > 1
        self._worker: asyncio.subprocess.Process | None = None
        self._alive = True
        self._pending: tuple[list[dict[str, Any]], list[str], bool] | None = None

    async def __aenter__(self) -> _PinyinPipeline:
        if self._parallel:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p
            )}  # fmt: skip
            try:
                self._worker = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _PINYIN_WORKER,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    env=env, limit=1 << 26,
                )  # fmt: skip
            except OSError as exc:
                logger.warning("no pinyin helper process (%s); computing inline", exc)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if worker.stdin is not None:
            worker.stdin.close()
        if exc_info[0] is not None and worker.returncode is None:
            worker.kill()
        await worker.wait()

    async def put(self, rows: list[dict[str, Any]]) -> None:
        """Hand this chunk's names to the helper, then insert the chunk before it."""
        cores = [row["name_core"] for row in rows]
        sent = False
        if self._worker is not None and self._alive and self._worker.stdin is not None:
            # No drain(): the transport buffers, so a busy helper never blocks our reading.
            self._worker.stdin.write(json.dumps(cores).encode() + b"\n")
            sent = True
        await self.drain()
        self._pending = (rows, cores, sent)

    async def drain(self) -> None:
        """Insert the chunk still waiting for its keys."""
        if self._pending is None:
            return
        rows, cores, sent = self._pending
        self._pending = None
        keys = await self._from_worker() if sent else None
        if keys is None or len(keys) != len(rows):
            keys = [pinyin_keys(core) for core in cores]
        for row, (spellings, initials) in zip(rows, keys, strict=True):
            row["pinyin"] = _joined(spellings, 1000)
            row["initials"] = _joined(initials, 200)
        await self._insert(rows)

    async def _from_worker(self) -> list[tuple[list[str], list[str]]] | None:
        worker = self._worker
        if worker is None or worker.stdout is None or not self._alive:
            return None
        line = await worker.stdout.readline()
        if not line:
            logger.warning("the pinyin helper process exited; computing inline")
            self._alive = False
            return None
        return [(list(full), list(short)) for full, short in json.loads(line)]


async def _insert_customers(
    session: AsyncSession, rows: list[dict[str, Any]], *, actor_id: str, now: datetime
) -> None:
    contacts = [row.pop("_contact") for row in rows]
    # RETURNING id with the core name, unique among the rows an import inserts, so the order
    # of the returned rows does not matter. (Asking for parameter order makes SQLAlchemy
    # insert one row per statement on SQLite; reading ids back by name defeats PostgreSQL's
    # planner on a table that has just grown.)
    table = Customer.__table__
    returned = await session.execute(insert(table).returning(table.c.name_core, table.c.id), rows)
    id_of: dict[str, int] = {core: customer_id for core, customer_id in returned}
    ids = [id_of[row["name_core"]] for row in rows]
    contact_rows = [
        {"customer_id": customer_id, "name": contact, "phone": row["phone"], "created_at": now}
        for customer_id, row, contact in zip(ids, rows, contacts, strict=True)
        if contact
    ]
    if contact_rows:
        await _bulk_insert(session, Contact, contact_rows)
    history = [
        {
            "customer_id": customer_id,
            "from_owner_id": None,
            "to_owner_id": row["owner_id"],
            "reason": OwnerChange.CREATE.value,
            "at": now,
            "by_id": actor_id,
        }
        for customer_id, row in zip(ids, rows, strict=True)
        if row["owner_id"]
    ]
    if history:
        await _bulk_insert(session, CustomerOwnerHistory, history)


# Leads --------------------------------------------------------------------------------------


def _lead_status(text: str) -> str:
    if not text:
        return LeadStatus.NEW.value
    key = text.strip().casefold()
    for code, words in LEAD_STATUSES.items():
        if key in {w.casefold() for w in words}:
            return code
    choices = "、".join(words[0] for words in LEAD_STATUSES.values())
    raise _Rejected(f"未知的线索状态「{text}」，可选：{choices} (unknown status)")


def _lead_key(name: str, company_core: str, phone: str | None) -> str:
    digest = hashlib.sha256(f"{name.casefold()}|{company_core}|{phone or ''}".encode())
    return IMPORT_KEY_PREFIX + digest.hexdigest()


class _LeadIndex:
    """Leads already known: by phone, and by name at a company."""

    def __init__(self) -> None:
        self.by_phone: dict[str, _Known] = {}
        self.by_name: dict[tuple[str, str], _Known] = {}
        self.keys: set[str] = set()

    @classmethod
    async def load(cls, session: AsyncSession) -> _LeadIndex:
        index = cls()
        rows = await session.execute(
            select(Lead.id, Lead.name, Lead.company, Lead.phone, Lead.owner_id, Lead.source_key)
        )
        for lead_id, name, company, phone, owner_id, source_key in rows:
            known = _Known(lead_id, name, owner_id)
            index.add(name, normalize_company_name(company) if company else "", phone, known)
            if source_key:
                index.keys.add(source_key)
        return index

    def add(self, name: str, company_core: str, phone: str | None, known: _Known) -> None:
        if phone:
            self.by_phone.setdefault(phone, known)
        self.by_name.setdefault((name.casefold(), company_core), known)

    def match(self, name: str, company_core: str, phone: str | None) -> _Rejected | None:
        if phone and phone in self.by_phone:
            return _duplicate(self.by_phone[phone], f"电话相同 {phone} (same phone)", "线索")
        known = self.by_name.get((name.casefold(), company_core))
        if known is not None:
            return _duplicate(known, "同名同公司 (same name and company)", "线索")
        return None


async def import_leads(
    session: AsyncSession,
    *,
    path: Path,
    actor_id: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import leads; a lead with a known phone, or the same name at the same company, is a dup."""
    with read_table(path) as table:
        columns, unknown = _map_columns(table.headers, LEAD_COLUMNS)
        if "name" not in columns:
            raise ImportFileError(
                "找不到线索名称列：表头需要「名称」「姓名」或「name」之一 (no name column)"
            )
        report = ImportReport(kind="leads", unknown_columns=unknown, dry_run=dry_run)
        staff = await _StaffIndex.load(session)
        index = await _LeadIndex.load(session)

        def plan(row: _Row) -> dict[str, Any]:
            name = re.sub(r"\s+", " ", row.text("name"))
            if not name:
                raise _Rejected("缺少线索名称 (name is empty)")
            company = row.text("company") or None
            source = row.text("source") or None
            owner_text = row.text("owner")
            owner = staff.resolve(owner_text) if owner_text else None
            phone = _phone(row)
            status = _lead_status(row.text("status"))
            _check_lengths({"lead_name": name, "company": company, "source": source})
            company_core = normalize_company_name(company) if company else ""
            duplicate = index.match(name, company_core, phone)
            if duplicate is not None:
                raise duplicate
            owner_id = owner.userid if owner else None
            index.add(name, company_core, phone, _Known(None, name, owner_id, row.number))
            return {
                "name": name,
                "company": company,
                "phone": phone,
                "source_channel": source,
                "status": status,
                "owner_id": owner_id,
                "source_key": _lead_key(name, company_core, phone),
                "created_at": now,
            }

        async def flush(rows: list[dict[str, Any]]) -> None:
            await _bulk_insert(session, Lead, rows)

        await _run(
            table, columns, report, plan=plan, flush=flush, name_field="name", progress=progress
        )
    if not dry_run:
        await _audit_import(session, report, path=path, actor_id=actor_id, now=now)
    return report


# Follow-ups ---------------------------------------------------------------------------------


def followup_key(customer_core: str, author_id: str, when: datetime | None, content: str) -> str:
    """The same row always gives the same key, so importing a file twice adds nothing."""
    moment = when.astimezone(UTC).isoformat() if when else ""
    digest = hashlib.sha256(f"{customer_core}|{author_id}|{moment}|{content}".encode())
    return IMPORT_KEY_PREFIX + digest.hexdigest()


@dataclass
class _CustomerRef:
    id: int
    name: str
    last_followup_at: datetime | None
    next_followup_at: datetime | None


async def import_followups(
    session: AsyncSession,
    *,
    path: Path,
    actor_id: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
    tz: tzinfo = COMPANY_TZ,
) -> ImportReport:
    """Import follow-up history onto existing customers; future next steps become to-dos."""
    with read_table(path) as table:
        columns, unknown = _map_columns(table.headers, FOLLOWUP_COLUMNS)
        if "customer" not in columns or "content" not in columns:
            raise ImportFileError(
                "跟进记录表头需要「客户」和「内容」列 (customer and content columns are required)"
            )
        report = ImportReport(kind="followups", unknown_columns=unknown, dry_run=dry_run)
        staff = await _StaffIndex.load(session)
        kinds = await config_data.get_followup_kinds(session)
        by_core: dict[str, list[_CustomerRef]] = defaultdict(list)
        by_id: dict[int, _CustomerRef] = {}
        for customer_id, name, core, last, upcoming in await session.execute(
            select(
                Customer.id, Customer.name, Customer.name_core, Customer.last_followup_at,
                Customer.next_followup_at,
            )
        ):  # fmt: skip
            ref = _CustomerRef(customer_id, name, last, upcoming)
            by_core[core].append(ref)
            by_id[customer_id] = ref
        known_keys: dict[str, _Known] = {}
        for key, followup_id, customer_name, author_id in await session.execute(
            select(Followup.source_key, Followup.id, Customer.name, Followup.author_id)
            .join(Customer, Customer.id == Followup.customer_id)
            .where(Followup.source_key.like(f"{IMPORT_KEY_PREFIX}%"))
        ):
            known_keys[key] = _Known(followup_id, customer_name, author_id)

        def plan(row: _Row) -> dict[str, Any]:
            customer_text = row.text("customer")
            content = row.text("content")
            if not customer_text:
                raise _Rejected("缺少客户名称 (customer is empty)")
            if not content:
                raise _Rejected("缺少跟进内容 (content is empty)")
            core = normalize_company_name(customer_text) or customer_text.strip().casefold()
            matches = by_core.get(core, [])
            if not matches:
                raise _Rejected(f"找不到客户「{customer_text}」：请先导入客户 (unknown customer)")
            if len(matches) > 1:
                ids = "、".join(f"#{m.id}" for m in matches)
                raise _Rejected(
                    f"客户「{customer_text}」对应多个客户（{ids}）(ambiguous customer)"
                )
            customer = matches[0]
            author_text = row.text("author")
            if not author_text:
                raise _Rejected("缺少负责人/作者 (author is empty)")
            author = staff.resolve(author_text, label="作者")
            kind_text = row.text("kind")
            kind = config_data.resolve_followup_kind(kinds, kind_text) if kind_text else None
            if kind_text and kind is None:
                choices = "、".join(k.label for k in kinds)
                raise _Rejected(f"未知的跟进方式「{kind_text}」，可选：{choices} (unknown kind)")
            try:
                next_step_at = parse_local_datetime(row.raw("next_step_at"), tz)
                created_at = parse_local_datetime(row.raw("created_at"), tz)
            except ValueError as exc:
                raise _Rejected(
                    f"时间格式不正确「{exc}」：应为 2026-01-31 14:30 (malformed time)"
                ) from None
            key = followup_key(core, author.userid, created_at, content)
            if key in known_keys:
                raise _duplicate(known_keys[key], "相同的跟进记录 (same follow-up)", "跟进记录")
            known_keys[key] = _Known(None, customer.name, author.userid, row.number)
            return {
                "customer_id": customer.id,
                "author_id": author.userid,
                "kind": kind.code if kind else "other",
                "content": content,
                "next_step": row.text("next_step") or None,
                "next_step_at": next_step_at,
                "source_key": key,
                "created_at": created_at or now,
            }

        async def flush(rows: list[dict[str, Any]]) -> None:
            await _bulk_insert(session, Followup, rows)
            await _followup_effects(session, rows, by_id, now)

        await _run(
            table,
            columns,
            report,
            plan=plan,
            flush=flush,
            name_field="customer",
            progress=progress,
        )
    if not dry_run:
        await _audit_import(session, report, path=path, actor_id=actor_id, now=now)
    return report


async def _followup_effects(
    session: AsyncSession,
    followups: list[dict[str, Any]],
    customers: dict[int, _CustomerRef],
    now: datetime,
) -> None:
    """Future next steps become tasks, as followups.log_followup makes them; the customer's
    last/next follow-up times move only forward/earlier. A past next step in imported history
    is taken as done: it would only be an overdue reminder."""
    tasks = [
        {
            "owner_id": row["author_id"],
            "customer_id": row["customer_id"],
            "title": (row["next_step"] or row["content"][:50])[:200],
            "due_at": row["next_step_at"],
            "source": TaskSource.FOLLOWUP.value,
            "source_key": task_key(row["source_key"]),
            "created_at": now,
        }
        for row in followups
        if row["next_step_at"] is not None and row["next_step_at"] > now
    ]
    if tasks:
        await _bulk_insert(session, Task, tasks)
    touched: set[int] = set()
    for row in followups:
        customer = customers[row["customer_id"]]
        if customer.last_followup_at is None or row["created_at"] > customer.last_followup_at:
            customer.last_followup_at = row["created_at"]
            touched.add(customer.id)
    for task in tasks:
        customer = customers[task["customer_id"]]
        if customer.next_followup_at is None or task["due_at"] < customer.next_followup_at:
            customer.next_followup_at = task["due_at"]
            touched.add(customer.id)
    if touched:
        await session.execute(
            update(Customer),
            [
                {
                    "id": customer_id,
                    "last_followup_at": customers[customer_id].last_followup_at,
                    "next_followup_at": customers[customer_id].next_followup_at,
                }
                for customer_id in sorted(touched)
            ],
        )


# Report -------------------------------------------------------------------------------------


REPORT_HEADERS = (
    "行号",
    "类型",
    "名称",
    "原因",
    "已有记录ID",
    "已有名称",
    "已有负责人",
    "原始数据",
)


def write_report(report: ImportReport, path: Path) -> Path:
    """Duplicates and bad rows as a CSV an admin opens in Excel (UTF-8 with BOM)."""
    rows: list[tuple[int, list[str]]] = []
    for dup in report.duplicates:
        rows.append(
            (
                dup.row_number,
                [
                    str(dup.row_number),
                    "重复",
                    dup.name,
                    dup.reason,
                    "" if dup.existing_id is None else str(dup.existing_id),
                    dup.existing_name,
                    dup.existing_owner or "",
                    "",
                ],
            )
        )
    for bad in report.bad_rows:
        raw = "; ".join(f"{k}={v}" for k, v in bad.values.items())
        rows.append(
            (bad.row_number, [str(bad.row_number), "错误", bad.name, bad.reason, "", "", "", raw])
        )
    rows.sort(key=lambda item: item[0])
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_HEADERS)
        writer.writerows(row for _, row in rows)
        if report.unknown_columns:
            writer.writerow([])
            writer.writerow(["", "未识别的列", "、".join(report.unknown_columns)])
    return path
