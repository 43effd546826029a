"""Digest numbers against a hand-computed fixture, on SQLite and PostgreSQL, scope included.

On top of the shared org (tests/store/conftest.py; every customer and its open deal created at
the clock's now, 2026-11-20 18:00 in Shanghai), the day 2026-11-20 gets:
- 赵六 moves 杭州赵氏's deal 方案报价 → 谈判审核; 张三 wins 已签项目 (100000) from 方案报价;
- 李家电器 heard nothing for 40 days (silent), 钱塘江's deal was due to close yesterday;
- 张记's ticket opened 2 h ago, answered after 30 minutes, resolved, rated 4;
- 钱塘江's ticket is open past its deadline, its first-response clock ran out 10 minutes ago;
- on the day before, 赵六 logged one follow-up and nothing else happened.
Amounts are powers of two per customer (AMOUNTS), so a sum names the deals it counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_store import kpi
from crm_store.models import Followup, Opportunity, Ticket
from crm_store.models.customer import Customer
from crm_store.models.sales import OpportunityStageHistory
from crm_store.models.service import TicketSla
from tests.store.conftest import AMOUNTS, Org

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 20)
D = Decimal


async def _prepare(org: Org) -> None:
    now = org.clock.now()
    async with org.sessions.begin() as session:

        async def deal_of(key: str) -> Opportunity:
            found = await session.scalar(
                select(Opportunity).where(
                    Opportunity.customer_id == org.ids[key], Opportunity.state == "open"
                )
            )
            assert found is not None
            return found

        zhao = await deal_of("c_zhao")
        zhao.stage = "谈判审核"
        won = await session.scalar(select(Opportunity).where(Opportunity.title == "已签项目"))
        assert won is not None
        session.add_all(
            [
                OpportunityStageHistory(
                    opportunity_id=zhao.id,
                    from_stage="方案报价",
                    to_stage="谈判审核",
                    by_id="zhaoliu",
                    at=now - timedelta(hours=1),
                ),
                OpportunityStageHistory(
                    opportunity_id=won.id,
                    from_stage="方案报价",
                    to_stage="赢单",
                    by_id="zhangsan",
                    at=now - timedelta(hours=2),
                ),
                Followup(
                    customer_id=org.ids["c_zhao"],
                    author_id="zhaoliu",
                    kind="call",
                    content="昨天的电话",
                    created_at=now - timedelta(days=1),
                ),
            ]
        )
        (await deal_of("c_qian")).expected_close_date = DAY - timedelta(days=1)
        await session.execute(
            update(Customer)
            .where(Customer.id == org.ids["c_li"])
            .values(last_followup_at=now - timedelta(days=40))
        )
        zhang_ticket = await session.get_one(Ticket, org.tickets["t_zhang"])
        zhang_ticket.created_at = now - timedelta(hours=2)
        zhang_ticket.first_response_at = now - timedelta(hours=1, minutes=30)
        zhang_ticket.resolved_at = now - timedelta(minutes=20)
        zhang_ticket.status = "resolved"
        zhang_ticket.satisfaction = 4
        qian_ticket = await session.get_one(Ticket, org.tickets["t_qian"])
        qian_ticket.sla_due_at = now - timedelta(minutes=10)
        session.add(
            TicketSla(
                ticket_id=qian_ticket.id,
                target="first_response",
                state="running",
                budget_seconds=3600,
                due_at=now - timedelta(minutes=10),
                warn_at=now - timedelta(minutes=22),
                started_at=now - timedelta(minutes=70),
            )
        )


async def _digest(org: Org, userid: str, day: date = DAY, **options: Any) -> kpi.Digest:
    async with org.sessions() as session:
        scope = await org.scope(session, userid)
        return await kpi.digest(session, scope, window=kpi.day_window(day, SH), tz=SH, **options)


def _by_user(digest: kpi.Digest) -> dict[str, tuple[int, int, int, int, Decimal]]:
    return {
        r.userid: (r.followups, r.customers_added, r.stage_moves, r.deals_won, r.won_amount)
        for r in digest.team
    }


def _stages(digest: kpi.Digest) -> dict[str, tuple[int, Decimal, int, Decimal]]:
    return {s.stage: (s.count, s.amount, s.count_change, s.amount_change) for s in digest.pipeline}


FANG_AN_GROUP = sum(AMOUNTS[k] for k in ("c_zhang", "c_expired", "c_active", "c_sun", "c_li"))


async def test_a_group_leader_sees_their_group_only(org: Org) -> None:
    await _prepare(org)
    digest = await _digest(org, "lizz")
    assert _by_user(digest) == {
        "lizz": (0, 1, 0, 0, D("0.00")),
        "zhangsan": (1, 2, 1, 1, D("100000.00")),
        "zhaoliu": (0, 2, 1, 0, D("0.00")),
        "sunba": (0, 1, 0, 0, D("0.00")),
    }
    assert _stages(digest) == {
        "方案报价": (5, FANG_AN_GROUP, -2, -(AMOUNTS["c_zhao"] + D(100000))),
        "谈判审核": (1, AMOUNTS["c_zhao"], 1, AMOUNTS["c_zhao"]),
    }
    assert [d.customer_name for d in digest.at_risk] == ["李家电器有限公司"]
    assert digest.at_risk_total == 1 and digest.at_risk[0].silent
    assert not digest.at_risk[0].past_close
    service = digest.service
    assert (service.opened, service.resolved, service.overdue, service.breached) == (1, 1, 0, 0)
    assert service.first_response_minutes == 30
    assert (service.satisfaction, service.rated) == (4, 1)
    assert digest.won_amount == D("100000.00") and digest.followups == 1
    assert not digest.empty and digest.subtree


async def test_the_department_head_sees_both_groups(org: Org) -> None:
    await _prepare(org)
    digest = await _digest(org, "wangjl")
    numbers = _by_user(digest)
    assert set(numbers) == {"wangjl", "lizz", "zhangsan", "zhaoliu", "qianqi", "sunba"}
    assert numbers["qianqi"] == (1, 1, 0, 0, D("0.00"))
    assert numbers["wangjl"] == (0, 1, 0, 0, D("0.00"))
    assert _stages(digest)["方案报价"] == (
        7,
        FANG_AN_GROUP + AMOUNTS["c_qian"] + AMOUNTS["c_wang"],
        -2,
        -(AMOUNTS["c_zhao"] + D(100000)),
    )
    risky = {d.customer_name: (d.silent, d.past_close) for d in digest.at_risk}
    assert risky == {"李家电器有限公司": (True, False), "钱塘江物流股份有限公司": (False, True)}
    # The larger deal first: 钱塘江 (4) is smaller than 李家 (16).
    assert [d.amount for d in digest.at_risk] == [AMOUNTS["c_li"], AMOUNTS["c_qian"]]
    service = digest.service
    assert (service.opened, service.resolved, service.overdue, service.breached) == (2, 1, 1, 1)


async def test_a_rep_gets_their_own_numbers_only(org: Org) -> None:
    await _prepare(org)
    digest = await _digest(org, "zhangsan", own_only=True)
    assert _by_user(digest) == {"zhangsan": (1, 2, 1, 1, D("100000.00"))}
    assert _stages(digest) == {
        "方案报价": (2, AMOUNTS["c_zhang"] + AMOUNTS["c_expired"], -1, D("-100000.00"))
    }
    assert digest.at_risk == () and digest.service.empty and not digest.subtree
    # A rep's own scope without own_only is still only themself (their level is SELF).
    assert set(_by_user(await _digest(org, "zhangsan"))) == {"zhangsan"}


async def test_the_day_before_counts_its_own_window_and_names_the_idle(org: Org) -> None:
    await _prepare(org)
    digest = await _digest(org, "wangjl", day=DAY - timedelta(days=1))
    assert [r.userid for r in digest.team if r.active] == ["zhaoliu"]
    assert {r.userid for r in digest.idle} == {"wangjl", "lizz", "zhangsan", "qianqi", "sunba"}
    assert digest.pipeline and not digest.pipeline_changed  # the pipeline now, unchanged then
    service = digest.service  # overdue is read now; the rest belongs to the window
    assert (service.opened, service.resolved, service.overdue, service.breached) == (0, 0, 1, 0)
    assert not digest.empty  # deals at risk are read now and always worth saying


async def test_nothing_to_say_is_an_empty_digest(org: Org) -> None:
    digest = await _digest(org, "zhaoliu", day=DAY - timedelta(days=3), own_only=True)
    assert digest.empty and digest.idle == digest.team


async def test_week_window_runs_monday_to_sunday_in_the_company_zone() -> None:
    week = kpi.week_window(date(2026, 11, 20), SH)
    assert (week.first_day, week.last_day, week.days) == (
        date(2026, 11, 16),
        date(2026, 11, 22),
        7,
    )
    assert week.start.isoformat() == "2026-11-15T16:00:00+00:00"
    assert week.end - week.start == timedelta(days=7)


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def test_a_digest_costs_a_fixed_number_of_queries(org: Org, engine: AsyncEngine) -> None:
    await _prepare(org)
    counts = []
    for userid, own in (("wangjl", False), ("lizz", False), ("zhangsan", True), ("wushi", False)):
        async with org.sessions() as session:
            scope = await org.scope(session, userid)
            with counting(engine) as statements:
                await kpi.digest(
                    session, scope, window=kpi.day_window(DAY, SH), tz=SH, own_only=own
                )
            counts.append(len(statements))
    # team, stages, activity, pipeline now, moves, at-risk count and rows (+ 3 for tickets)
    assert counts == [10, 10, 7, 10]
