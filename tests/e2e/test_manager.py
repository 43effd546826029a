"""Managers in chat, end to end: 日报 / 周报 / 团队 / 业绩 pulled, digests and mornings pushed.

销售部(2, led by 王经理, a manager) ─┬─ 一组(3, led by 李组长, a rep): 张三
                                    └─ 二组(4): 钱七
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cache import LocalCache, Notifier
from bot.runtime.scheduler import Scheduler
from crm_store import customers, staff
from crm_store.models import Customer, Followup, Opportunity, OutboxMessage, Task
from crm_store.models.sales import OpportunityStageHistory
from crm_store.scope import load_actor
from handlers.manager import ROUTERS
from tests.e2e.conftest import BotHarness

TZ = ZoneInfo("Asia/Shanghai")
ORG = [(1, "总部", None), (2, "销售部", 1), (3, "销售一组", 2), (4, "销售二组", 2)]
PEOPLE = [  # userid, name, departments, led departments, role
    ("wangjl", "王经理", [2], [2], "manager"),
    ("lizz", "李组长", [3], [3], "rep"),
    ("zhangsan", "张三", [3], [], "rep"),
    ("qianqi", "钱七", [4], [], "rep"),
    ("admin", "吴管理员", [1], [], "admin"),
]
WON = Decimal("80000")


async def seed(bot: BotHarness, now: datetime) -> dict[str, int]:
    """The team above; 张三's and 钱七's customers with one open deal each."""
    ids: dict[str, int] = {}
    async with bot.runtime.sessions.begin() as session:
        for dept_id, name, parent in ORG:
            await staff.upsert_department(
                session, department_id=dept_id, name=name, parent_id=parent, now=now
            )
        for userid, name, depts, led, role in PEOPLE:
            await staff.upsert_staff(
                session,
                userid=userid,
                name=name,
                department_ids=depts,
                main_department_id=depts[0],
                leader_in=led,
                direct_leaders=[],
                now=now,
            )
            await staff.set_role(session, userid=userid, role=role, by="test", now=now)
        admin = await load_actor(session, "admin")
        assert admin is not None
        for key, owner, name in (
            ("zhang", "zhangsan", "上海张记贸易有限公司"),
            ("qian", "qianqi", "钱塘江物流股份有限公司"),
        ):
            customer = await customers.create_customer(
                session, actor=admin, name=name, now=now, owner_id=owner
            )
            ids[key] = customer.id
            deal = Opportunity(
                customer_id=customer.id,
                title=f"{name[:2]}项目",
                amount=Decimal("300000"),
                stage="初步接洽",
                owner_id=owner,
                created_at=now,
                updated_at=now,
            )
            session.add(deal)
            await session.flush()
            ids[f"deal_{key}"] = deal.id
    for userid, *_ in PEOPLE:
        bot.sim.add_user(userid, userid, [1])
    return ids


@pytest.fixture
async def team(bot: BotHarness) -> BotHarness:
    """Friday 2026-11-20, 18:00 in Shanghai: 张三 called and moved his deal today; 钱七's deal
    was due to close on 11-01 (at risk); 李组长 and 王经理 did nothing."""
    bot.clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    now = bot.clock.now()
    ids = await seed(bot, now - timedelta(days=3))
    async with bot.runtime.sessions.begin() as session:
        session.add(
            Followup(
                customer_id=ids["zhang"],
                author_id="zhangsan",
                kind="call",
                content="电话沟通需求",
                created_at=now - timedelta(hours=1),
            )
        )
        session.add(
            OpportunityStageHistory(
                opportunity_id=ids["deal_zhang"],
                from_stage="初步接洽",
                to_stage="需求确认",
                by_id="zhangsan",
                at=now - timedelta(hours=2),
            )
        )
        deal = await session.get_one(Opportunity, ids["deal_zhang"])
        deal.stage = "需求确认"
        late = await session.get_one(Opportunity, ids["deal_qian"])
        late.expected_close_date = date(2026, 11, 1)
    return bot


async def test_the_department_head_reads_both_groups(team: BotHarness) -> None:
    [text] = await team.say("wangjl", "日报")
    assert text.startswith("**日报 11月20日（周五）**")
    assert "跟进 1｜新客户 0｜阶段推进 1｜赢单 0" in text
    assert "风险商机" in text and "钱塘江物流股份有限公司" in text and "预计 11月1日" in text
    assert "> 张三：跟进 1｜新客户 0｜推进 1" in text
    assert "无动态成员" in text and "李组长" in text and "钱七" in text
    # The most important first: head, then risk, then people, then the pipeline.
    assert text.index("风险商机") < text.index("无动态成员") < text.index("商机漏斗")
    assert "> 需求确认：1 个｜30万（+1 个，+30万）" in text


async def test_a_group_leader_reads_their_group_only(team: BotHarness) -> None:
    [text] = await team.say("lizz", "日报 今天")
    assert "张三" in text and "李组长" in text
    assert "钱七" not in text and "钱塘江" not in text and "风险商机" not in text
    assert await team.say("lizz", "业绩 钱七") == ["没有找到「钱七」，或不在你能查看的团队中。"]
    [person] = await team.say("lizz", "业绩 张三")
    assert person.startswith("**周报 11月16日–11月22日**｜张三")


async def test_a_rep_reads_their_own_numbers(team: BotHarness) -> None:
    [text] = await team.say("zhangsan", "日报")
    assert "跟进 1" in text and "成员" not in text and "钱七" not in text
    assert await team.say("zhangsan", "日报 前天") == [
        "日报 11月18日（周三）：没有新的动态，也没有需要关注的商机。"
    ]
    assert await team.say("zhangsan", "周报 上周") == [
        "周报 11月9日–11月15日：没有新的动态，也没有需要关注的商机。"
    ]
    assert await team.say("zhangsan", "业绩 钱七") == [
        "没有找到「钱七」，或不在你能查看的团队中。"
    ]
    [bad] = await team.say("zhangsan", "日报 明天")
    assert bad.startswith("没看懂是哪一天：「明天」")


async def test_team_lists_everyone_with_todays_numbers(team: BotHarness) -> None:
    [text] = await team.say("wangjl", "团队")
    assert text.startswith("**团队 11月20日（周五）**（4 人）")
    for name in ("王经理", "李组长", "张三", "钱七"):
        assert f"> {name}：" in text
    [person] = await team.say("wangjl", "业绩 钱七")
    assert "钱塘江物流股份有限公司" in person  # the week's risk belongs to the person


async def test_a_long_digest_is_cut_at_lines_with_the_head_first(team: BotHarness) -> None:
    now = team.clock.now()
    async with team.runtime.sessions.begin() as session:
        customer_id = await session.scalar(select(Opportunity.customer_id).limit(1))
        assert customer_id is not None
        for n in range(60):
            userid = f"rep{n:02d}"
            await staff.upsert_staff(
                session,
                userid=userid,
                name=f"销售代表第{n:02d}号",
                department_ids=[4],
                main_department_id=4,
                leader_in=[],
                direct_leaders=[],
                now=now,
            )
            session.add(
                Followup(
                    customer_id=customer_id,
                    author_id=userid,
                    kind="call",
                    content="电话",
                    created_at=now - timedelta(minutes=n),
                )
            )
    pieces = await team.say("wangjl", "日报")
    assert len(pieces) >= 2
    assert all(len(p.encode("utf-8")) <= 2048 for p in pieces)
    assert pieces[0].startswith("**日报 11月20日（周五）**") and "风险商机" in pieces[0]
    lines = [line for p in pieces for line in p.split("\n")]
    for n in range(60):  # every line whole, in one piece
        assert f"> 销售代表第{n:02d}号：跟进 1｜新客户 0｜推进 0" in lines
    assert "商机漏斗" in pieces[-1]


def shanghai(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


async def pushed(bot: BotHarness) -> list[tuple[str, str]]:
    """(recipient, job and period) of every queued push, sorted."""
    async with bot.runtime.sessions() as session:
        query = select(OutboxMessage.to_user, OutboxMessage.dedup_key)
        rows = (await session.execute(query)).all()
    found = []
    for user, key in rows:
        _, job, period = key.split(":", 2)
        found.append((user, f"{job} {period[5:16]}"))
    return sorted(found)


async def test_a_week_with_a_holiday_and_a_tiaoxiu_saturday(bot: BotHarness) -> None:
    """National Day 2026: Mon-Wed 10-05..07 are holidays, Saturday 10-10 is a working day.

    钱七's deal is past its close date all week, so 王经理's digest always has something; 李组长's
    group only has 张三's follow-up on Thursday 10-08, so theirs is sent that day alone (and in
    the weekly digest of the week holding it). 张三's task falls due on Friday 09:30."""
    bot.clock.set(shanghai("2026-09-01", "10:00"))
    ids = await seed(bot, bot.clock.now())
    async with bot.runtime.sessions.begin() as session:
        late = await session.get_one(Opportunity, ids["deal_qian"])
        late.expected_close_date = date(2026, 9, 30)
        zhang = await session.get_one(Opportunity, ids["deal_zhang"])
        zhang.created_at = shanghai("2026-10-01", "10:00")
        for key in ("zhang", "qian"):
            session.add(
                Followup(
                    customer_id=ids[key],
                    author_id="zhangsan" if key == "zhang" else "qianqi",
                    kind="call",
                    content="跟进",
                    created_at=shanghai("2026-09-30" if key == "qian" else "2026-10-08", "11:00"),
                )
            )
        session.add(
            Task(
                owner_id="zhangsan",
                customer_id=ids["zhang"],
                title="回电张记",
                due_at=shanghai("2026-10-09", "09:30"),
                created_at=shanghai("2026-10-08", "11:00"),
            )
        )
        # Customers' last follow-up as the follow-up code keeps it: 张记 on 10-08, 钱塘江 on 9-30.
        for key, moment in (("zhang", "2026-10-08"), ("qian", "2026-09-30")):
            customer = await session.get_one(Customer, ids[key])
            customer.last_followup_at = shanghai(moment, "11:00")
    jobs = [job for router in ROUTERS for job in router.jobs]
    worker = Scheduler(
        sessions=bot.runtime.sessions,
        clock=bot.clock,
        tz=TZ,
        notifier=Notifier(LocalCache()),
        jobs=jobs,
        worker_id="w1",
    )
    bot.clock.set(shanghai("2026-10-04", "12:00"))
    while bot.clock.now() < shanghai("2026-10-12", "10:00"):
        await worker.run_due()
        bot.clock.advance(minutes=30)
    sent = await pushed(bot)
    daily = [(u, p) for u, p in sent if p.startswith("manager.daily")]
    assert daily == [
        ("lizz", "manager.daily 10-08T18:30"),
        ("wangjl", "manager.daily 10-08T18:30"),
        ("wangjl", "manager.daily 10-09T18:30"),
        ("wangjl", "manager.daily 10-10T18:30"),
    ]
    weekly = [(u, p) for u, p in sent if p.startswith("manager.weekly")]
    assert weekly == [
        ("lizz", "manager.weekly 10-12T09:00"),
        ("wangjl", "manager.weekly 10-05T09:00"),
        ("wangjl", "manager.weekly 10-12T09:00"),
    ]
    mornings = [(u, p) for u, p in sent if p.startswith("rep.morning")]
    # 张三: his task on Friday (due), Saturday and Monday (overdue), a message and a card each;
    # 钱七: 钱塘江 is quiet 14 days from 10-14 on, so nothing yet.
    assert mornings == [
        ("zhangsan", "rep.morning 10-09T09:00"),
        ("zhangsan", "rep.morning 10-09T09:00"),
        ("zhangsan", "rep.morning 10-10T09:00"),
        ("zhangsan", "rep.morning 10-10T09:00"),
        ("zhangsan", "rep.morning 10-12T09:00"),
        ("zhangsan", "rep.morning 10-12T09:00"),
    ]
    await bot.drain()
    friday, card, saturday, *_ = bot.sim.screen("zhangsan")
    assert "回电张记" in friday and "已过期" not in friday
    assert "已过期" in saturday
    assert "完成 1" in card
    done = await bot.tap("zhangsan", "sales.todo.done:")
    assert any("回电张记" in line for line in done)
    async with bot.runtime.sessions() as session:
        task = await session.scalar(select(Task).where(Task.title == "回电张记"))
        assert task is not None and task.done_at is not None
    # Again from Sunday on: nothing already sent goes out twice.
    before = await pushed(bot)
    bot.clock.set(shanghai("2026-10-12", "11:00"))
    await worker.run_due()
    assert await pushed(bot) == before


