"""The demo company's CRM data, written through the store functions a message or an import
would use, so every audit row, search key, task and SLA clock is what real use leaves behind.

Deterministic (one seed, dates relative to `now`): the tour and the page meet the same world.
A few named customers carry the tour's story; 500 generated ones make lookups realistic.
"""

from __future__ import annotations

import csv
import random
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.company import PEOPLE, REPS, SERVICE, SERVICE_AGENTS
from crm_store import customers, deals, followups, staff, tickets
from crm_store.io.importer.customers import import_customers
from crm_store.io.importer.followups import import_followups
from crm_store.models import Contact, Customer
from crm_store.models.service import Priority
from crm_store.names import CITIES, normalize_company_name
from crm_store.scope import Actor, Scope, load_actor

CUSTOMERS = 500
SEED = 20261124
_BRAND_TEXT = (
    "华鑫 盛泰 恒达 宏鼎 瑞祥 丰源 远创 信诚 德利 安康 佳美 联合 博智 航宇 昌隆 顺发 裕嘉 富荣 "
    "明辉 星辰 云龙 鹏飞 腾翔 乾坤 正道 锦绣 青蓝 银河 金石 峰岭 东方 南山 北辰 西湖 万众 "
    "凯旋 卓越 启航 致远 宁和 天合 海川 江南 长风 新元 中拓 汇通 广源 协力 同创 嘉禾 立信 "
    "华瑞 众诚 恒信 鼎盛 盛世 金桥 蓝天 绿洲 红星 紫光 银泰 宝丰 永安 大成 国泰 安信 和美"
)
BRANDS: tuple[str, ...] = tuple(_BRAND_TEXT.split(" "))
INDUSTRIES = (
    ("软件", "科技"), ("物流", "供应链"), ("医药", "生物"), ("电子", "科技"), ("食品", "贸易"),
    ("建材", "实业"), ("化工", "新材料"), ("服装", "贸易"), ("机械", "制造"), ("新能源", "科技"),
    ("环保", "工程"), ("汽配", "制造"), ("家居", "实业"), ("包装", "印务"), ("通信", "技术"),
    ("教育", "咨询"), ("酒店", "管理"), ("地产", "发展"), ("光电", "技术"), ("仪器", "科技"),
)  # fmt: skip
LEGAL_FORMS = ("有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司", "有限责任公司")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞建国志文斌宇浩凯"
TITLES = ("采购经理", "总经理", "IT 负责人", "财务总监", "行政主管", "技术总监", "运营经理")
FOLLOWUP_NOTES = (
    ("电话", "电话沟通了需求，客户关心交付周期", "发一版报价"),
    ("拜访", "上门拜访了采购负责人，演示了系统", "整理会议纪要发给客户"),
    ("微信", "微信确认了合同条款，法务还在看", "催一下法务意见"),
    ("会议", "线上会议，对方技术团队提了接口问题", "约技术交流会"),
    ("电话", "客户反馈价格偏高，需要内部再申请折扣", "申请折扣后回电"),
    ("拜访", "和总经理见了面，预算下个季度批", "季度初再联系"),
)
DEAL_NAMES = ("年度采购", "二期扩容", "系统升级", "续约", "新增站点", "设备更新", "培训服务")
OPEN_STAGES = ("初步接洽", "需求确认", "方案报价", "谈判审核")
LOST_REASONS = ("价格太高", "选了竞争对手", "预算取消", "项目延期")
TICKET_TEXTS = (
    ("系统登录很慢，偶尔超时", Priority.P3, "故障"),
    ("发票抬头开错了，需要重开", Priority.P3, "咨询"),
    ("打印模块报错，导出不了报表", Priority.P2, "故障"),
    ("想了解新版本的价格", Priority.P4, "咨询"),
    ("上周的配送延误了两天", Priority.P2, "投诉"),
    ("账号被锁定了，急需解锁", Priority.P2, "故障"),
)


@dataclass(frozen=True)
class StoryCustomer:
    """A customer the tour and the README's examples name."""

    name: str
    owner: str | None  # None: in the public pool
    aliases: tuple[str, ...] = ()
    industry: str | None = None
    city: str | None = None
    contact: tuple[str, str] | None = None  # (name, phone)


