"""Customer writes and the rules around them: 查重, the public pool, handover, shares, settings."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from crm_store import config_data, customers, staff
from crm_store.customers import ClaimOutcome, CustomerOrder, DuplicateHint, DuplicateReason
from crm_store.models import (
    AuditEntry,
    Customer,
    CustomerOwnerHistory,
    CustomerShare,
    Department,
    Lead,
    Opportunity,
    StaffDepartment,
    Task,
)
from crm_store.names import normalize_company_name
from crm_store.scope import Actor, load_actor
from tests.store.conftest import AMOUNTS, CUSTOMERS, Org

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _actor(org: Org, userid: str) -> Actor:
    async with org.sessions() as session:
        actor = await load_actor(session, userid)
    assert actor is not None
    return actor


# 查重 -----------------------------------------------------------------------------------------


async def test_find_duplicates_reveals_only_id_owner_name_and_reason(org: Org) -> None:
    assert {f.name for f in dataclasses.fields(DuplicateHint)} == {
        "customer_id",
        "owner_name",
        "reason",
    }
    zhang_core = normalize_company_name(CUSTOMERS["c_zhang"][1])
    async with org.sessions() as session:
        # Any rep may ask, whatever their scope: the function takes no scope at all.
        by_name = await customers.find_duplicates(session, name_core=zhang_core, phone=None)
        assert by_name == [DuplicateHint(org.ids["c_zhang"], "张三", DuplicateReason.NAME)]
        zhang = await session.get(Customer, org.ids["c_zhang"])
        assert zhang is not None and zhang.phone is not None
        spaced = f"{zhang.phone[:3]}-{zhang.phone[3:7]} {zhang.phone[7:]}"
        by_phone = await customers.find_duplicates(session, name_core="别的名字", phone=spaced)
        assert by_phone == [DuplicateHint(org.ids["c_zhang"], "张三", DuplicateReason.PHONE)]
        both = await customers.find_duplicates(session, name_core=zhang_core, phone=zhang.phone)
        assert [h.reason for h in both] == [DuplicateReason.NAME_AND_PHONE]
        pool_core = normalize_company_name(CUSTOMERS["c_pool"][1])
        pool = await customers.find_duplicates(session, name_core=pool_core, phone=None)
        assert pool == [DuplicateHint(org.ids["c_pool"], "公海", DuplicateReason.NAME)]
        assert (
            await customers.find_duplicates(
                session, name_core=zhang_core, phone=None, exclude_id=org.ids["c_zhang"]
            )
            == []
        )
        assert await customers.find_duplicates(session, name_core="", phone="  ") == []
        assert await customers.find_duplicates(session, name_core="不存在", phone=None) == []


@pytest.mark.parametrize(
    ("existing", "typed", "reason"),
    [
        ("篮海科技有限公司", "蓝海科技", DuplicateReason.SIMILAR_NAME),  # lán: same sound
        ("ＡＢＣ科技有限公司", "ABC科技", DuplicateReason.NAME),  # full-width folds
        ("蓝 海 科技有限公司", "蓝海科技", DuplicateReason.NAME),  # inner spaces fold
        ("abc Technology Co., Ltd.", "ABC Technology", DuplicateReason.NAME),  # case folds
        ("己方科技有限公司", "已方科技", DuplicateReason.SIMILAR_NAME),  # look-alike
    ],
)
async def test_find_duplicates_catches_variants(
    org: Org, existing: str, typed: str, reason: DuplicateReason
) -> None:
    actor = await _actor(org, "zhangsan")
    async with org.sessions.begin() as session:
        made = await customers.create_customer(
            session, actor=actor, name=existing, now=org.clock.now()
        )
    async with org.sessions() as session:
        hints = await customers.find_duplicates(
            session, name_core=normalize_company_name(typed), phone=None
        )
    assert hints == [DuplicateHint(made.id, "张三", reason)]


@pytest.mark.parametrize(
    ("existing", "typed"),
    [
        ("蓝天科技有限公司", "蓝海科技"),  # one character, but neither sound nor look alike
        ("蓝海科技有限公司", "蓝海"),  # a different length is another name
        ("篮球海洋科技有限公司", "蓝海科技"),
        ("ABD科技有限公司", "ABC科技"),  # latin letters have no homophones
    ],
)
async def test_find_duplicates_leaves_near_but_different_names(
    org: Org, existing: str, typed: str
) -> None:
    actor = await _actor(org, "zhangsan")
    async with org.sessions.begin() as session:
        await customers.create_customer(session, actor=actor, name=existing, now=org.clock.now())
    async with org.sessions() as session:
        core = normalize_company_name(typed)
        assert await customers.find_duplicates(session, name_core=core, phone=None) == []


async def test_exact_duplicates_come_before_variants_within_the_limit(org: Org) -> None:
    actor = await _actor(org, "zhangsan")
    async with org.sessions.begin() as session:
        variant = await customers.create_customer(
            session, actor=actor, name="篮海科技有限公司", now=org.clock.now()
        )
        same = await customers.create_customer(
            session, actor=actor, name="蓝海科技有限公司", now=org.clock.now()
        )
    async with org.sessions() as session:
        hints = await customers.find_duplicates(session, name_core="蓝海科技", phone=None)
        assert [(h.customer_id, h.reason) for h in hints] == [
            (same.id, DuplicateReason.NAME),
            (variant.id, DuplicateReason.SIMILAR_NAME),
        ]
        one = await customers.find_duplicates(session, name_core="蓝海科技", phone=None, limit=1)
        assert [h.customer_id for h in one] == [same.id]


# Creating --------------------------------------------------------------------------------------


async def test_create_customer_is_idempotent_on_the_message_key_and_audited(org: Org) -> None:
    zhangsan = await _actor(org, "zhangsan")
    now = org.clock.now()
    for _ in range(2):
        async with org.sessions.begin() as session:
            created = await customers.create_customer(
                session,
                actor=zhangsan,
                name=" 深圳市腾飞科技有限公司 ",
                phone="139 1234 5678",
                tags=["重点", "重点"],
                now=now,
                source_key="msg-1",
            )
    async with org.sessions() as session:
        rows = list(await session.scalars(select(Customer).where(Customer.source_key == "msg-1")))
        assert [r.id for r in rows] == [created.id]
        row = rows[0]
        assert row.name == "深圳市腾飞科技有限公司"
        assert row.name_core == normalize_company_name("深圳市腾飞科技有限公司")
        assert row.pinyin and row.initials
        assert row.phone == "13912345678"
        assert row.tags == ["重点"]
        assert row.owner_id == "zhangsan" and row.department_id == 3 and not row.in_pool
        audits = list(
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.entity == "customer", AuditEntry.entity_id == str(created.id)
                )
            )
        )
        assert [(a.action, a.actor_id, a.source_key) for a in audits] == [
            ("customer.create", "zhangsan", "msg-1")
        ]
        assert audits[0].before is None and audits[0].after["owner_id"] == "zhangsan"
        history = await session.scalar(
            select(func.count())
            .select_from(CustomerOwnerHistory)
            .where(CustomerOwnerHistory.customer_id == created.id)
        )
        assert history == 1


async def test_create_for_someone_else_needs_them_in_scope(org: Org) -> None:
    zhangsan = await _actor(org, "zhangsan")
    lizz = await _actor(org, "lizz")
    async with org.sessions.begin() as session:
        with pytest.raises(customers.NotAllowed):
            await customers.create_customer(
                session, actor=zhangsan, name="越权公司", owner_id="zhaoliu", now=org.clock.now()
            )
        made = await customers.create_customer(
            session, actor=lizz, name="组长分配公司", owner_id="zhaoliu", now=org.clock.now()
        )
        assert made.owner_id == "zhaoliu"
        pooled = await customers.create_customer(
            session, actor=zhangsan, name="直接进公海公司", in_pool=True, now=org.clock.now()
        )
        assert pooled.owner_id is None and pooled.in_pool
        assert pooled.pool_entered_at == org.clock.now()
        with pytest.raises(ValueError):
            await customers.create_customer(
                session, actor=zhangsan, name="  ", now=org.clock.now()
            )


# Lists -----------------------------------------------------------------------------------------


async def test_list_filters_order_and_pages_within_scope(org: Org) -> None:
    async with org.sessions() as session:
        scope = await org.scope(session, "wangjl")
        own = await customers.list_visible(session, scope, owner_id="zhangsan")
        assert org.keys({c.id for c in own}) == {"c_zhang", "c_expired"}
        assert await customers.count_visible(session, scope, owner_id="zhangsan") == 2
        # An owner outside the scope yields nothing, not their customers.
        assert await customers.list_visible(session, scope, owner_id="wushi") == []
        pool = await customers.list_visible(session, scope, in_pool=True)
        assert org.keys({c.id for c in pool}) == {"c_pool"}
        by_name = await customers.list_visible(session, scope, order=CustomerOrder.NAME, limit=100)
        assert [c.name_core for c in by_name] == sorted(c.name_core for c in by_name)
        first = await customers.list_visible(session, scope, order=CustomerOrder.NAME, limit=4)
        rest = await customers.list_visible(
            session, scope, order=CustomerOrder.NAME, limit=100, offset=4
        )
        assert [c.id for c in first + rest] == [c.id for c in by_name]
        zhangs = await customers.sum_open_amount(session, scope, owner_id="zhangsan")
        assert zhangs == AMOUNTS["c_zhang"] + AMOUNTS["c_expired"]


# The public pool -------------------------------------------------------------------------------


async def _pool(org: Org, count: int) -> list[int]:
    admin = await _actor(org, "wushi")
    async with org.sessions.begin() as session:
        return [
            (
                await customers.create_customer(
                    session, actor=admin, name=f"公海客户{i}号", in_pool=True, now=org.clock.now()
                )
            ).id
            for i in range(count)
        ]


async def _claim(org: Org, userid: str, customer_id: int) -> customers.ClaimResult:
    actor = await _actor(org, userid)
    async with org.sessions.begin() as session:
        return await customers.claim_from_pool(
            session, actor=actor, customer_id=customer_id, now=org.clock.now(), tz=SHANGHAI
        )


async def test_daily_claim_limit_counts_per_local_day(org: Org) -> None:
    async with org.sessions.begin() as session:
        assert await config_data.get_pool_rules(session) == config_data.PoolRules(5, 30)
        await config_data.set_pool_rules(
            session, rules=config_data.PoolRules(2, 30), by="wushi", now=org.clock.now()
        )
    ids = await _pool(org, 4)
    first = await _claim(org, "zhangsan", ids[0])
    assert first.ok and first.claims_today == 1 and first.daily_limit == 2
    assert (await _claim(org, "zhangsan", ids[1])).outcome is ClaimOutcome.CLAIMED
    refused = await _claim(org, "zhangsan", ids[2])
    assert refused.outcome is ClaimOutcome.LIMIT_REACHED and refused.claims_today == 2
    # Another rep has their own allowance.
    assert (await _claim(org, "zhaoliu", ids[2])).ok
    # 10:00 UTC is 18:00 in Shanghai: six hours on is a new day there, not yet in UTC.
    org.clock.advance(hours=6, minutes=1)
    assert (await _claim(org, "zhangsan", ids[3])).ok
    async with org.sessions() as session:
        claimed = await session.get(Customer, ids[0])
        assert claimed is not None
        assert claimed.owner_id == "zhangsan" and not claimed.in_pool
        assert claimed.department_id == 3
        scope = await org.scope(session, "zhangsan")
        assert await customers.get_visible(session, scope, ids[0]) is not None
        # Out of the pool, so 钱七 no longer sees it.
        qianqi = await org.scope(session, "qianqi")
        assert await customers.get_visible(session, qianqi, ids[0]) is None


async def test_previous_owner_waits_out_the_cool_down(org: Org) -> None:
    released_at = org.clock.now()
    async with org.sessions.begin() as session:
        assert await customers.release_to_pool(
            session, customer_id=org.ids["c_zhang"], by="zhangsan", now=released_at
        )
        assert not await customers.release_to_pool(
            session, customer_id=org.ids["c_zhang"], by="zhangsan", now=released_at
        )
        pooled = await session.get(Customer, org.ids["c_zhang"])
        assert pooled is not None and pooled.in_pool and pooled.previous_owner_id == "zhangsan"
    refused = await _claim(org, "zhangsan", org.ids["c_zhang"])
    assert refused.outcome is ClaimOutcome.COOLDOWN
    assert refused.cooldown_until == released_at + timedelta(days=30)
    org.clock.advance(days=29, hours=23)
    assert (await _claim(org, "zhangsan", org.ids["c_zhang"])).outcome is ClaimOutcome.COOLDOWN
    org.clock.advance(hours=1)
    assert (await _claim(org, "zhangsan", org.ids["c_zhang"])).ok


async def test_others_may_claim_at_once_and_only_one_wins(org: Org) -> None:
    async with org.sessions.begin() as session:
        await customers.release_to_pool(
            session, customer_id=org.ids["c_zhang"], by="zhangsan", now=org.clock.now()
        )
    assert (await _claim(org, "qianqi", org.ids["c_zhang"])).ok
    late = await _claim(org, "zhaoliu", org.ids["c_zhang"])
    assert late.outcome is ClaimOutcome.NOT_IN_POOL
    assert (await _claim(org, "zhaoliu", 999_999)).outcome is ClaimOutcome.NOT_FOUND
    assert (await _claim(org, "zhoujiu", org.ids["c_pool"])).outcome is ClaimOutcome.NOT_ALLOWED
    async with org.sessions() as session:
        reasons = list(
            await session.scalars(
                select(CustomerOwnerHistory.reason)
                .where(CustomerOwnerHistory.customer_id == org.ids["c_zhang"])
                .order_by(CustomerOwnerHistory.id)
            )
        )
        assert reasons == ["create", "release", "claim"]


async def test_a_limit_of_zero_turns_claiming_off(org: Org) -> None:
    async with org.sessions.begin() as session:
        await config_data.set_pool_rules(
            session, rules=config_data.PoolRules(0, 30), by="wushi", now=org.clock.now()
        )
        with pytest.raises(config_data.ConfigError):
            await config_data.set_pool_rules(
                session, rules=config_data.PoolRules(-1, 30), by="wushi", now=org.clock.now()
            )
    result = await _claim(org, "zhangsan", org.ids["c_pool"])
    assert result.outcome is ClaimOutcome.LIMIT_REACHED


# Handover --------------------------------------------------------------------------------------


async def test_handover_moves_customers_open_deals_open_tasks_and_leads(org: Org) -> None:
    now = org.clock.now()
    async with org.sessions.begin() as session:
        session.add(
            Task(owner_id="zhangsan", title="已完成", done_at=now, created_at=now),
        )
        await staff.mark_inactive_except(
            session,
            seen_userids={"wangjl", "lizz", "zhaoliu", "qianqi", "sunba", "wushi"},
            now=now,
        )
    async with org.sessions.begin() as session:
        with pytest.raises(ValueError):
            await customers.handover(
                session, from_userid="zhaoliu", to_userid="zhangsan", by="wushi", now=now
            )
        moved = await customers.handover(
            session, from_userid="zhangsan", to_userid="zhaoliu", by="wushi", now=now
        )
        assert moved == 2
    async with org.sessions() as session:
        owners = dict((await session.execute(select(Customer.id, Customer.owner_id))).all())
        assert owners[org.ids["c_zhang"]] == owners[org.ids["c_expired"]] == "zhaoliu"
        deals = (
            await session.execute(
                select(Opportunity.state, Opportunity.owner_id).where(
                    Opportunity.customer_id == org.ids["c_zhang"]
                )
            )
        ).all()
        assert sorted(deals) == [("open", "zhaoliu"), ("won", "zhangsan")]
        tasks = (await session.execute(select(Task.title, Task.owner_id))).all()
        assert ("回电张记", "zhaoliu") in tasks and ("已完成", "zhangsan") in tasks
        lead = await session.get(Lead, org.leads["l_zhang"])
        assert lead is not None and lead.owner_id == "zhaoliu"
        history = (
            await session.execute(
                select(CustomerOwnerHistory.customer_id).where(
                    CustomerOwnerHistory.reason == "handover",
                    CustomerOwnerHistory.from_owner_id == "zhangsan",
                    CustomerOwnerHistory.to_owner_id == "zhaoliu",
                )
            )
        ).scalars()
        assert set(history) == {org.ids["c_zhang"], org.ids["c_expired"]}
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "customer.handover")
        )
        assert audit is not None and audit.after == {
            "owner_id": "zhaoliu",
            "customers": 2,
            "opportunities": 2,
            "tasks": 1,
            "leads": 1,
        }
        zhaoliu = await org.scope(session, "zhaoliu")
        assert org.keys(await customers.visible_ids(session, zhaoliu)) == {
            "c_zhao",
            "c_active",
            "c_zhang",
            "c_expired",
            "c_pool",
        }


# Shares ----------------------------------------------------------------------------------------


async def test_sharing_again_updates_and_revoking_hides_at_once(org: Org) -> None:
    now = org.clock.now()
    async with org.sessions.begin() as session:
        await customers.share(
            session,
            customer_id=org.ids["c_zhang"],
            userid="sunba",
            access="read",
            until=None,
            by="zhangsan",
            now=now,
        )
        await customers.share(
            session,
            customer_id=org.ids["c_zhang"],
            userid="sunba",
            access="write",
            until=None,
            by="zhangsan",
            now=now,
        )
    async with org.sessions() as session:
        shares = list(
            await session.scalars(
                select(CustomerShare).where(CustomerShare.customer_id == org.ids["c_zhang"])
            )
        )
        assert [(s.userid, s.access, s.until) for s in shares] == [("sunba", "write", None)]
        sunba = await org.scope(session, "sunba")
        assert await customers.get_visible(session, sunba, org.ids["c_zhang"]) is not None
        assert await customers.is_writable(session, sunba, org.ids["c_zhang"])
    async with org.sessions.begin() as session:
        assert await customers.revoke_share(
            session, customer_id=org.ids["c_zhang"], userid="sunba", by="zhangsan", now=now
        )
        assert not await customers.revoke_share(
            session, customer_id=org.ids["c_zhang"], userid="sunba", by="zhangsan", now=now
        )
    async with org.sessions() as session:
        sunba = await org.scope(session, "sunba")
        assert await customers.get_visible(session, sunba, org.ids["c_zhang"]) is None
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.entity == "customer",
                    AuditEntry.entity_id == str(org.ids["c_zhang"]),
                )
                .order_by(AuditEntry.id)
            )
        )
        assert actions == [
            "customer.create",
            "customer.share",
            "customer.share",
            "customer.unshare",
        ]


# Directory -------------------------------------------------------------------------------------


async def test_directory_upserts_audit_only_real_changes(org: Org) -> None:
    now = org.clock.now()

    async def staff_audits() -> int:
        async with org.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(AuditEntry)
                    .where(AuditEntry.entity == "staff", AuditEntry.entity_id == "sunba")
                )
                or 0
            )

    before = await staff_audits()
    async with org.sessions.begin() as session:
        await staff.upsert_staff(
            session,
            userid="sunba",
            name="孙八",
            department_ids=[4, 3],
            main_department_id=4,
            direct_leaders=["qianqi"],
            now=now,
        )
    assert await staff_audits() == before
    async with org.sessions.begin() as session:
        # A department the sync has not seen yet gets a placeholder, so the membership holds.
        person = await staff.upsert_staff(
            session,
            userid="sunba",
            name="孙八",
            department_ids=[4, 99],
            main_department_id=99,
            leader_in=[99],
            direct_leaders=["qianqi"],
            position="主管",
            now=now,
        )
        assert person.role == "rep"
    assert await staff_audits() == before + 1
    async with org.sessions() as session:
        placeholder = await session.get(Department, 99)
        assert placeholder is not None and placeholder.name == "部门99"
        rows = (
            await session.execute(
                select(StaffDepartment.department_id, StaffDepartment.is_leader)
                .where(StaffDepartment.userid == "sunba")
                .order_by(StaffDepartment.department_id)
            )
        ).all()
        assert [tuple(r) for r in rows] == [(4, False), (99, True)]
        loaded = await staff.get_staff(session, "sunba")
        assert loaded is not None and {m.department_id for m in loaded.memberships} == {4, 99}


async def test_new_people_get_the_configured_default_role(org: Org) -> None:
    now = org.clock.now()
    async with org.sessions.begin() as session:
        await config_data.set_default_role(session, role="service", by="wushi", now=now)
        with pytest.raises(config_data.ConfigError):
            await config_data.set_default_role(session, role="boss", by="wushi", now=now)
        newcomer = await staff.upsert_staff(
            session, userid="new1", name="新人", department_ids=[5], now=now
        )
        assert newcomer.role == "service"
        with pytest.raises(ValueError):
            await staff.set_role(session, userid="new1", role="boss", by="wushi", now=now)
        assert (
            await staff.set_role(session, userid="ghost", role="rep", by="wushi", now=now) is None
        )


# Settings data ---------------------------------------------------------------------------------


async def test_settings_defaults_and_setters(org: Org) -> None:
    now = org.clock.now()
    async with org.sessions.begin() as session:
        stages = await config_data.get_stages(session)
        assert [(s.name, s.probability) for s in stages] == [
            ("初步接洽", 10),
            ("需求确认", 30),
            ("方案报价", 50),
            ("谈判审核", 70),
            ("赢单", 100),
            ("输单", 0),
        ]
        for word in ("赢单", "成交", "签了", "签约"):
            assert getattr(config_data.resolve_stage(stages, word), "name", None) == "赢单"
        for word in ("输单", "丢了", "丢单", "失败"):
            assert getattr(config_data.resolve_stage(stages, word), "name", None) == "输单"
        assert config_data.resolve_stage(stages, "不知道") is None
        assert await config_data.get_ticket_categories(session) == [
            "咨询",
            "投诉",
            "故障",
            "退换货",
            "其他",
        ]
        kinds = await config_data.get_followup_kinds(session)
        assert [k.code for k in kinds] == ["call", "visit", "wechat", "meeting", "other"]
        assert getattr(config_data.resolve_followup_kind(kinds, "打电话"), "code", None) == "call"
        assert await config_data.get_default_role(session) == "rep"

        await config_data.set_ticket_categories(
            session, categories=["咨询", "投诉"], by="wushi", now=now, source_key="m-9"
        )
        custom = [
            config_data.Stage("接触", 20),
            config_data.Stage("成交", 100, config_data.OpportunityState.WON, ("签了",)),
            config_data.Stage("流失", 0, config_data.OpportunityState.LOST),
        ]
        await config_data.set_stages(session, stages=custom, by="wushi", now=now)
        for bad in (
            custom[:2],  # no lost stage
            [*custom, config_data.Stage("签了", 90)],  # one word, two stages
            [config_data.Stage("x", 120), *custom[1:]],
        ):
            with pytest.raises(config_data.ConfigError):
                await config_data.set_stages(session, stages=bad, by="wushi", now=now)
        with pytest.raises(config_data.ConfigError):
            await config_data.set_ticket_categories(
                session, categories=["咨询", "很长" * 17], by="wushi", now=now
            )
        with pytest.raises(config_data.ConfigError):
            await config_data.set_ticket_categories(
                session, categories=["咨询", "咨询"], by="wushi", now=now
            )
    async with org.sessions() as session:
        assert await config_data.get_ticket_categories(session) == ["咨询", "投诉"]
        assert await config_data.get_stages(session) == custom
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.entity_id == "ticket_categories")
        )
        assert audit is not None and audit.source_key == "m-9"
        assert audit.before is None and audit.after == {"value": ["咨询", "投诉"]}