async def test_a_morning_names_quiet_customers(bot: BotHarness) -> None:
    bot.clock.set(shanghai("2026-11-02", "08:00"))
    await seed(bot, shanghai("2026-10-01", "10:00"))
    worker = Scheduler(
        sessions=bot.runtime.sessions,
        clock=bot.clock,
        tz=TZ,
        notifier=Notifier(LocalCache()),
        jobs=[job for router in ROUTERS for job in router.jobs if job.name == "rep.morning"],
        worker_id="w1",
    )
    bot.clock.set(shanghai("2026-11-02", "09:00"))  # a Monday
    await worker.run_due()
    await bot.drain()
    [text] = bot.sim.screen("qianqi")
    assert "14 天以上未跟进的客户" in text and "钱塘江物流股份有限公司｜从未跟进" in text
    assert bot.sim.screen("wangjl") == []  # nothing of his own to say: nothing sent


async def test_a_missed_digest_is_caught_up_once_with_two_workers(bot: BotHarness) -> None:
    """The bot was down over 18:30; the first worker back sends that day's digest, and two
    workers ticking together afterwards send nothing more."""
    bot.clock.set(shanghai("2026-09-01", "10:00"))
    ids = await seed(bot, bot.clock.now())
    async with bot.runtime.sessions.begin() as session:
        late = await session.get_one(Opportunity, ids["deal_qian"])
        late.expected_close_date = date(2026, 9, 30)
    daily = [job for router in ROUTERS for job in router.jobs if job.name == "manager.daily"]

    def worker(name: str) -> Scheduler:
        return Scheduler(
            sessions=bot.runtime.sessions,
            clock=bot.clock,
            tz=TZ,
            notifier=Notifier(LocalCache()),
            jobs=daily,
            worker_id=name,
        )

    bot.clock.set(shanghai("2026-10-08", "17:00"))
    await worker("before").run_due()
    bot.clock.set(shanghai("2026-10-08", "20:00"))  # restarted after the 18:30 period
    first, second = worker("a"), worker("b")
    await first.run_due()
    bot.clock.advance(minutes=5)
    await asyncio.gather(first.run_due(), second.run_due())
    # 张记's deal has been silent since 9-01, so 李组长's group has something to say too.
    assert await pushed(bot) == [
        ("lizz", "manager.daily 10-08T18:30"),
        ("wangjl", "manager.daily 10-08T18:30"),
    ]
    await bot.drain()
    [text] = bot.sim.screen("wangjl")
    assert text.startswith("**日报 10月8日（周四）**") and "钱塘江物流股份有限公司" in text


