"""Deals from chat: stages by name or synonym, lost needs a reason, retries move nothing twice."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import customers, deals, staff
from crm_store.clock import FakeClock
from crm_store.deals import MoveOutcome, StageMove
from crm_store.models import AuditEntry, Opportunity, OpportunityStageHistory
from crm_store.scope import Scope, load_actor, load_scope

# userid: (name, department, role)
PEOPLE = {
    "zhangsan": ("张三", 1, "rep"),
    "lisi": ("李四", 1, "rep"),
    "zhoujiu": ("周九", 2, "service"),
}
CUSTOMERS = (
    ("zhangsan", "上海张记贸易有限公司"),
    ("lisi", "北京李氏科技有限公司"),
    ("zhoujiu", "周到服务有限公司"),
)
KNOWN = ["初步接洽", "需求确认", "方案报价", "谈判审核", "赢单", "输单"]


@dataclass
class Shop:
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    customer: dict[str, int]  # by owner

    async def scope(self, session: AsyncSession, userid: str) -> Scope:
        scope = await load_scope(session, userid, now=self.clock.now())
        assert scope is not None
        return scope

    async def create(
        self,
        userid: str,
        key: str,
        *,
        title: str = "ERP 项目",
        amount: Decimal | None = Decimal("500000"),
        stage: str | None = None,
        customer_of: str | None = None,
    ) -> tuple[Opportunity, bool]:
        async with self.sessions.begin() as session:
            return await deals.create_opportunity(
                session,
                scope=await self.scope(session, userid),
                customer_id=self.customer[customer_of or userid],
                title=title,
                amount=amount,
                source_key=key,
                now=self.clock.now(),
                stage=stage,
            )

    async def move(
        self,
        userid: str,
        opportunity_id: int,
        stage_text: str,
        key: str,
        lost_reason: str | None = None,
    ) -> StageMove:
        async with self.sessions.begin() as session:
            return await deals.move_stage(
                session,
                scope=await self.scope(session, userid),
                opportunity_id=opportunity_id,
                stage_text=stage_text,
                source_key=key,
                now=self.clock.now(),
                lost_reason=lost_reason,
            )


@pytest.fixture
async def shop(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> Shop:
    now = clock.now()
    ids: dict[str, int] = {}
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
        for owner, name in CUSTOMERS:
            actor = await load_actor(session, owner)
            assert actor is not None
            customer = await customers.create_customer(session, actor=actor, name=name, now=now)
            ids[owner] = customer.id
    return Shop(sessions=sessions, clock=clock, customer=ids)


async def _count(session: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(model).where(*where)
    return int(await session.scalar(query) or 0)


async def test_create_starts_at_the_first_stage_once_per_message(shop: Shop) -> None:
    deal, created = await shop.create("zhangsan", "m1", amount=Decimal("1.2e5"))
    again, created_again = await shop.create("zhangsan", "m1", title="别的标题")
    assert created and not created_again and again.id == deal.id
    assert (deal.stage, deal.probability, deal.state, deal.owner_id) == (
        "初步接洽",
        10,
        "open",
        "zhangsan",
    )
    assert deal.amount == Decimal("120000.00")
    async with shop.sessions() as session:
        assert await _count(session, Opportunity) == 1
        history = list(await session.scalars(select(OpportunityStageHistory)))
        assert [(h.from_stage, h.to_stage, h.source_key) for h in history] == [
            (None, "初步接洽", "m1")
        ]
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.source_key == "m1"))
        )
        assert [(e.action, e.entity_id) for e in entries] == [("opportunity.create", str(deal.id))]
        assert entries[0].after is not None and entries[0].after["amount"] == "120000.00"


async def test_create_at_a_named_stage_refuses_unknown_stages_and_foreign_customers(
    shop: Shop,
) -> None:
    deal, _ = await shop.create("zhangsan", "m1", stage="报价", amount=None)
    assert (deal.stage, deal.probability, deal.amount) == ("方案报价", 50, None)
    with pytest.raises(deals.UnknownStage) as unknown:
        await shop.create("zhangsan", "m2", stage="看缘分")
    assert unknown.value.known == KNOWN
    with pytest.raises(customers.NotAllowed):
        await shop.create("zhangsan", "m3", customer_of="lisi")
    # Service reads every card but adds deals only to its own customers.
    with pytest.raises(customers.NotAllowed):
        await shop.create("zhoujiu", "m4", customer_of="zhangsan")
    async with shop.sessions() as session:
        assert await _count(session, Opportunity) == 1
        assert await _count(session, AuditEntry, AuditEntry.action == "opportunity.create") == 1


async def test_synonyms_move_stages_and_signing_wins_the_deal(shop: Shop) -> None:
    deal, _ = await shop.create("zhangsan", "m1")
    shop.clock.advance(days=1)
    quoted = await shop.move("zhangsan", deal.id, "报价", "m2")
    assert (quoted.outcome, quoted.from_stage, quoted.to_stage) == (
        MoveOutcome.MOVED,
        "初步接洽",
        "方案报价",
    )
    assert quoted.opportunity is not None and quoted.opportunity.probability == 50
    won = await shop.move("zhangsan", deal.id, "签了", "m3")
    assert won.outcome is MoveOutcome.MOVED and won.to_stage == "赢单"
    assert won.opportunity is not None
    assert (won.opportunity.stage, won.opportunity.state, won.opportunity.probability) == (
        "赢单",
        "won",
        100,
    )
    async with shop.sessions() as session:
        history = list(
            await session.scalars(
                select(OpportunityStageHistory).order_by(OpportunityStageHistory.id)
            )
        )
        assert [(h.from_stage, h.to_stage, h.by_id, h.source_key) for h in history] == [
            (None, "初步接洽", "zhangsan", "m1"),
            ("初步接洽", "方案报价", "zhangsan", "m2"),
            ("方案报价", "赢单", "zhangsan", "m3"),
        ]
        assert history[-1].at == shop.clock.now()
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.source_key == "m3"))
        assert entry is not None and entry.action == "opportunity.stage"
        assert entry.before == {
            "stage": "方案报价",
            "probability": 50,
            "state": "open",
            "lost_reason": None,
        }
        assert entry.after == {
            "stage": "赢单",
            "probability": 100,
            "state": "won",
            "lost_reason": None,
        }


async def test_a_retried_move_changes_nothing(shop: Shop) -> None:
    deal, _ = await shop.create("zhangsan", "m1")
    await shop.move("zhangsan", deal.id, "需求", "m2")
    await shop.move("zhangsan", deal.id, "谈判", "m3")
    retried = await shop.move("zhangsan", deal.id, "需求", "m2")
    assert (retried.outcome, retried.from_stage, retried.to_stage) == (
        MoveOutcome.ALREADY_DONE,
        "初步接洽",
        "需求确认",
    )
    assert retried.opportunity is not None and retried.opportunity.stage == "谈判审核"
    async with shop.sessions() as session:
        assert await _count(session, OpportunityStageHistory) == 3
        assert await _count(session, AuditEntry, AuditEntry.action == "opportunity.stage") == 2


async def test_losing_needs_a_reason(shop: Shop) -> None:
    deal, _ = await shop.create("zhangsan", "m1")
    asked = await shop.move("zhangsan", deal.id, "丢了", "m2", lost_reason="  ")
    assert (asked.outcome, asked.from_stage, asked.to_stage) == (
        MoveOutcome.NEEDS_LOST_REASON,
        "初步接洽",
        "输单",
    )
    async with shop.sessions() as session:
        assert await _count(session, OpportunityStageHistory) == 1
        assert (await session.get_one(Opportunity, deal.id)).state == "open"
    lost = await shop.move("zhangsan", deal.id, "丢了", "m3", lost_reason="价格太高")
    assert lost.outcome is MoveOutcome.MOVED and lost.opportunity is not None
    assert (lost.opportunity.stage, lost.opportunity.state, lost.opportunity.probability) == (
        "输单",
        "lost",
        0,
    )
    async with shop.sessions() as session:
        assert (await session.get_one(Opportunity, deal.id)).lost_reason == "价格太高"


async def test_refusals_write_nothing_and_unknown_stages_list_the_known(shop: Shop) -> None:
    deal, _ = await shop.create("zhangsan", "m1")
    unknown = await shop.move("zhangsan", deal.id, "看缘分", "m2")
    assert (unknown.outcome, unknown.from_stage, unknown.to_stage) == (
        MoveOutcome.UNKNOWN_STAGE,
        "初步接洽",
        None,
    )
    assert unknown.known_stages == KNOWN
    same = await shop.move("zhangsan", deal.id, "接洽", "m3")
    assert same.outcome is MoveOutcome.SAME_STAGE
    # A colleague's deal is invisible to a rep: it looks missing, not forbidden.
    hidden = await shop.move("lisi", deal.id, "赢单", "m4")
    assert (hidden.outcome, hidden.opportunity) == (MoveOutcome.NOT_FOUND, None)
    assert (await shop.move("zhangsan", deal.id + 100, "赢单", "m5")).outcome is (
        MoveOutcome.NOT_FOUND
    )
    # Service sees the row (without its amount) but may not move it.
    refused = await shop.move("zhoujiu", deal.id, "赢单", "m6")
    assert refused.outcome is MoveOutcome.NOT_ALLOWED
    assert refused.opportunity is not None and refused.opportunity.amount is None
    async with shop.sessions() as session:
        assert await _count(session, OpportunityStageHistory) == 1
        assert await _count(session, AuditEntry, AuditEntry.action == "opportunity.stage") == 0
        assert (await session.get_one(Opportunity, deal.id)).stage == "初步接洽"


async def test_service_sees_deals_but_only_its_own_amounts(shop: Shop) -> None:
    zhang, _ = await shop.create("zhangsan", "m1", amount=Decimal("100"))
    await shop.create("zhangsan", "m2", title="二期", amount=Decimal("20"), stage="报价")
    await shop.create("zhoujiu", "m3", title="维保合同", amount=Decimal("3"), stage="报价")
    await shop.create("zhangsan", "m4", title="已签", amount=Decimal("7000"), stage="赢单")
    async with shop.sessions() as session:
        service = await shop.scope(session, "zhoujiu")
        views = await deals.open_opportunities(
            session, scope=service, customer_id=shop.customer["zhangsan"]
        )
        assert [(v.title, v.amount, v.owner_id) for v in views] == [
            ("二期", None, "zhangsan"),
            ("ERP 项目", None, "zhangsan"),
        ]
        assert views[1].id == zhang.id and views[1].customer_name == "上海张记贸易有限公司"
        assert await deals.pipeline_summary(session, scope=service) == [
            ("初步接洽", 1, Decimal("0.00")),
            ("需求确认", 0, Decimal("0.00")),
            ("方案报价", 2, Decimal("3.00")),
            ("谈判审核", 0, Decimal("0.00")),
        ]
        owner = await shop.scope(session, "zhangsan")
        assert [
            v.amount
            for v in await deals.open_opportunities(
                session, scope=owner, customer_id=shop.customer["zhangsan"]
            )
        ] == [Decimal("20.00"), Decimal("100.00")]
        assert await deals.pipeline_summary(session, scope=owner) == [
            ("初步接洽", 1, Decimal("100.00")),
            ("需求确认", 0, Decimal("0.00")),
            ("方案报价", 1, Decimal("20.00")),
            ("谈判审核", 0, Decimal("0.00")),
        ]
        # 李四 sees none of 张三's deals, so neither their count nor their money.
        colleague = await shop.scope(session, "lisi")
        assert all(
            count == 0 for _, count, _ in await deals.pipeline_summary(session, scope=colleague)
        )


async def test_find_opportunities_by_title_or_customer_name_within_scope(shop: Shop) -> None:
    await shop.create("zhangsan", "m1", title="ERP 项目")
    crm, _ = await shop.create("zhangsan", "m2", title="CRM 升级")
    await shop.create("zhangsan", "m3", title="ERP 二期", stage="谈判")
    lost = await shop.move("zhangsan", crm.id, "输单", "m4", lost_reason="预算取消")
    assert lost.outcome is MoveOutcome.MOVED
    await shop.create("lisi", "m5", title="ERP 实施")
    async with shop.sessions() as session:
        zhang = await shop.scope(session, "zhangsan")
        by_title = await deals.find_opportunities(session, scope=zhang, text="erp")
        assert sorted(v.title for v in by_title) == ["ERP 二期", "ERP 项目"]
        by_customer = await deals.find_opportunities(session, scope=zhang, text="张记")
        assert sorted(v.title for v in by_customer) == ["ERP 二期", "ERP 项目"]
        assert await deals.find_opportunities(session, scope=zhang, text="CRM") == []
        assert await deals.find_opportunities(session, scope=zhang, text="  ") == []
        assert await deals.find_opportunities(session, scope=zhang, text="100%") == []
        # Service finds every open deal, amounts hidden.
        service = await shop.scope(session, "zhoujiu")
        found = await deals.find_opportunities(session, scope=service, text="ERP", limit=2)
        assert len(found) == 2 and all(v.amount is None for v in found)
