"""Import from Excel/CSV and export back: headers, encodings, dedup, bad rows, round trips."""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import customers, phones, staff
from crm_store.clock import FakeClock
from crm_store.io import exporter, importer
from crm_store.io.importer import ImportFileError, ImportReport
from crm_store.io.importer import customers as customer_import
from crm_store.io.importer import rows as import_rows
from crm_store.models import (
    AuditEntry,
    Contact,
    Customer,
    CustomerOwnerHistory,
    Followup,
    Lead,
    Task,
)
from crm_store.names import pinyin_keys
from crm_store.scope import load_actor

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN_HEADERS = [
    "客户名称",
    "负责人",
    "行业",
    "城市",
    "电话",
    "联系人",
    "来源",
    "标签",
    "别名",
    "级别",
    "状态",
]
# userid: (name, department)
PEOPLE = {
    "zhangsan": ("张三", 2),
    "lisi": ("李四", 3),
    "wangwei1": ("王伟", 2),
    "wangwei2": ("王伟", 3),
}


@pytest.fixture
async def org(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> None:
    now = clock.now()
    async with sessions.begin() as session:
        for department_id, name, parent in (
            (1, "公司", None),
            (2, "销售一组", 1),
            (3, "销售二组", 1),
        ):
            await staff.upsert_department(
                session, department_id=department_id, name=name, parent_id=parent, now=now
            )
        for userid, (name, department) in PEOPLE.items():
            await staff.upsert_staff(
                session, userid=userid, name=name, department_ids=[department], now=now
            )


def write_csv(path: Path, rows: Sequence[Sequence[Any]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


async def run_import(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    path: Path,
    *,
    kind: str = "customers",
    dry_run: bool = False,
) -> ImportReport:
    importers: dict[str, Callable[..., Awaitable[ImportReport]]] = {
        "customers": importer.import_customers,
        "leads": importer.import_leads,
        "followups": importer.import_followups,
    }
    function = importers[kind]
    ticks: list[int] = []
    options: dict[str, Any] = {"tz": SHANGHAI} if kind == "followups" else {}
    async with sessions() as session:
        report = await function(
            session,
            path=path,
            actor_id="admin",
            now=clock.now(),
            dry_run=dry_run,
            progress=ticks.append,
            **options,
        )
        await session.commit()
    assert sum(ticks) == report.total_rows
    return report


async def count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def customer_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    """Everything an import sets, comparable across databases (no ids)."""
    async with sessions() as session:
        first_contact: dict[int, str] = {}
        for customer_id, name in await session.execute(
            select(Contact.customer_id, Contact.name).order_by(Contact.id)
        ):
            first_contact.setdefault(customer_id, name)
        rows = []
        for c in await session.scalars(select(Customer).order_by(Customer.name)):
            rows.append(
                (
                    c.name, c.owner_id, c.department_id, c.industry, c.city, c.phone,
                    c.source_channel, list(c.tags), list(c.aliases), c.level, c.status,
                    c.in_pool, first_contact.get(c.id),
                )
            )  # fmt: skip
        return rows


async def wipe(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Back to an empty CRM with the same directory, as a fresh install after a sync."""
    async with sessions.begin() as session:
        for model in (Task, Followup, Contact, CustomerOwnerHistory, Lead, Customer, AuditEntry):
            await session.execute(delete(model))


# Phones ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        ("0571-88888888", "0571-88888888"),
        ("(021)12345678", "021-12345678"),
        ("（010）87654321", "010-87654321"),
        ("+86 571 8888 8888", "0571-88888888"),
        ("0571-88888888转123", "0571-88888888-123"),
        ("400-123-4567", "4001234567"),
        ("12345", None),
        ("88888888", None),
        ("1380013800", None),
        ("+1 415 555 1234", None),
        ("电话：13800138000", None),
    ],
)
def test_phone_forms(raw: str, expected: str | None) -> None:
    assert phones.readable_phone(raw) == expected


def test_list_separators() -> None:
    assert importer.split_list("重点, VIP，老客户、华东;华东|新") == [
        "重点",
        "VIP",
        "老客户",
        "华东",
        "新",
    ]


# Customers ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("org")
async def test_chinese_headers_fill_every_field(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "customers.csv",
        [
            CN_HEADERS,
            ["杭州星辰科技有限公司", "张三", "软件", "杭州", "+86 138 0013 8000", "刘经理",
             "展会", "重点、VIP", "星辰,Xingchen", "A", "跟进中"],
            ["无主贸易有限公司", "", "贸易", "", "0571-88888888", "", "", "", "", "", ""],
        ],
    )  # fmt: skip
    report = await run_import(sessions, clock, path)
    assert (report.inserted, report.duplicates, report.bad_rows) == (2, [], [])
    assert report.unknown_columns == []

    async with sessions() as session:
        star = await session.scalar(select(Customer).where(Customer.owner_id == "zhangsan"))
        assert star is not None
        assert star.name == "杭州星辰科技有限公司"
        assert star.name_core == "星辰科技"
        assert star.pinyin.startswith("xingchenkeji") and star.initials.startswith("xckj")
        assert (star.industry, star.city, star.source_channel) == ("软件", "杭州", "展会")
        assert star.phone == "13800138000"
        assert star.tags == ["重点", "VIP"] and star.aliases == ["星辰", "Xingchen"]
        assert (star.level, star.status, star.in_pool, star.department_id) == (
            "A",
            "跟进中",
            False,
            2,
        )
        assert star.created_at == clock.now() == star.updated_at
        contact = await session.scalar(select(Contact).where(Contact.customer_id == star.id))
        assert contact is not None and (contact.name, contact.phone) == ("刘经理", "13800138000")

        pool = await session.scalar(select(Customer).where(Customer.owner_id.is_(None)))
        assert pool is not None and pool.in_pool and pool.pool_entered_at == clock.now()
        assert pool.phone == customers.normalize_phone("0571-88888888")

        history = (await session.execute(select(CustomerOwnerHistory))).scalars().all()
        assert [(h.to_owner_id, h.reason, h.by_id) for h in history] == [
            ("zhangsan", "create", "admin")
        ]
        audits = (await session.scalars(select(AuditEntry))).all()
        imports = [a for a in audits if a.action == "import"]
        assert len(imports) == 1
        assert imports[0].after is not None and imports[0].after["inserted"] == 2
        assert imports[0].actor_id == "admin"


@pytest.mark.usefixtures("org")
async def test_english_headers_any_case_in_xlsx(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_xlsx(
        tmp_path / "list.xlsx",
        [
            [" Name ", "OWNER", "Phone", "Tags", "Customer Level", "Remark", "Industry "],
            ["Acme Trading Co., Ltd.", "LISI", 13900139000, "vip|key", "B", "x", "trade"],
            ["深圳鹏飞电子有限公司", "lisi", 57188888888, "", "", "", ""],
        ],
    )
    report = await run_import(sessions, clock, path)
    assert report.inserted == 2 and report.bad_rows == []
    # Unknown columns are reported once, not per row, and do not stop the import.
    assert report.unknown_columns == ["Customer Level", "Remark"]
    async with sessions() as session:
        rows = {c.name: c for c in await session.scalars(select(Customer))}
    acme = rows["Acme Trading Co., Ltd."]
    assert (acme.owner_id, acme.phone, acme.tags, acme.industry) == (
        "lisi", "13900139000", ["vip", "key"], "trade"
    )  # fmt: skip
    # Excel stores a landline typed as a number without its leading 0.
    assert rows["深圳鹏飞电子有限公司"].phone == customers.normalize_phone("0571-88888888")
    assert rows["深圳鹏飞电子有限公司"].department_id == 3


@pytest.mark.usefixtures("org")
@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
async def test_csv_encodings(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path, encoding: str
) -> None:
    path = write_csv(
        tmp_path / "gbk.csv",
        [["公司名称", "负责人", "城市"], ["广州鑫盛五金制品有限公司", "张三", "广州"]],
        encoding=encoding,
    )
    report = await run_import(sessions, clock, path)
    assert report.inserted == 1
    async with sessions() as session:
        customer = await session.scalar(select(Customer))
    assert customer is not None
    assert (customer.name, customer.owner_id, customer.city) == (
        "广州鑫盛五金制品有限公司", "zhangsan", "广州"
    )  # fmt: skip


@pytest.mark.usefixtures("org")
async def test_duplicates_of_existing_and_earlier_rows(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    async with sessions.begin() as session:
        actor = await load_actor(session, "lisi")
        assert actor is not None
        ali = await customers.create_customer(
            session, actor=actor, name="杭州阿里巴巴网络技术有限公司", now=clock.now()
        )
        star = await customers.create_customer(
            session,
            actor=actor,
            name="星辰大海智能制造装备有限公司",
            phone="13912345678",
            now=clock.now(),
        )
    path = write_csv(
        tmp_path / "dups.csv",
        [
            ["名称", "负责人", "电话"],
            ["阿里巴巴网络技术有限公司", "张三", ""],  # same core as an existing customer
            ["星辰大海智能制造装配备有限公司", "张三", ""],  # one character more: near-identical
            ["完全不同的名字有限公司", "张三", "139-1234-5678"],  # the existing phone
            ["上海新锐科技有限公司", "张三", ""],
            ["新锐科技（上海）有限公司", "李四", ""],  # same core as row 5
            ["独一无二贸易有限公司", "张三", ""],
        ],
    )
    report = await run_import(sessions, clock, path)
    assert report.inserted == 2  # 新锐 (row 5) and 独一无二
    by_row = {d.row_number: d for d in report.duplicates}
    assert sorted(by_row) == [2, 3, 4, 6]
    assert (by_row[2].existing_id, by_row[2].existing_name, by_row[2].existing_owner) == (
        ali.id, "杭州阿里巴巴网络技术有限公司", "lisi"
    )  # fmt: skip
    assert "重名" in by_row[2].reason
    assert by_row[3].existing_id == star.id and "几乎相同" in by_row[3].reason
    assert by_row[4].existing_id == star.id and "电话相同" in by_row[4].reason
    assert by_row[6].existing_id is None and "第 5 行" in by_row[6].reason
    assert (by_row[6].existing_name, by_row[6].existing_owner) == (
        "上海新锐科技有限公司",
        "zhangsan",
    )
    assert await count(sessions, Customer) == 4


@pytest.mark.usefixtures("org")
async def test_bad_rows_are_skipped_whole_with_reasons(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ["名称", "负责人", "电话", "联系人", "备注"],
            ["", "张三", "13800138000", "无名氏", ""],
            ["无主人科技有限公司", "赵钱孙", "", "某人", ""],
            ["重名负责人有限公司", "王伟", "", "某人", ""],
            ["坏电话有限公司", "张三", "12345", "某人", ""],
            ["座机无区号有限公司", "张三", "88888888", "某人", ""],
            ["好公司有限公司", "wangwei2", "", "某人", "note"],
        ],
    )
    report = await run_import(sessions, clock, path)
    assert report.inserted == 1
    reasons = {b.row_number: b.reason for b in report.bad_rows}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "缺少客户名称" in reasons[2]
    assert "找不到负责人「赵钱孙」" in reasons[3]
    assert "多名员工" in reasons[4] and "wangwei1" in reasons[4] and "wangwei2" in reasons[4]
    assert "电话格式不正确" in reasons[5]
    assert "区号" in reasons[6]
    bad = next(b for b in report.bad_rows if b.row_number == 3)
    assert bad.values == {"名称": "无主人科技有限公司", "负责人": "赵钱孙", "联系人": "某人"}
    assert bad.name == "无主人科技有限公司"
    assert report.unknown_columns == ["备注"]
    # Nothing partial of a bad row: no customer, and no contact either.
    assert await count(sessions, Customer) == 1
    assert await count(sessions, Contact) == 1


@pytest.mark.usefixtures("org")
async def test_reimport_adds_nothing(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_xlsx(
        tmp_path / "twice.xlsx",
        [CN_HEADERS]
        + [[f"第{i}号精密机械有限公司", "张三", "", "", f"1390000{i:04d}"] for i in range(30)]
        + [["", "张三"]],
    )
    first = await run_import(sessions, clock, path)
    assert (first.inserted, len(first.bad_rows)) == (30, 1)
    clock.advance(hours=1)
    second = await run_import(sessions, clock, path)
    assert second.inserted == 0
    assert len(second.duplicates) == 30 and len(second.bad_rows) == 1
    assert all(d.existing_id is not None for d in second.duplicates)
    assert await count(sessions, Customer) == 30
    assert await count(sessions, Contact) == 0


@pytest.mark.usefixtures("org")
async def test_dry_run_writes_nothing_and_reports_the_same(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "dry.csv",
        [
            ["名称", "负责人", "联系人"],
            ["甲公司有限公司", "张三", "甲"],
            ["甲公司", "李四", ""],
            ["乙公司有限公司", "查无此人", ""],
            ["丙公司有限公司", "", "丙"],
        ],
    )
    audit_rows = await count(sessions, AuditEntry)
    dry = await run_import(sessions, clock, path, dry_run=True)
    assert dry.dry_run
    for model in (Customer, Contact, CustomerOwnerHistory):
        assert await count(sessions, model) == 0, model
    assert await count(sessions, AuditEntry) == audit_rows
    real = await run_import(sessions, clock, path)
    assert (dry.inserted, dry.duplicates, dry.bad_rows) == (
        real.inserted, real.duplicates, real.bad_rows
    )  # fmt: skip
    assert real.inserted == 2


@pytest.mark.usefixtures("org")
async def test_missing_name_column_is_refused(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "noname.csv", [["负责人", "电话"], ["张三", "13800138000"]])
    with pytest.raises(ImportFileError, match="名称"):
        await run_import(sessions, clock, path)
    with pytest.raises(ImportFileError, match="xlsx"):
        await run_import(sessions, clock, write_csv(tmp_path / "list.xls", [["名称"]]))


@pytest.mark.usefixtures("org")
async def test_write_report_opens_in_excel(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "r.csv",
        [
            ["名称", "负责人", "其他"],
            ["甲公司", "张三", ""],
            ["甲公司", "张三", ""],
            ["", "张三", ""],
        ],
    )
    report = await run_import(sessions, clock, path)
    target = importer.write_report(report, tmp_path / "report.csv")
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert lines[0] == list(importer.REPORT_HEADERS)
    assert [line[:3] for line in lines[1:3]] == [["3", "重复", "甲公司"], ["4", "错误", ""]]
    assert lines[-1][1:] == ["未识别的列", "其他"]


@pytest.mark.usefixtures("org")
@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
async def test_export_then_import_round_trip(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path, suffix: str
) -> None:
    source = write_xlsx(
        tmp_path / "source.xlsx",
        [
            CN_HEADERS,
            ["杭州星辰科技有限公司", "张三", "软件", "杭州", "13800138000", "刘经理", "展会",
             "重点,VIP", "星辰,Xingchen", "A", "跟进中"],
            ["北京海淀区鼎盛商贸有限公司", "lisi", "贸易", "北京", "010-12345678", "", "官网", "",
             "", "", ""],
            ["公海里的公司", "", "", "", "0571-88888888-123", "王五", "", "华东", "", "C", ""],
            ["Beta Robotics Co., Ltd.", "王伟", "", "", "", "", "", "", "", "", ""],
        ],
    )  # fmt: skip
    first = await run_import(sessions, clock, source)
    assert (first.inserted, len(first.bad_rows)) == (3, 1)  # 王伟 is ambiguous
    original = await customer_rows(sessions)

    exported = tmp_path / f"customers{suffix}"
    async with sessions() as session:
        assert await exporter.export(session, kind="customers", path=exported, tz=SHANGHAI) == 3
    await wipe(sessions)
    again = await run_import(sessions, clock, exported)
    assert (again.inserted, again.duplicates, again.bad_rows, again.unknown_columns) == (
        3, [], [], []
    )  # fmt: skip
    assert await customer_rows(sessions) == original


# Leads ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("org")
async def test_leads_import(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "leads.csv",
        [
            ["姓名", "公司", "电话", "来源", "负责人", "状态"],
            ["陈先生", "杭州某某科技有限公司", "13811112222", "官网", "张三", "已联系"],
            ["林女士", "", "", "展会", "", ""],
            ["陈先生", "某某科技有限公司", "", "", "", ""],  # same person, same company core
            ["何先生", "", "138-1111-2222", "", "", ""],  # same phone as row 2
            ["坏状态", "", "", "", "", "搁置"],
            ["", "无名公司", "", "", "", ""],
        ],
    )
    report = await run_import(sessions, clock, path, kind="leads")
    assert report.inserted == 2
    assert sorted(d.row_number for d in report.duplicates) == [4, 5]
    assert sorted(b.row_number for b in report.bad_rows) == [6, 7]
    assert "线索状态" in next(b.reason for b in report.bad_rows if b.row_number == 6)
    async with sessions() as session:
        leads = {lead.name: lead for lead in await session.scalars(select(Lead))}
    chen = leads["陈先生"]
    assert (chen.company, chen.phone, chen.status, chen.owner_id, chen.source_channel) == (
        "杭州某某科技有限公司", "13811112222", "contacted", "zhangsan", "官网"
    )  # fmt: skip
    assert (leads["林女士"].status, leads["林女士"].owner_id) == ("new", None)

    again = await run_import(sessions, clock, path, kind="leads")
    assert again.inserted == 0 and len(again.duplicates) == 4
    assert await count(sessions, Lead) == 2


# Follow-ups -----------------------------------------------------------------------------------


FOLLOWUP_HEADERS = ["客户", "负责人", "方式", "内容", "下一步", "下次跟进时间", "时间"]


@pytest.mark.usefixtures("org")
async def test_followups_import(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    await run_import(
        sessions,
        clock,
        write_csv(
            tmp_path / "c.csv",
            [
                ["名称", "负责人"],
                ["杭州星辰科技有限公司", "张三"],
                ["宁波海鸥电子有限公司", "李四"],
            ],
        ),
    )
    path = write_xlsx(
        tmp_path / "followups.xlsx",
        [
            FOLLOWUP_HEADERS,
            ["星辰科技", "张三", "电话", "聊了报价", "发方案", "2026-12-01 14:30",
             datetime(2026, 11, 1, 9, 15)],
            ["杭州星辰科技有限公司", "zhangsan", "visit", "上门演示", "", "", "2026-11-10 16:00"],
            ["宁波海鸥电子有限公司", "李四", "", "微信沟通", "再约", "2026-10-01", "2026-09-20"],
            ["不存在的公司", "张三", "电话", "x", "", "", ""],
            ["星辰科技", "张三", "飞鸽传书", "x", "", "", ""],
            ["星辰科技", "张三", "电话", "x", "", "下周三", ""],
            ["星辰科技", "", "电话", "x", "", "", ""],
            ["星辰科技", "张三", "电话", "", "", "", ""],
        ],
    )  # fmt: skip
    report = await run_import(sessions, clock, path, kind="followups")
    assert report.inserted == 3
    reasons = {b.row_number: b.reason for b in report.bad_rows}
    assert sorted(reasons) == [5, 6, 7, 8, 9]
    assert "找不到客户" in reasons[5]
    assert "跟进方式" in reasons[6]
    assert "时间格式" in reasons[7]
    assert "作者" in reasons[8]
    assert "内容" in reasons[9]

    async with sessions() as session:
        rows = {f.content: f for f in await session.scalars(select(Followup))}
        call = rows["聊了报价"]
        assert (call.author_id, call.kind, call.next_step) == ("zhangsan", "call", "发方案")
        # Local times in Asia/Shanghai, stored in UTC.
        assert call.next_step_at == datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
        assert call.created_at == datetime(2026, 11, 1, 1, 15, tzinfo=UTC)
        assert rows["上门演示"].kind == "visit"
        assert rows["微信沟通"].kind == "other"
        # A future next step is a to-do; the past one (2026-10-01) in history is not.
        tasks = (await session.scalars(select(Task))).all()
        assert [(t.owner_id, t.title, t.due_at) for t in tasks] == [
            ("zhangsan", "发方案", datetime(2026, 12, 1, 6, 30, tzinfo=UTC))
        ]
        star = await session.scalar(select(Customer).where(Customer.name_core == "星辰科技"))
        assert star is not None
        assert star.last_followup_at == datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
        assert star.next_followup_at == datetime(2026, 12, 1, 6, 30, tzinfo=UTC)

    clock.advance(days=1)
    again = await run_import(sessions, clock, path, kind="followups")
    assert again.inserted == 0 and len(again.duplicates) == 3
    assert all(d.existing_id is not None for d in again.duplicates)
    assert await count(sessions, Followup) == 3
    assert await count(sessions, Task) == 1


@pytest.mark.usefixtures("org")
async def test_followups_export_round_trip(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path
) -> None:
    await run_import(
        sessions,
        clock,
        write_csv(tmp_path / "c.csv", [["名称", "负责人"], ["杭州星辰科技有限公司", "张三"]]),
    )
    rows = [FOLLOWUP_HEADERS] + [
        ["星辰科技", "张三", kind, f"第{i}次", "跟进", f"2026-12-0{i % 9 + 1} 10:00",
         f"2026-11-0{i % 9 + 1} 09:0{i}:3{i}"]
        for i, kind in enumerate(["电话", "拜访", "微信", "会议", "其他"])
    ]  # fmt: skip
    await run_import(sessions, clock, write_xlsx(tmp_path / "f.xlsx", rows), kind="followups")

    async def snapshot() -> list[tuple[Any, ...]]:
        async with sessions() as session:
            query = select(
                Followup.author_id, Followup.kind, Followup.content, Followup.next_step,
                Followup.next_step_at, Followup.created_at, Followup.source_key,
            ).order_by(Followup.content)  # fmt: skip
            return [tuple(r) for r in await session.execute(query)]

    before = await snapshot()
    exported = tmp_path / "followups.csv"
    async with sessions() as session:
        assert await exporter.export(session, kind="followups", path=exported, tz=SHANGHAI) == 5
    async with sessions.begin() as session:
        await session.execute(delete(Task))
        await session.execute(delete(Followup))
    report = await run_import(sessions, clock, exported, kind="followups")
    assert (report.inserted, report.bad_rows, report.unknown_columns) == (5, [], [])
    assert await snapshot() == before


async def test_export_tickets_and_opportunities_write_headers(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as session:
        for kind in ("tickets", "opportunities"):
            target = tmp_path / f"{kind}.xlsx"
            assert await exporter.export(session, kind=kind, path=target, tz=SHANGHAI) == 0
            with importer.read_table(target) as table:
                assert table.headers[0] in ("编号", "客户")
        with pytest.raises(ValueError, match="unknown export kind"):
            await exporter.export(session, kind="bogus", path=tmp_path / "x.csv", tz=SHANGHAI)


def test_time_cells() -> None:
    parse = importer.parse_local_datetime
    assert parse("2026-01-31 14:30", SHANGHAI) == datetime(2026, 1, 31, 6, 30, tzinfo=UTC)
    assert parse("2026/1/31", SHANGHAI) == datetime(2026, 1, 31, 1, 0, tzinfo=UTC)
    assert parse("2026年1月31日 08:00", SHANGHAI) == datetime(2026, 1, 31, 0, 0, tzinfo=UTC)
    assert parse(datetime(2026, 1, 31, 8, 0), SHANGHAI) == datetime(2026, 1, 31, tzinfo=UTC)
    aware = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    assert parse(aware, SHANGHAI) == aware
    assert parse(None, SHANGHAI) is None and parse(" ", SHANGHAI) is None
    with pytest.raises(ValueError):
        parse("下周三", SHANGHAI)
    date_only = parse("2026-01-31", SHANGHAI)
    assert date_only is not None and date_only + timedelta(hours=-1) == datetime(
        2026, 1, 31, 0, 0, tzinfo=UTC
    )


@pytest.mark.usefixtures("org")
@pytest.mark.parametrize("helper", ["works", "dies"])
async def test_pinyin_helper_process_gives_the_same_keys(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    helper: str,
) -> None:
    """Big imports compute pinyin in a helper process; a helper that dies costs only speed."""
    monkeypatch.setattr(customer_import, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(import_rows, "CHUNK", 7)  # several chunks in flight
    if helper == "dies":
        monkeypatch.setattr(customer_import, "_PINYIN_WORKER", "import sys; sys.exit(3)")
    names = [f"重庆{word}长江实业有限公司" for word in "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未"]
    path = write_csv(tmp_path / "many.csv", [["名称", "负责人"], *[[n, "张三"] for n in names]])
    report = await run_import(sessions, clock, path)
    assert report.inserted == len(names)
    async with sessions() as session:
        found = {c.name: (c.pinyin, c.initials) for c in await session.scalars(select(Customer))}
    for name in names:
        core = importer.core_name(name)
        full, short = pinyin_keys(core)
        assert found[name] == (" ".join(full), " ".join(short))
    assert found[names[0]][0].startswith("jiachangjiangshiye")
    assert ("helper process exited" in caplog.text) == (helper == "dies")
