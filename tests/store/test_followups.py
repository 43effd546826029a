"""Follow-ups from chat: the next step becomes a task, retries log once, undo takes both back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import customers, followups, staff
from crm_store.clock import FakeClock
from crm_store.followups import UndoResult
from crm_store.models import AuditEntry, Customer, Followup, Task
from crm_store.scope import Scope, load_actor, load_scope

# userid: (name, department, role)
PEOPLE = {
    "zhangsan": ("张三", 1, "rep"),
    "lisi": ("李四", 1, "rep"),
    "zhoujiu": ("周九", 2, "service"),
}
CUSTOMERS = (("zhangsan", "上海张记贸易有限公司"), ("lisi", "北京李氏科技有限公司"))


@dataclass
class Shop:
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    zhang: int  # 张三's customer
    li: int  # 李四's customer

    async def scope(self, session: AsyncSession, userid: str) -> Scope:
        scope = await load_scope(session, userid, now=self.clock.now())
        assert scope is not None
        return scope


@pytest.fixture
async def shop(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> Shop:
    now = clock.now()
    async with sessions.begin() as session:
        for department_id, name in ((1, "销售部"), (2, "客服部")):
            await staff.upsert_department(
                session, department_id=department_id, name=name, parent_id=None, now=now
            )
        for userid, (name, department, role) in PEOPLE.items():
            await staff.upsert_staff(
                session, userid=userid, name=name, department_ids=[department], now=now
            )
            await staff.set_role(session, userid=userid, role=role, by="test", now=now)
        ids = []
        for owner, name in CUSTOMERS:
            actor = await load_actor(session, owner)
            assert actor is not None
            customer = await customers.create_customer(session, actor=actor, name=name, now=now)
            ids.append(customer.id)
    return Shop(sessions=sessions, clock=clock, zhang=ids[0], li=ids[1])


async def _log(
    shop: Shop,
    key: str,
    *,
    userid: str = "zhangsan",
    customer_id: int | None = None,
    next_in: timedelta | None = None,
    next_step: str | None = None,
    content: str = "拜访王总，对报价有兴趣",
    kind: str = "visit",
) -> followups.LoggedFollowup:
    now = shop.clock.now()
    async with shop.sessions.begin() as session:
        return await followups.log_followup(
            session,
            scope=await shop.scope(session, userid),
            customer_id=shop.zhang if customer_id is None else customer_id,
            kind=kind,
            content=content,
            next_step=next_step,
            next_step_at=None if next_in is None else now + next_in,
            source_key=key,
            now=now,
        )


async def _count(session: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(model).where(*where)
    return int(await session.scalar(query) or 0)


async def test_a_next_step_becomes_a_task_and_the_customers_next_followup(shop: Shop) -> None:
    now = shop.clock.now()
    logged = await _log(shop, "m1", next_in=timedelta(days=5), next_step="再联系王总", kind="拜访")
    assert logged.created and logged.customer_id == shop.zhang and logged.task_id is not None
    async with shop.sessions() as session:
        followup = await session.get_one(Followup, logged.followup_id)
        assert (followup.author_id, followup.kind, followup.next_step) == (
            "zhangsan",
            "visit",
            "再联系王总",
        )
        task = await session.get_one(Task, logged.task_id)
        assert (task.owner_id, task.customer_id, task.title, task.source, task.source_key) == (
            "zhangsan",
            shop.zhang,
            "再联系王总",
            "followup",
            "m1:task",
        )
        assert task.due_at == now + timedelta(days=5) and task.done_at is None
        customer = await session.get_one(Customer, shop.zhang)
        assert customer.last_followup_at == now
        assert customer.next_followup_at == now + timedelta(days=5)
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.source_key == "m1"))
        assert entry is not None
        assert (entry.actor_id, entry.action, entry.entity, entry.entity_id) == (
            "zhangsan",
            "followup.create",
            "followup",
            str(logged.followup_id),
        )
        assert entry.after is not None and entry.after["task_id"] == logged.task_id


async def test_without_a_time_no_task_and_the_sooner_planned_step_stays_next(
    shop: Shop,
) -> None:
    start = shop.clock.now()
    await _log(shop, "m1", next_in=timedelta(days=2), content="电话沟通" * 20, kind="call")
    shop.clock.advance(hours=3)
    later = await _log(shop, "m2", next_in=timedelta(days=9))
    plain = await _log(shop, "m3", next_step="等对方回复")
    assert later.task_id is not None and plain.task_id is None
    async with shop.sessions() as session:
        titles = list(await session.scalars(select(Task.title).order_by(Task.id)))
        # With no next step the task is named by the first 50 characters of what happened.
        assert titles == [("电话沟通" * 20)[:50], "拜访王总，对报价有兴趣"]
        customer = await session.get_one(Customer, shop.zhang)
        assert customer.last_followup_at == shop.clock.now()
        assert customer.next_followup_at == start + timedelta(days=2)


async def test_a_retried_message_logs_one_followup_and_one_task(shop: Shop) -> None:
    first = await _log(shop, "m1", next_in=timedelta(days=1))
    shop.clock.advance(seconds=5)  # PROTOCOL.md: WeCom retries after 5 s
    again = await _log(shop, "m1", next_in=timedelta(days=1))
    assert first.created and not again.created
    assert (again.followup_id, again.task_id, again.customer_id) == (
        first.followup_id,
        first.task_id,
        first.customer_id,
    )
    async with shop.sessions() as session:
        assert await _count(session, Followup) == 1
        assert await _count(session, Task) == 1
        assert await _count(session, AuditEntry, AuditEntry.action == "followup.create") == 1
        customer = await session.get_one(Customer, shop.zhang)
        assert customer.last_followup_at == shop.clock.now() - timedelta(seconds=5)


@pytest.mark.parametrize("userid", ["lisi", "zhoujiu"])
async def test_a_customer_the_actor_may_not_change_refuses_and_writes_nothing(
    shop: Shop, userid: str
) -> None:
    # 周九 (service) reads every card, but reading is not writing.
    with pytest.raises(customers.NotAllowed):
        await _log(shop, "m1", userid=userid, next_in=timedelta(days=1))
    async with shop.sessions() as session:
        assert await _count(session, Followup) == 0
        assert await _count(session, Task) == 0
        assert await _count(session, AuditEntry, AuditEntry.source_key == "m1") == 0
        customer = await session.get_one(Customer, shop.zhang)
        assert customer.last_followup_at is None and customer.next_followup_at is None


async def test_unknown_kinds_and_empty_content_are_refused(shop: Shop) -> None:
    with pytest.raises(ValueError, match="kind"):
        await _log(shop, "m1", kind="飞鸽传书")
    with pytest.raises(ValueError, match="content"):
        await _log(shop, "m2", content="  ")


async def _undo(shop: Shop, followup_id: int, key: str, userid: str = "zhangsan") -> UndoResult:
    async with shop.sessions.begin() as session:
        return await followups.undo_followup(
            session,
            actor_id=userid,
            followup_id=followup_id,
            now=shop.clock.now(),
            source_key=key,
        )


async def test_undo_within_the_window_takes_back_followup_and_task(shop: Shop) -> None:
    start = shop.clock.now()
    await _log(shop, "m1", next_in=timedelta(days=3))
    shop.clock.advance(hours=1)
    logged = await _log(shop, "m2", next_in=timedelta(days=1), next_step="寄合同")
    shop.clock.advance(minutes=9)

    assert await _undo(shop, logged.followup_id, "u1") is UndoResult.UNDONE
    async with shop.sessions() as session:
        assert await session.get(Followup, logged.followup_id) is None
        assert await session.get(Task, logged.task_id) is None
        customer = await session.get_one(Customer, shop.zhang)
        # Back to the first follow-up's times.
        assert customer.last_followup_at == start
        assert customer.next_followup_at == start + timedelta(days=3)
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "followup.undo")
        )
        assert entry is not None and entry.source_key == "u1" and entry.actor_id == "zhangsan"
        assert entry.before is not None
        assert entry.before["author_id"] == "zhangsan"
        assert entry.before["source_key"] == "m2"
        assert entry.before["task"]["title"] == "寄合同"

    # The same undo message again answers the same; a new one learns it is gone.
    assert await _undo(shop, logged.followup_id, "u1") is UndoResult.UNDONE
    assert await _undo(shop, logged.followup_id, "u2") is UndoResult.ALREADY_UNDONE
    assert await _undo(shop, logged.followup_id, "u3", "lisi") is UndoResult.NOT_YOURS
    async with shop.sessions() as session:
        assert await _count(session, AuditEntry, AuditEntry.action == "followup.undo") == 1


async def test_undoing_the_only_followup_clears_the_customers_times(shop: Shop) -> None:
    logged = await _log(shop, "m1", next_in=timedelta(days=1))
    assert await _undo(shop, logged.followup_id, "u1") is UndoResult.UNDONE
    async with shop.sessions() as session:
        customer = await session.get_one(Customer, shop.zhang)
        assert customer.last_followup_at is None and customer.next_followup_at is None


async def test_undo_refuses_late_foreign_and_missing_followups(shop: Shop) -> None:
    logged = await _log(shop, "m1", next_in=timedelta(days=1))
    assert await _undo(shop, logged.followup_id, "u1", "lisi") is UndoResult.NOT_YOURS
    assert await _undo(shop, logged.followup_id + 100, "u2") is UndoResult.NOT_FOUND
    shop.clock.advance(minutes=10, seconds=1)
    assert await _undo(shop, logged.followup_id, "u3") is UndoResult.TOO_LATE
    async with shop.sessions() as session:
        assert await _count(session, Followup) == 1
        assert await _count(session, Task) == 1
        assert await _count(session, AuditEntry, AuditEntry.action == "followup.undo") == 0


async def test_recent_followups_newest_first_within_scope(shop: Shop) -> None:
    for key in ("m1", "m2", "m3", "m4"):
        await _log(shop, key, content=f"第{key}次")
        shop.clock.advance(minutes=1)
    await _log(shop, "l1", userid="lisi", customer_id=shop.li)
    async with shop.sessions() as session:
        zhang = await shop.scope(session, "zhangsan")
        recent = await followups.recent_followups(session, scope=zhang, customer_id=shop.zhang)
        assert [f.content for f in recent] == ["第m4次", "第m3次", "第m2次"]
        assert await followups.recent_followups(session, scope=zhang, customer_id=shop.li) == []
        service = await shop.scope(session, "zhoujiu")
        seen = await followups.recent_followups(
            session, scope=service, customer_id=shop.li, limit=10
        )
        assert [f.author_id for f in seen] == ["lisi"]
