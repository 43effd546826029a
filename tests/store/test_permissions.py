"""The permission matrix: for each person, level and record, may see / may not see.

Every check goes through the four doors a leak could use: a direct read, a list, the id set the
search index filters by, and the aggregates.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_store import config_data, customers, staff
from crm_store.config_data import LEADER
from crm_store.models import (
    Contact,
    Customer,
    Followup,
    Lead,
    Opportunity,
    ScopeLevel,
    Task,
    Ticket,
)
from crm_store.scope import load_actor
from tests.store.conftest import ALL_CUSTOMERS, AMOUNTS, PEOPLE, Org

SALES_ONE = {"c_li", "c_zhang", "c_expired", "c_zhao", "c_active", "c_sun"}
SALES_TREE = SALES_ONE | {"c_qian", "c_wang"}

DEFAULT_VISIBLE: dict[str, set[str]] = {
    "zhangsan": {"c_zhang", "c_expired", "c_pool"},
    "zhaoliu": {"c_zhao", "c_active", "c_pool"},
    # c_active is shared with 钱七 until next week; c_expired's share ended yesterday.
    "qianqi": {"c_qian", "c_active", "c_pool"},
    "sunba": {"c_sun", "c_pool"},
    # A rep who leads 销售一组 sees the group, 孙八 included (he is in both groups).
    "lizz": SALES_ONE | {"c_pool"},
    "wangjl": SALES_TREE | {"c_pool"},
    "zhoujiu": set(ALL_CUSTOMERS),
    "wushi": set(ALL_CUSTOMERS),
}


def _amount(keys: set[str]) -> Decimal:
    return sum((AMOUNTS[k] for k in keys if k in AMOUNTS), Decimal(0)).quantize(Decimal("0.01"))


async def _assert_sees(org: Org, userid: str, expected: set[str], amount_keys: set[str]) -> None:
    async with org.sessions() as session:
        scope = await org.scope(session, userid)
        for key, customer_id in org.ids.items():
            found = await customers.get_visible(session, scope, customer_id)
            assert (found is not None) == (key in expected), (userid, key)
        listed = await customers.list_visible(session, scope, limit=100)
        assert org.keys({c.id for c in listed}) == expected, userid
        assert org.keys(await customers.visible_ids(session, scope)) == expected, userid
        assert await customers.count_visible(session, scope) == len(expected), userid
        assert await customers.sum_open_amount(session, scope) == _amount(amount_keys), userid


@pytest.mark.parametrize("userid", sorted(DEFAULT_VISIBLE))
async def test_default_scopes(org: Org, userid: str) -> None:
    expected = DEFAULT_VISIBLE[userid]
    # Service reads every card but sums only its own deals.
    amounts = {"c_zhou"} if userid == "zhoujiu" else expected
    await _assert_sees(org, userid, expected, amounts)


async def _set_level(
    org: Org, role: str, level: ScopeLevel, departments: tuple[int, ...] = ()
) -> None:
    async with org.sessions.begin() as session:
        await config_data.set_role_scope(
            session,
            role=role,
            level=level,
            department_ids=departments,
            by="wushi",
            now=org.clock.now(),
        )


LEVEL_MATRIX: list[tuple[str, ScopeLevel, tuple[int, ...], set[str]]] = [
    ("sunba", ScopeLevel.SELF, (), {"c_sun"}),
    ("sunba", ScopeLevel.SELF_AND_SUBORDINATES, (), {"c_sun"}),
    # In two departments: both count.
    ("sunba", ScopeLevel.DEPARTMENT, (), SALES_ONE | {"c_qian"}),
    ("sunba", ScopeLevel.DEPARTMENT_TREE, (), SALES_ONE | {"c_qian"}),
    ("sunba", ScopeLevel.CUSTOM, (5,), {"c_sun", "c_zhou"}),
    ("sunba", ScopeLevel.ALL, (), set(ALL_CUSTOMERS) - {"c_pool"}),
    ("qianqi", ScopeLevel.SELF, (), {"c_qian", "c_active"}),
    ("qianqi", ScopeLevel.SELF_AND_SUBORDINATES, (), {"c_qian", "c_active", "c_sun"}),
    ("qianqi", ScopeLevel.DEPARTMENT, (), {"c_qian", "c_active", "c_sun"}),
    ("qianqi", ScopeLevel.DEPARTMENT_TREE, (), {"c_qian", "c_active", "c_sun"}),
    ("qianqi", ScopeLevel.CUSTOM, (3,), SALES_ONE | {"c_qian"}),
    # A custom department brings its subtree.
    ("zhangsan", ScopeLevel.CUSTOM, (2,), SALES_TREE),
    ("zhangsan", ScopeLevel.ALL, (), set(ALL_CUSTOMERS) - {"c_pool"}),
]


@pytest.mark.parametrize(
    ("userid", "level", "departments", "owned"),
    LEVEL_MATRIX,
    ids=[f"{u}-{level.value}" for u, level, _, _ in LEVEL_MATRIX],
)
async def test_each_level_for_reps(
    org: Org, userid: str, level: ScopeLevel, departments: tuple[int, ...], owned: set[str]
) -> None:
    await _set_level(org, "rep", level, departments)
    async with org.sessions() as session:
        actor = await load_actor(session, userid)
        assert actor is not None and actor.level is level
    await _assert_sees(org, userid, owned | {"c_pool"}, owned)


async def test_department_differs_from_department_tree(org: Org) -> None:
    await _set_level(org, "manager", ScopeLevel.DEPARTMENT)
    await _set_level(org, LEADER, ScopeLevel.DEPARTMENT)
    # 销售部 itself has only 王经理 in it; the groups are below it.
    await _assert_sees(org, "wangjl", {"c_wang", "c_pool"}, {"c_wang"})
    await _set_level(org, "manager", ScopeLevel.DEPARTMENT_TREE)
    await _assert_sees(org, "wangjl", SALES_TREE | {"c_pool"}, SALES_TREE)


async def test_subordinates_are_followed_down_the_whole_chain(org: Org) -> None:
    await _set_level(org, "manager", ScopeLevel.SELF_AND_SUBORDINATES)
    await _set_level(org, LEADER, ScopeLevel.SELF)
    # 张三 reports to 李组长 who reports to 王经理; 孙八 reports to 钱七.
    await _assert_sees(org, "wangjl", SALES_TREE | {"c_pool"}, SALES_TREE)


async def test_service_sees_cards_contacts_tickets_but_not_others_amounts(org: Org) -> None:
    async with org.sessions() as session:
        scope = await org.scope(session, "zhoujiu")
        assert scope.actor.is_service
        tickets = set(await session.scalars(select(Ticket.id).where(scope.tickets())))
        assert tickets == set(org.tickets.values())
        contacts = set(await session.scalars(select(Contact.id).where(scope.contacts())))
        assert contacts == set(org.contacts.values())
        followups = set(await session.scalars(select(Followup.id).where(scope.followups())))
        assert followups == set(org.followups.values())
        rows = (
            await session.execute(
                select(Opportunity.owner_id, scope.amount_column()).where(
                    scope.opportunities(), Opportunity.state == "open"
                )
            )
        ).all()
        assert len(rows) == len(AMOUNTS)
        shown = {owner: amount for owner, amount in rows}
        assert shown["zhoujiu"] == AMOUNTS["c_zhou"]
        assert all(amount is None for owner, amount in shown.items() if owner != "zhoujiu")
        assert scope.can_see_amount("zhoujiu") and not scope.can_see_amount("zhangsan")
        assert await customers.sum_open_amount(session, scope) == AMOUNTS["c_zhou"]
        # Reading every card is not writing it.
        assert not await customers.is_writable(session, scope, org.ids["c_zhang"])
        assert await customers.is_writable(session, scope, org.ids["c_zhou"])


async def test_reps_see_amounts_of_what_they_see(org: Org) -> None:
    async with org.sessions() as session:
        scope = await org.scope(session, "lizz")
        assert scope.can_see_amount("zhangsan")
        rows = (
            await session.execute(
                select(Opportunity.owner_id, scope.amount_column()).where(scope.opportunities())
            )
        ).all()
        assert {owner for owner, _ in rows} == {"lizz", "zhangsan", "zhaoliu", "sunba"}
        assert all(amount is not None for _, amount in rows)


CHILDREN: dict[str, dict[str, set[str]]] = {
    # userid: {kind: visible keys}
    "zhangsan": {
        "tickets": {"t_zhang"},
        "followups": {"f_zhang"},
        "tasks": {"k_zhang"},
        "leads": {"l_zhang", "l_pool"},
        "contacts": {"p_zhang"},
    },
    "qianqi": {
        "tickets": {"t_qian"},
        "followups": {"f_qian"},
        "tasks": {"k_qian"},
        "leads": {"l_pool"},
        "contacts": {"p_qian"},
    },
    "sunba": {"tickets": set(), "followups": set(), "tasks": set(), "leads": {"l_pool"}},
    "lizz": {
        "tickets": {"t_zhang"},
        "followups": {"f_zhang"},
        "tasks": {"k_zhang"},
        "leads": {"l_zhang", "l_pool"},
        "contacts": {"p_zhang"},
    },
    "wangjl": {
        "tickets": {"t_zhang", "t_qian"},
        "followups": {"f_zhang", "f_qian"},
        "tasks": {"k_zhang", "k_qian"},
        "leads": {"l_zhang", "l_pool"},
    },
    # Tasks are personal even for service; leads follow the level (own plus the lead pool).
    "zhoujiu": {"tasks": set(), "leads": {"l_pool"}},
    "wushi": {
        "tickets": {"t_zhang", "t_qian"},
        "tasks": {"k_zhang", "k_qian"},
        "leads": {"l_zhang", "l_pool"},
    },
}


@pytest.mark.parametrize("userid", sorted(CHILDREN))
async def test_tickets_followups_tasks_leads_contacts(org: Org, userid: str) -> None:
    async with org.sessions() as session:
        scope = await org.scope(session, userid)
        kinds = {
            "tickets": (Ticket, scope.tickets(), org.tickets),
            "followups": (Followup, scope.followups(), org.followups),
            "tasks": (Task, scope.tasks(), org.tasks),
            "leads": (Lead, scope.leads(), org.leads),
            "contacts": (Contact, scope.contacts(), org.contacts),
        }
        for kind, expected in CHILDREN[userid].items():
            model, where, ids = kinds[kind]
            found = set(await session.scalars(select(model.id).where(where)))
            names = {key for key, row_id in ids.items() if row_id in found}
            assert names == expected, (userid, kind)


WRITABLE: dict[str, set[str]] = {
    "zhangsan": {"c_zhang", "c_expired"},
    "qianqi": {"c_qian"},  # a read share does not let 钱七 write c_active
    "lizz": SALES_ONE,
    "wangjl": SALES_TREE,
    "zhoujiu": {"c_zhou"},
    "wushi": set(ALL_CUSTOMERS),  # ALL may also edit pool cards
}


@pytest.mark.parametrize("userid", sorted(WRITABLE))
async def test_who_may_write(org: Org, userid: str) -> None:
    async with org.sessions() as session:
        scope = await org.scope(session, userid)
        for key, customer_id in org.ids.items():
            allowed = await customers.is_writable(session, scope, customer_id)
            assert allowed == (key in WRITABLE[userid]), (userid, key)


async def test_write_share_grants_write_until_it_expires(org: Org) -> None:
    now = org.clock.now()
    async with org.sessions.begin() as session:
        await customers.share(
            session,
            customer_id=org.ids["c_active"],
            userid="qianqi",
            access="write",
            until=now + timedelta(days=2),
            by="zhaoliu",
            now=now,
        )
    async with org.sessions() as session:
        scope = await org.scope(session, "qianqi")
        assert await customers.is_writable(session, scope, org.ids["c_active"])
    org.clock.advance(days=3)
    await _assert_sees(org, "qianqi", {"c_qian", "c_pool"}, {"c_qian"})
    async with org.sessions() as session:
        scope = await org.scope(session, "qianqi")
        assert not await customers.is_writable(session, scope, org.ids["c_active"])


async def test_moving_a_person_changes_what_leaders_see_at_once(org: Org) -> None:
    await _assert_sees(org, "lizz", SALES_ONE | {"c_pool"}, SALES_ONE)
    async with org.sessions.begin() as session:
        await staff.upsert_staff(
            session,
            userid="zhangsan",
            name="张三",
            department_ids=[4],
            direct_leaders=["qianqi"],
            now=org.clock.now(),
        )
    moved = SALES_ONE - {"c_zhang", "c_expired"}
    await _assert_sees(org, "lizz", moved | {"c_pool"}, moved)
    # Still under 销售部, so 王经理 keeps seeing him; 张三 keeps his own customers.
    await _assert_sees(org, "wangjl", SALES_TREE | {"c_pool"}, SALES_TREE)
    await _assert_sees(org, "zhangsan", DEFAULT_VISIBLE["zhangsan"], {"c_zhang", "c_expired"})


async def test_losing_the_leader_flag_applies_at_once(org: Org) -> None:
    async with org.sessions.begin() as session:
        await staff.upsert_staff(
            session,
            userid="lizz",
            name="李组长",
            department_ids=[3],
            leader_in=[],
            direct_leaders=["wangjl"],
            now=org.clock.now(),
        )
    async with org.sessions() as session:
        actor = await load_actor(session, "lizz")
        assert actor is not None and actor.level is ScopeLevel.SELF
    await _assert_sees(org, "lizz", {"c_li", "c_pool"}, {"c_li"})


async def test_role_change_applies_at_once(org: Org) -> None:
    await _assert_sees(org, "zhaoliu", DEFAULT_VISIBLE["zhaoliu"], {"c_zhao", "c_active"})
    async with org.sessions.begin() as session:
        await staff.set_role(
            session, userid="zhaoliu", role="manager", by="wushi", now=org.clock.now()
        )
    async with org.sessions() as session:
        actor = await load_actor(session, "zhaoliu")
        assert actor is not None and actor.level is ScopeLevel.DEPARTMENT_TREE
    await _assert_sees(org, "zhaoliu", SALES_ONE | {"c_pool"}, SALES_ONE)


async def test_unknown_and_departed_people_get_no_actor(org: Org) -> None:
    async with org.sessions.begin() as session:
        assert await load_actor(session, "nobody") is None
        gone = await staff.mark_inactive_except(
            session, seen_userids=set(PEOPLE) - {"zhaoliu"}, now=org.clock.now()
        )
        assert gone == ["zhaoliu"]
        assert await load_actor(session, "zhaoliu") is None
    # His customers stay; his leader still sees them.
    await _assert_sees(org, "lizz", SALES_ONE | {"c_pool"}, SALES_ONE)


async def test_role_scope_settings_round_trip(org: Org) -> None:
    async with org.sessions.begin() as session:
        scopes = await config_data.get_role_scopes(session)
        assert scopes["rep"].level is ScopeLevel.SELF
        assert scopes["manager"].level is ScopeLevel.DEPARTMENT_TREE
        assert scopes["admin"].level is ScopeLevel.ALL
        assert scopes[LEADER].level is ScopeLevel.DEPARTMENT_TREE
        with pytest.raises(config_data.ConfigError):
            await config_data.set_role_scope(
                session, role="rep", level=ScopeLevel.CUSTOM, by="wushi", now=org.clock.now()
            )
        with pytest.raises(config_data.ConfigError):
            await config_data.set_role_scope(
                session, role="boss", level=ScopeLevel.ALL, by="wushi", now=org.clock.now()
            )
    await _set_level(org, "rep", ScopeLevel.CUSTOM, (4, 3))
    async with org.sessions() as session:
        scopes = await config_data.get_role_scopes(session)
        assert scopes["rep"] == config_data.RoleScope(ScopeLevel.CUSTOM, (3, 4))


async def test_unowned_customer_belongs_to_its_recorded_department(org: Org) -> None:
    now = org.clock.now()
    async with org.sessions.begin() as session:
        orphan = Customer(
            name="无人认领有限公司",
            name_core="无人认领",
            owner_id=None,
            department_id=3,
            in_pool=False,
            created_at=now,
            updated_at=now,
        )
        session.add(orphan)
    expected = {"lizz": True, "wangjl": True, "zhoujiu": True, "wushi": True}
    expected |= {"zhangsan": False, "qianqi": False, "sunba": False}
    async with org.sessions() as session:
        for userid, sees in expected.items():
            scope = await org.scope(session, userid)
            assert (await customers.get_visible(session, scope, orphan.id) is not None) == sees
        assert await customers.is_writable(session, await org.scope(session, "lizz"), orphan.id)
        zhoujiu = await org.scope(session, "zhoujiu")
        assert not await customers.is_writable(session, zhoujiu, orphan.id)