async def test_scope_is_read_again_at_send_time(bot: BotHarness) -> None:
    """张三 moves from 一组 to 二组 in the afternoon: 李组长's 18:30 digest no longer has him."""
    bot.clock.set(shanghai("2026-10-08", "10:00"))
    ids = await seed(bot, bot.clock.now())
    async with bot.runtime.sessions.begin() as session:
        session.add(
            Followup(
                customer_id=ids["zhang"],
                author_id="zhangsan",
                kind="call",
                content="跟进",
                created_at=shanghai("2026-10-08", "11:00"),
            )
        )
        await staff.upsert_staff(
            session,
            userid="zhangsan",
            name="张三",
            department_ids=[4],
            main_department_id=4,
            leader_in=[],
            direct_leaders=[],
            now=shanghai("2026-10-08", "15:00"),
        )
    daily = [job for router in ROUTERS for job in router.jobs if job.name == "manager.daily"]
    worker = Scheduler(
        sessions=bot.runtime.sessions,
        clock=bot.clock,
        tz=TZ,
        notifier=Notifier(LocalCache()),
        jobs=daily,
        worker_id="w1",
    )
    bot.clock.set(shanghai("2026-10-08", "18:30"))
    await worker.run_due()
    assert await pushed(bot) == [("wangjl", "manager.daily 10-08T18:30")]
    await bot.drain()
    [text] = bot.sim.screen("wangjl")
    assert "> 张三：跟进 1" in text