STORY: tuple[StoryCustomer, ...] = (
    StoryCustomer(
        "杭州云栖科技有限公司", "zhangwei", ("云栖",), "软件", "杭州", ("陈晓峰", "13800138001")
    ),
    StoryCustomer(
        "北京字节跳动科技有限公司", "liuyang", ("字节",), "互联网", "北京", ("林晓", "13900139002")
    ),
    StoryCustomer(
        "南京紫金山软件有限公司", "zhangwei", (), "软件", "南京", ("何平", "13700137003")
    ),
    StoryCustomer(
        "青岛海尔智家股份有限公司", "yangfan", ("海尔",), "家电", "青岛", ("孙强", "13600136004")
    ),
    StoryCustomer("深圳市腾讯计算机系统有限公司", "huangli", ("腾讯",), "互联网", "深圳"),
    StoryCustomer("重庆银行股份有限公司", "zhaolei", (), "金融", "重庆", ("邓红", "13500135005")),
    StoryCustomer("上海浦江物流有限公司", None, ("浦江物流",), "物流", "上海"),
)


@dataclass
class SeedReport:
    customers: int = 0
    contacts: int = 0
    followups: int = 0
    deals: int = 0
    tickets: int = 0
    seconds: float = 0.0


def generate_names(count: int, seed: int = SEED) -> list[tuple[str, str, str | None]]:
    """`count` unique (name, industry, city) triples that look like mainland company names."""
    rng = random.Random(seed)
    taken = {normalize_company_name(s.name) for s in STORY}
    rows: list[tuple[str, str, str | None]] = []
    while len(rows) < count:
        brand = rng.choice(BRANDS)
        industry, trade = rng.choice(INDUSTRIES)
        city = rng.choice(CITIES) if rng.random() < 0.8 else None
        core = brand + industry + (trade if rng.random() < 0.5 else "")
        name = (city or "") + core + rng.choice(LEGAL_FORMS)
        key = normalize_company_name(name)
        if key in taken:
            continue
        taken.add(key)
        rows.append((name, industry, city))
    return rows


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))


def _person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


