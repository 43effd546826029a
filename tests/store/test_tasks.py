"""To-dos by the company's day, done and postponed once per message, reminders in a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import customers, deals, staff, tasks
from crm_store.clock import FakeClock
from crm_store.models import AuditEntry, Customer, Task
from crm_store.scope import Scope, load_actor, load_scope
from crm_store.tasks import TaskChange, TaskOutcome

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Friday 23:30 in Shanghai: the company's day ends in half an hour, the UTC day in 8.5 hours.
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@dataclass
class Shop:
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock

    async def scope(self, session: AsyncSession, userid: str) -> Scope:
        scope = await load_scope(session, userid, now=self.clock.now())
        assert scope is not None
        return scope

    async def customer(self, owner: str, name: str, *, in_pool: bool = False) -> int:
        async with self.sessions.begin() as session:
            actor = await load_actor(session, owner)
            assert actor is not None
            created = await customers.create_customer(
                session, actor=actor, name=name, in_pool=in_pool, now=self.clock.now()
            )
            return created.id

    async def task(
        self,
        key: str,
        title: str,
        due: timedelta | None,
        *,
        owner: str = "zhangsan",
        customer_id: int | None = None,
        source: str = "manual",
    ) -> int:
        now = self.clock.now()
        async with self.sessions.begin() as session:
            task_id, _ = await tasks.create_task(
                session,
                owner_id=owner,
                title=title,
                due_at=None if due is None else now + due,
                customer_id=customer_id,
                source=source,
                source_key=key,
                now=now,
            )
            return task_id

    async def complete(self, task_id: int, key: str, owner: str = "zhangsan") -> TaskChange:
        async with self.sessions.begin() as session:
            return await tasks.complete_task(
                session, owner_id=owner, task_id=task_id, now=self.clock.now(), source_key=key
            )

    async def postpone(
        self, task_id: int, to: timedelta, key: str, owner: str = "zhangsan"
    ) -> TaskChange:
        now = self.clock.now()
        async with self.sessions.begin() as session:
            return await tasks.postpone_task(
                session, owner_id=owner, task_id=task_id, due_at=now + to, now=now, source_key=key
            )

    async def next_followup(self, customer_id: int) -> datetime | None:
        async with self.sessions() as session:
            return (await session.get_one(Customer, customer_id)).next_followup_at


@pytest.fixture
async def shop(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> Shop:
    clock.set(NOW)
    async with sessions.begin() as session:
        await staff.upsert_department(
            session, department_id=1, name="销售部", parent_id=None, now=NOW
        )
        for userid, name in (("zhangsan", "张三"), ("lisi", "李四")):
            await staff.upsert_staff(
                session, userid=userid, name=name, department_ids=[1], now=NOW
            )
    return Shop(sessions=sessions, clock=clock)


async def _count(session: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(model).where(*where)
    return int(await session.scalar(query) or 0)


async def test_todos_are_overdue_first_then_the_rest_of_the_shanghai_day_then_undated(
    shop: Shop,
) -> None:
    customer = await shop.customer("zhangsan", "上海张记贸易有限公司")
    await shop.task("k1", "整理名片", None)
    await shop.task("k2", "午夜前发方案", timedelta(minutes=29))  # 23:59 Shanghai
    await shop.task("k3", "周六零点", timedelta(minutes=30))  # tomorrow there, today in UTC
    await shop.task("k4", "昨天该回电", timedelta(days=-1), customer_id=customer)
    await shop.task("k5", "今晚早些", timedelta(minutes=-30))
    done = await shop.task("k6", "已经做完", timedelta(hours=-2))
    await shop.complete(done, "d1")
    await shop.task("k7", "别人的", timedelta(hours=-1), owner="lisi")
    async with shop.sessions() as session:
        items = await tasks.todos(session, owner_id="zhangsan", now=NOW, tz=SHANGHAI)
        short = await tasks.todos(session, owner_id="zhangsan", now=NOW, tz=SHANGHAI, limit=2)
    assert [(i.title, i.overdue) for i in items] == [
        ("昨天该回电", True),
        ("今晚早些", True),
        ("午夜前发方案", False),
        ("整理名片", False),
    ]
    assert (items[0].customer_id, items[0].customer_name) == (customer, "上海张记贸易有限公司")
    assert items[0].due_at == NOW - timedelta(days=1)
    assert (items[-1].due_at, items[-1].customer_name) == (None, None)
    assert [i.title for i in short] == ["昨天该回电", "今晚早些"]


async def test_after_shanghai_midnight_today_is_saturday_while_utc_is_still_friday(
    shop: Shop,
) -> None:
    await shop.task("k1", "周六上午十点", timedelta(hours=10, minutes=30))
    await shop.task("k2", "周日零点半", timedelta(days=1, hours=1))
    after_midnight = NOW + timedelta(hours=1)  # Saturday 00:30 in Shanghai
    async with shop.sessions() as session:
        items = await tasks.todos(session, owner_id="zhangsan", now=after_midnight, tz=SHANGHAI)
    assert [(i.title, i.overdue) for i in items] == [("周六上午十点", False)]


async def test_complete_task_outcomes_and_the_customers_next_followup(shop: Shop) -> None:
    customer = await shop.customer("zhangsan", "上海张记贸易有限公司")
    first = await shop.task("k1", "回电", timedelta(days=1), customer_id=customer)
    await shop.task("k2", "寄样品", timedelta(days=3), customer_id=customer)
    assert await shop.next_followup(customer) == NOW + timedelta(days=1)

    done = await shop.complete(first, "d1")
    assert done.outcome is TaskOutcome.DONE and done.task is not None
    assert (done.task.task_id, done.task.title) == (first, "回电")
    assert await shop.next_followup(customer) == NOW + timedelta(days=3)
    assert (await shop.complete(first, "d1")).outcome is TaskOutcome.DONE  # a WeCom retry
    assert (await shop.complete(first, "d2")).outcome is TaskOutcome.ALREADY_DONE
    assert await shop.complete(first, "d3", owner="lisi") == TaskChange(
        TaskOutcome.NOT_YOURS, None
    )
    assert await shop.complete(first + 100, "d4") == TaskChange(TaskOutcome.NOT_FOUND, None)
    async with shop.sessions() as session:
        task = await session.get_one(Task, first)
        assert task.done_at == NOW
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "task.done"))
        )
        assert [(e.actor_id, e.entity_id, e.source_key) for e in entries] == [
            ("zhangsan", str(first), "d1")
        ]
        assert entries[0].before is not None and entries[0].before["done_at"] is None


async def test_postpone_moves_the_task_and_the_customers_next_followup(shop: Shop) -> None:
    customer = await shop.customer("zhangsan", "上海张记贸易有限公司")
    task_id = await shop.task("k1", "回电", timedelta(days=1), customer_id=customer)

    moved = await shop.postpone(task_id, timedelta(days=5), "p1")
    assert moved.outcome is TaskOutcome.MOVED and moved.task is not None
    assert moved.task.due_at == NOW + timedelta(days=5) and not moved.task.overdue
    assert await shop.next_followup(customer) == NOW + timedelta(days=5)
    shop.clock.advance(seconds=5)
    retried = await shop.postpone(task_id, timedelta(days=5), "p1")
    assert retried.outcome is TaskOutcome.MOVED
    assert retried.task is not None and retried.task.due_at == NOW + timedelta(days=5)

    assert (await shop.postpone(task_id, timedelta(days=1), "p2", "lisi")).outcome is (
        TaskOutcome.NOT_YOURS
    )
    assert (await shop.postpone(task_id + 100, timedelta(days=1), "p3")).outcome is (
        TaskOutcome.NOT_FOUND
    )
    await shop.complete(task_id, "d1")
    assert await shop.next_followup(customer) is None
    late = await shop.postpone(task_id, timedelta(days=9), "p4")
    assert late.outcome is TaskOutcome.ALREADY_DONE
    async with shop.sessions() as session:
        assert (await session.get_one(Task, task_id)).due_at == NOW + timedelta(days=5)
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "task.postpone"))
        )
        assert [e.source_key for e in entries] == ["p1"]
        assert entries[0].before is not None and entries[0].after is not None
        assert entries[0].before["due_at"] == (NOW + timedelta(days=1)).isoformat()
        assert entries[0].after["due_at"] == (NOW + timedelta(days=5)).isoformat()


async def test_create_task_once_per_message_and_only_followup_work_sets_next_followup(
    shop: Shop,
) -> None:
    customer = await shop.customer("zhangsan", "上海张记贸易有限公司")
    first = await shop.task("k1", "  报价跟进  ", timedelta(days=2), customer_id=customer)
    again = await shop.task("k1", "别的", timedelta(days=9), customer_id=customer)
    assert again == first
    # A ticket's task is service work, not the next sales contact.
    await shop.task("k2", "上门维修", timedelta(hours=1), customer_id=customer, source="ticket")
    assert await shop.next_followup(customer) == NOW + timedelta(days=2)
    async with shop.sessions() as session:
        task = await session.get_one(Task, first)
        assert (task.title, task.source, task.owner_id) == ("报价跟进", "manual", "zhangsan")
        assert await _count(session, Task) == 2
        assert await _count(session, AuditEntry, AuditEntry.action == "task.create") == 2
    with pytest.raises(ValueError):
        await shop.task("k3", "来源不明", None, source="carrier-pigeon")
    with pytest.raises(ValueError):
        await shop.task("k4", "   ", None)


async def test_due_reminders_take_the_half_open_window(shop: Shop) -> None:
    customer = await shop.customer("zhangsan", "上海张记贸易有限公司")
    await shop.task("k1", "早就到期", timedelta(hours=-2))
    await shop.task("k2", "窗口起点", timedelta(hours=-1))  # since is exclusive
    await shop.task("k3", "半小时前", timedelta(minutes=-30), customer_id=customer)
    await shop.task("k4", "正当其时", timedelta(0), owner="lisi")  # now is inclusive
    await shop.task("k5", "还没到", timedelta(minutes=1))
    await shop.task("k6", "没有时间", None)
    await shop.complete(await shop.task("k7", "已完成", timedelta(minutes=-10)), "d1")
    async with shop.sessions.begin() as session:
        await staff.upsert_staff(
            session, userid="wangwu", name="王五", department_ids=[1], active=False, now=NOW
        )
    await shop.task("k8", "离职的人", timedelta(minutes=-5), owner="wangwu")
    async with shop.sessions() as session:
        due = await tasks.due_reminders(session, now=NOW, since=NOW - timedelta(hours=1))
        first_only = await tasks.due_reminders(
            session, now=NOW, since=NOW - timedelta(hours=1), limit=1
        )
    assert [(r.title, r.owner_id, r.due_at, r.customer_name) for r in due] == [
        ("半小时前", "zhangsan", NOW - timedelta(minutes=30), "上海张记贸易有限公司"),
        ("正当其时", "lisi", NOW, None),
    ]
    assert [r.title for r in first_only] == ["半小时前"]


async def test_my_customers_soonest_next_followup_first_with_the_newest_open_stage(
    shop: Shop,
) -> None:
    later = await shop.customer("zhangsan", "三天后公司")
    sooner = await shop.customer("zhangsan", "明天公司")
    undated = await shop.customer("zhangsan", "无计划公司")
    overdue = await shop.customer("zhangsan", "逾期公司")
    await shop.customer("lisi", "李四的公司")
    await shop.customer("zhangsan", "公海公司", in_pool=True)
    await shop.task("k1", "三天后", timedelta(days=3), customer_id=later)
    await shop.task("k2", "明天", timedelta(days=1), customer_id=sooner)
    await shop.task("k3", "昨天", timedelta(days=-1), customer_id=overdue)

    async def deal(key: str, customer_id: int, stage: str) -> None:
        async with shop.sessions.begin() as session:
            await deals.create_opportunity(
                session,
                scope=await shop.scope(session, "zhangsan"),
                customer_id=customer_id,
                title=key,
                amount=Decimal("1"),
                source_key=key,
                now=shop.clock.now(),
                stage=stage,
            )
        shop.clock.advance(minutes=1)

    await deal("o1", sooner, "接洽")
    await deal("o2", sooner, "报价")
    await deal("o3", later, "需求")
    await deal("o4", later, "赢单")  # newer, but closed
    async with shop.sessions() as session:
        zhang = await shop.scope(session, "zhangsan")
        lines = await tasks.my_customers(session, scope=zhang, owner_id="zhangsan", now=NOW)
        colleague = await shop.scope(session, "lisi")
        peeked = await tasks.my_customers(session, scope=colleague, owner_id="zhangsan", now=NOW)
    assert [(line.id, line.stage, line.overdue) for line in lines] == [
        (overdue, None, True),
        (sooner, "方案报价", False),
        (later, "需求确认", False),
        (undated, None, False),
    ]
    assert lines[1].next_followup_at == NOW + timedelta(days=1)
    assert lines[1].name == "明天公司" and lines[1].last_followup_at is None
    assert peeked == []
