"""Tickets in the store: the whole transition table, assignment rules, scope, SLA query."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import customers, sla, staff, tickets
from crm_store.models import AuditEntry, Customer, Staff
from crm_store.models.service import Priority, Ticket, TicketStatus
from crm_store.scope import Scope, load_actor
from crm_store.tickets import ALLOWED, Action, Refused, ServiceRules

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PEOPLE = [  # userid, department, role
    ("rep1", 2, "rep"),
    ("rep2", 2, "rep"),
    ("kf1", 5, "service"),
    ("kf2", 5, "service"),
    ("kf3", 5, "service"),
    ("boss", 1, "admin"),
]


async def _org(session: AsyncSession) -> dict[str, Customer]:
    for dept, name in ((1, "公司"), (2, "销售"), (5, "客服")):
        await staff.upsert_department(
            session, department_id=dept, name=name, parent_id=None if dept == 1 else 1, now=NOW
        )
    for userid, dept, role in PEOPLE:
        await staff.upsert_staff(
            session, userid=userid, name=userid, department_ids=[dept], main_department_id=dept,
            leader_in=[], direct_leaders=[], now=NOW,
        )  # fmt: skip
        if role != "rep":
            await staff.set_role(session, userid=userid, role=role, by="t", now=NOW)
    boss = await load_actor(session, "boss")
    assert boss is not None
    made = {}
    for owner in ("rep1", "rep2"):
        made[owner] = await customers.create_customer(
            session, actor=boss, name=f"{owner}的客户有限公司", now=NOW, owner_id=owner
        )
    return made


async def _scope(session: AsyncSession, userid: str) -> Scope:
    actor = await load_actor(session, userid)
    assert actor is not None
    return Scope(actor, now=NOW)


async def _customer(session: AsyncSession, owner: str) -> Customer:
    found = await session.scalar(select(Customer).where(Customer.owner_id == owner))
    assert found is not None
    return found


async def _open(
    session: AsyncSession, by: str, owner: str, key: str, text: str = "打印机卡纸"
) -> Ticket:
    opened = await tickets.open_ticket(
        session, scope=await _scope(session, by), customer=await _customer(session, owner),
        content=text, priority=Priority.P3, category="故障", attachments=[], source_key=key,
        now=NOW, tz=TZ,
    )  # fmt: skip
    return opened.ticket


async def _to_status(session: AsyncSession, status: TicketStatus, key: str) -> Ticket:
    """A fresh ticket brought to `status` through allowed commands."""
    t = await _open(session, "kf1", "rep1", key)
    kw: dict[str, Any] = {"scope": await _scope(session, "kf1"), "now": NOW, "tz": TZ}
    if status is TicketStatus.IN_PROGRESS:
        await tickets.take(session, ticket_id=t.id, source_key=key + "t", **kw)
    elif status is TicketStatus.WAITING:
        await tickets.wait(session, ticket_id=t.id, source_key=key + "w", **kw)
    elif status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        await tickets.resolve(session, ticket_id=t.id, text="好了", source_key=key + "r", **kw)
        if status is TicketStatus.CLOSED:
            await tickets.close(session, ticket_id=t.id, source_key=key + "c", **kw)
    elif status is TicketStatus.MERGED:
        other = await _open(session, "kf1", "rep1", key + "o")
        await tickets.merge(session, ticket_id=t.id, into_id=other.id, source_key=key + "m", **kw)
    assert t.status == status.value
    return t


async def _do(session: AsyncSession, action: Action, t: Ticket, key: str) -> None:
    kw: dict[str, Any] = {
        "scope": await _scope(session, "kf2"),
        "source_key": key,
        "now": NOW,
        "tz": TZ,
    }
    if action is Action.TAKE:
        await tickets.take(session, ticket_id=t.id, **kw)
    elif action is Action.TRANSFER:
        await tickets.transfer(session, ticket_id=t.id, to_userid="kf3", **kw)
    elif action is Action.NOTE:
        await tickets.note(session, ticket_id=t.id, text="备注", **kw)
    elif action is Action.REPLY:
        await tickets.reply(session, ticket_id=t.id, text="回复", **kw)
    elif action is Action.WAIT:
        await tickets.wait(session, ticket_id=t.id, **kw)
    elif action is Action.RESUME:
        await tickets.resume(session, ticket_id=t.id, **kw)
    elif action is Action.RESOLVE:
        await tickets.resolve(session, ticket_id=t.id, text="处理", **kw)
    elif action is Action.CLOSE:
        await tickets.close(session, ticket_id=t.id, **kw)
    elif action is Action.REOPEN:
        await tickets.reopen(session, ticket_id=t.id, text="又坏了", **kw)
    elif action is Action.PRIORITY:
        await tickets.set_priority(session, ticket_id=t.id, priority=Priority.P1, **kw)
    elif action is Action.MERGE:
        into = await _open(session, "kf1", "rep1", key + "into")
        await tickets.merge(session, ticket_id=t.id, into_id=into.id, **kw)
    elif action is Action.RATE:
        await tickets.rate(session, ticket_id=t.id, score=5, remark="", **kw)


async def _audits(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def test_every_command_from_every_status(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await _org(session)
        for status in TicketStatus:
            for action in Action:
                key = f"{status.value}-{action.value}"
                t = await _to_status(session, status, key)
                audits = int(
                    await session.scalar(select(func.count()).select_from(AuditEntry)) or 0
                )
                if status in ALLOWED[action]:
                    await _do(session, action, t, key + "-do")
                    assert (t.status, action) != (status.value, Action.WAIT)
                else:
                    with pytest.raises(Refused) as refused:
                        await _do(session, action, t, key + "-do")
                    assert refused.value.reason == "status"
                    assert t.status == status.value
                    after = await _audits(session)
                    extra = 1 if action is Action.MERGE else 0  # the target ticket it opened
                    assert after == audits + extra, key


async def test_a_retried_command_writes_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await _org(session)
        t = await _open(session, "kf1", "rep1", "k1")
        again = await _open(session, "kf1", "rep1", "k1")
        assert again.id == t.id
        kw: dict[str, Any] = {"scope": await _scope(session, "kf1"), "now": NOW, "tz": TZ}
        first = await tickets.note(session, ticket_id=t.id, text="x", source_key="n1", **kw)
        second = await tickets.note(session, ticket_id=t.id, text="x", source_key="n1", **kw)
        assert first.written and not second.written
        assert len(await tickets.events_of(session, t.id)) == 2


async def test_a_rep_sees_tickets_of_own_customers_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await _org(session)
        mine = await _open(session, "kf1", "rep1", "a")
        theirs = await _open(session, "kf1", "rep2", "b")
        rep1 = await _scope(session, "rep1")
        assert await tickets.get_visible(session, rep1, mine.id) is not None
        assert await tickets.get_visible(session, rep1, theirs.id) is None
        with pytest.raises(Refused) as refused:
            await tickets.note(
                session, scope=rep1, ticket_id=theirs.id, text="x", source_key="c", now=NOW, tz=TZ
            )
        assert refused.value.reason == "not_found"
        kf = await _scope(session, "kf3")
        assert await tickets.get_visible(session, kf, theirs.id) is not None


async def test_round_robin_is_fair_and_skips_inactive_and_capped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await _org(session)
        await tickets.set_rules(session, rules=ServiceRules(cap=4), by="boss", now=NOW)
        picked = [(await _open(session, "rep1", "rep1", f"rr{i}")).assignee_id for i in range(9)]
        assert Counter(picked) == {"kf1": 3, "kf2": 3, "kf3": 3}
        assert picked[:3] == ["kf1", "kf2", "kf3"]
        leaver = await session.get(Staff, "kf2")
        assert leaver is not None
        leaver.active = False  # left the company
        more = [(await _open(session, "rep1", "rep1", f"rs{i}")).assignee_id for i in range(3)]
        assert "kf2" not in more and Counter(more) == {"kf1": 1, "kf3": 1, None: 1}
        # kf1 and kf3 are at their cap of 4: the third waits unassigned in the queue


async def test_opener_and_queue_rules(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await _org(session)
        await tickets.set_rules(
            session, rules=ServiceRules(assignment="opener"), by="boss", now=NOW
        )
        assert (await _open(session, "kf2", "rep1", "o1")).assignee_id == "kf2"
        rules = ServiceRules(assignment="queue", queue_owner="kf3")
        await tickets.set_rules(session, rules=rules, by="boss", now=NOW)
        assert (await _open(session, "kf2", "rep1", "o2")).assignee_id == "kf3"
        with pytest.raises(ValueError):
            await tickets.set_rules(
                session, rules=ServiceRules(assignment="queue"), by="b", now=NOW
            )


async def test_sla_notices_once_each_even_when_run_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from handlers.service.jobs import sla_notices

    async with sessions.begin() as session:
        await _org(session)
        t = await _open(session, "kf1", "rep1", "s1")  # P3: first response 1 business day
        assert t.assignee_id is not None
    warn_at = NOW + timedelta(hours=7, minutes=13)  # 80 % of 9 business hours from 10:00
    async with sessions() as session:
        assert await sla_notices(session, now=warn_at - timedelta(minutes=2), tz=TZ) == []
        first = await sla_notices(session, now=warn_at, tz=TZ)
        second = await sla_notices(session, now=warn_at + timedelta(minutes=1), tz=TZ)
    assert [s.key for s in first] == [s.key for s in second]
    assert [s.key.split(":")[2:4] for s in first] == [["first_response", "warn"]]
    async with sessions() as session:
        due = await sla.due_notices(session, now=NOW + timedelta(days=1, hours=1), since=NOW)
    assert {(d.target, d.kind) for d in due} == {("first_response", "breach")}