async def is_seeded(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as session:
        return bool(await session.scalar(select(func.count()).select_from(Customer)))


async def set_roles(sessions: async_sessionmaker[AsyncSession], *, now: datetime) -> None:
    """The roles a directory sync cannot know, and the service desk's department."""
    async with sessions.begin() as session:
        for p in PEOPLE:
            await staff.set_role(session, userid=p.userid, role=p.role, by="admin", now=now)
        rules = await tickets.get_rules(session)
        if rules.department_id != SERVICE:
            await tickets.set_rules(
                session,
                rules=tickets.ServiceRules(
                    assignment=rules.assignment,
                    department_id=SERVICE,
                    cap=rules.cap,
                    queue_owner=rules.queue_owner,
                    callback_to=rules.callback_to,
                ),
                by="admin",
                now=now,
            )


async def seed_company(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, tz: ZoneInfo
) -> SeedReport:
    """Write the whole demo company's data; call once, on a database with no customers.

    Customers and their history arrive as an admin's first import would (CSV files through
    the importer); deals, overdue reminders and tickets through the functions chat uses.
    """
    rng = random.Random(SEED)
    report = SeedReport()
    with tempfile.TemporaryDirectory(prefix="wecrm-demo-") as folder:
        # Near-identical names are refused as duplicates, as they should be: top up until
        # the company has its CUSTOMERS.
        rows = _customer_rows(rng, 2 * CUSTOMERS)
        wanted, start, batch = CUSTOMERS, 0, 0
        while wanted > 0 and start < len(rows):
            chunk = rows[start : start + wanted]
            start += len(chunk)
            batch += 1
            customers_csv = Path(folder) / f"客户{batch}.csv"
            _write_csv(customers_csv, CUSTOMER_HEADERS, chunk)
            async with sessions.begin() as session:
                imported = await import_customers(
                    session, path=customers_csv, actor_id="admin", now=now - timedelta(days=120)
                )
            report.customers += imported.inserted
            wanted -= imported.inserted
        async with sessions() as session:
            owned = [
                (row.id, row.name, row.owner_id)
                for row in await session.execute(
                    select(Customer.id, Customer.name, Customer.owner_id)
                    .where(Customer.owner_id.is_not(None))
                    .order_by(Customer.id)
                )
            ]
        followups_csv = Path(folder) / "跟进记录.csv"
        history = _followup_rows(rng, owned, now, tz)
        _write_csv(followups_csv, FOLLOWUP_HEADERS, history)
        async with sessions.begin() as session:
            logged = await import_followups(
                session, path=followups_csv, actor_id="admin", now=now, tz=tz
            )
        report.followups = logged.inserted
    async with sessions.begin() as session:
        actors = {p.userid: await _actor(session, p.userid) for p in PEOPLE}
        for number, (customer_id, _name, owner) in enumerate(owned):
            scope = Scope(actors[owner], now=now)
            if number % 3 == 0:
                report.deals += await _deal(session, rng, scope, customer_id, number, now)
            if number % 17 == 5:
                report.followups += await _overdue(session, rng, scope, customer_id, now)
            session.expunge_all()  # store updates synchronise every object the session holds
        report.tickets = await _tickets(session, rng, actors, owned, now, tz)
    async with sessions() as session:
        report.contacts = int(await session.scalar(select(func.count(Contact.id))) or 0)
    return report


CUSTOMER_HEADERS = ("名称", "负责人", "行业", "城市", "电话", "联系人", "别名", "级别", "来源")
FOLLOWUP_HEADERS = ("客户", "负责人", "方式", "内容", "下一步", "下次跟进时间", "时间")


def _write_csv(path: Path, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)


def _customer_rows(rng: random.Random, count: int) -> list[tuple[str, ...]]:
    """The story customers first, then generated ones (more than needed, for top-ups)."""
    rows: list[tuple[str, ...]] = []
    for story in STORY:
        contact, phone = story.contact or ("", "")
        rows.append(
            (
                story.name,
                story.owner or "",
                story.industry or "",
                story.city or "",
                phone,
                contact,
                "、".join(story.aliases),
                "A",
                "转介绍",
            )
        )
    for index, (name, industry, city) in enumerate(generate_names(count)):
        core = normalize_company_name(name)
        with_contact = rng.random() < 0.6
        rows.append(
            (
                name,
                "" if index % 12 == 0 else REPS[index % len(REPS)],  # every 12th: public pool
                industry,
                city or "",
                _phone(rng) if with_contact else "",
                _person_name(rng) if with_contact else "",
                core[:4] if rng.random() < 0.25 and len(core) > 4 else "",
                rng.choice(("A", "B", "B", "C")),
                rng.choice(("官网", "展会", "转介绍", "电话营销")),
            )
        )
    return rows


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _followup_rows(
    rng: random.Random, owned: list[tuple[int, str, str]], now: datetime, tz: ZoneInfo
) -> list[tuple[str, ...]]:
    """Three months of notes; a third of the customers have a next step still to come."""
    rows: list[tuple[str, ...]] = []
    for number, (_id, name, owner) in enumerate(owned):
        count = 2 if number < 6 else rng.choice((0, 1, 1, 2, 2, 3))
        days = sorted(rng.sample(range(2, 90), count), reverse=True)
        for i, days_ago in enumerate(days):
            kind, content, step = rng.choice(FOLLOWUP_NOTES)
            at = now - timedelta(days=days_ago, hours=rng.randint(0, 6))
            due = ""
            if i == len(days) - 1 and number % 9 == 1:  # later today: "18:30" shows them
                due = _local(now + timedelta(hours=rng.randint(1, 7)), tz)
            elif i == len(days) - 1 and rng.random() < 0.4:
                ahead = timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 5))
                due = _local(now + ahead, tz)
            rows.append((name, owner, kind, content, step if due else "", due, _local(at, tz)))
    return rows


async def _overdue(
    session: AsyncSession, rng: random.Random, scope: Scope, customer_id: int, now: datetime
) -> int:
    """A follow-up whose next step is already late: the 待办 list shows it as overdue."""
    kind, content, step = rng.choice(FOLLOWUP_NOTES)
    days = rng.randint(2, 6)
    await followups.log_followup(
        session,
        scope=scope,
        customer_id=customer_id,
        kind=kind,
        content=content,
        next_step=step,
        next_step_at=now - timedelta(days=days - 1, hours=2),
        source_key=f"demo:overdue:{customer_id}",
        now=now - timedelta(days=days),
    )
    return 1


async def _actor(session: AsyncSession, userid: str) -> Actor:
    actor = await load_actor(session, userid)
    if actor is None:
        raise RuntimeError(f"demo person {userid} is not in the directory; sync it first")
    return actor


async def _followups(
    session: AsyncSession,
    rng: random.Random,
    scope: Scope,
    customer: Customer,
    number: int,
    now: datetime,
) -> int:
    """Three months of notes, older first; the newest may leave a reminder due or overdue."""
    count = rng.choice((0, 1, 1, 2, 2, 3)) if number > 6 else 2
    days = sorted(rng.sample(range(2, 90), count), reverse=True)
    for i, days_ago in enumerate(days):
        kind, content, step = rng.choice(FOLLOWUP_NOTES)
        at = now - timedelta(days=days_ago, hours=rng.randint(0, 6))
        last = i == len(days) - 1
        due: datetime | None = None
        if last:
            roll = rng.random()
            if roll < 0.15:
                due = now - timedelta(days=rng.randint(2, 6), hours=1)  # overdue
            elif roll < 0.55:
                due = now + timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 5))
        await followups.log_followup(
            session,
            scope=scope,
            customer_id=customer.id,
            kind=kind,
            content=content,
            next_step=step if due else None,
            next_step_at=due,
            source_key=f"demo:fu:{customer.id}:{i}",
            now=at,
        )
    return len(days)


async def _deal(
    session: AsyncSession,
    rng: random.Random,
    scope: Scope,
    customer_id: int,
    number: int,
    now: datetime,
) -> int:
    created = now - timedelta(days=rng.randint(10, 80))
    roll = rng.random()
    stage = rng.choice(OPEN_STAGES) if roll < 0.7 else ("赢单" if roll < 0.85 else None)
    amount = Decimal(rng.choice((8, 15, 20, 35, 50, 80, 120, 300))) * 10_000
    deal, _ = await deals.create_opportunity(
        session,
        scope=scope,
        customer_id=customer_id,
        title=DEAL_NAMES[number % len(DEAL_NAMES)],
        amount=amount,
        source_key=f"demo:deal:{customer_id}",
        now=created,
        stage=stage or OPEN_STAGES[1],
    )
    if stage is None:  # lost, with its reason
        await deals.move_stage(
            session,
            scope=scope,
            opportunity_id=deal.id,
            stage_text="输单",
            source_key=f"demo:deal:{customer_id}:lost",
            now=created + timedelta(days=5),
            lost_reason=rng.choice(LOST_REASONS),
        )
    return 1


async def _tickets(
    session: AsyncSession,
    rng: random.Random,
    actors: dict[str, Actor],
    owned: list[tuple[int, str, str]],
    now: datetime,
    tz: ZoneInfo,
) -> int:
    """Closed tickets from the last weeks and a few open ones, opened by the service desk."""
    count = 0
    for i in range(24):
        customer_id = owned[7 + i * 11 % (len(owned) - 7)][0]
        customer = await customers.get_by_id(session, customer_id)
        assert customer is not None
        agent = SERVICE_AGENTS[i % len(SERVICE_AGENTS)]
        scope = Scope(actors[agent], now=now)
        text, priority, category = TICKET_TEXTS[i % len(TICKET_TEXTS)]
        closed = i >= 6
        opened_at = (
            now - timedelta(days=rng.randint(3, 40)) if closed else now - timedelta(hours=i)
        )
        opened = await tickets.open_ticket(
            session,
            scope=scope,
            customer=customer,
            content=text,
            priority=priority,
            category=category,
            attachments=[],
            source_key=f"demo:ticket:{i}",
            now=opened_at,
            tz=tz,
        )
        count += 1
        if closed:
            ticket_id = opened.ticket.id
            done_at = opened_at + timedelta(hours=rng.randint(2, 30))
            await tickets.resolve(
                session,
                scope=scope,
                ticket_id=ticket_id,
                text="已处理并电话回访确认",
                source_key=f"demo:ticket:{i}:resolve",
                now=done_at,
                tz=tz,
            )
            await tickets.close(
                session,
                scope=scope,
                ticket_id=ticket_id,
                source_key=f"demo:ticket:{i}:close",
                now=done_at + timedelta(days=1),
                tz=tz,
            )
    return count
