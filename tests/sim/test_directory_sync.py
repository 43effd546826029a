"""Directory sync against the local WeCom: new, changed and departed people, leaders as
managers, the fallback APIs, and people fetched on their first message."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.simulator import WeComSimulator
from bot.wecom.client import WeComClient
from bot.wecom.directory import SyncError, actor_loader_factory, sync_directory
from crm_store import customers, staff
from crm_store.clock import FakeClock
from crm_store.models import Customer, Department, Staff, StaffDepartment
from crm_store.scope import load_actor
from tests.sim.conftest import SECRET

EXPECTED_PEOPLE = {"boss", "wangjl", "liuzz", "zhangsan", "lisi", "kefu1", "gone"}


async def people(sessions: async_sessionmaker[AsyncSession]) -> dict[str, dict[str, Any]]:
    """Each person as the CRM holds them, memberships as {department: is_leader}."""
    async with sessions() as session:
        memberships: dict[str, dict[int, bool]] = {}
        for row in await session.scalars(select(StaffDepartment)):
            memberships.setdefault(row.userid, {})[row.department_id] = row.is_leader
        return {
            p.userid: {
                "name": p.name,
                "role": p.role,
                "active": p.active,
                "main": p.main_department_id,
                "departments": memberships.get(p.userid, {}),
                "leaders": list(p.direct_leaders),
                "position": p.position,
            }
            for p in await session.scalars(select(Staff))
        }


async def departments(sessions: async_sessionmaker[AsyncSession]) -> dict[int, tuple[str, Any]]:
    async with sessions() as session:
        return {d.id: (d.name, d.parent_id) for d in await session.scalars(select(Department))}


async def test_first_sync_brings_in_departments_people_and_leaders(
    client: WeComClient, sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    report = await sync_directory(client, sessions, now=clock.now())
    assert set(report.new) == EXPECTED_PEOPLE and report.changed == []
    assert (report.departments, report.people) == (4, 6)
    assert report.deactivated == [] and report.fallbacks == []
    assert sorted(report.promoted) == ["boss", "liuzz", "wangjl"]

    assert await departments(sessions) == {
        1: ("总部", None),
        2: ("销售部", 1),
        3: ("华东销售组", 2),
        4: ("客服部", 1),
    }
    found = await people(sessions)
    assert set(found) == EXPECTED_PEOPLE
    assert found["lisi"]["departments"] == {3: False, 4: False} and found["lisi"]["main"] == 3
    assert found["liuzz"]["departments"] == {3: True}
    assert found["zhangsan"] == {
        "name": "张三",
        "role": "rep",
        "active": True,
        "main": 3,
        "departments": {3: False},
        "leaders": ["liuzz"],
        "position": "销售",
    }
    assert {u: p["role"] for u, p in found.items() if p["role"] != "rep"} == {
        "boss": "manager",
        "wangjl": "manager",
        "liuzz": "manager",
    }
    assert found["gone"]["active"] is False  # status 2: disabled in WeCom

    async with sessions() as session:
        manager = await load_actor(session, "wangjl")
        assert manager is not None and manager.visible_department_ids == {2, 3}
        assert await load_actor(session, "gone") is None

    # Nothing changed in WeCom: a second sync changes nothing either.
    clock.advance(hours=24)
    again = await sync_directory(client, sessions, now=clock.now())
    assert (again.new, again.changed, again.deactivated, again.promoted) == ([], [], [], [])
    assert await people(sessions) == found


async def test_resync_moves_promotes_and_deactivates(
    client: WeComClient,
    sim: WeComSimulator,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    await sync_directory(client, sessions, now=clock.now())
    async with sessions.begin() as session:
        # An admin's explicit roles: the sync must not touch them.
        await staff.set_role(session, userid="wangjl", role="admin", by="cli", now=clock.now())
        await staff.set_role(session, userid="kefu1", role="service", by="cli", now=clock.now())
        actor = await load_actor(session, "lisi")
        assert actor is not None
        kept = await customers.create_customer(
            session, actor=actor, name="李四的老客户有限公司", now=clock.now()
        )

    # WeCom keeps a department's leader list and its members' is_leader_in_dept in step.
    sim.add_department(2, "销售部", 1, leaders=[], order=100)
    sim.add_department(3, "华东销售组", 2, leaders=[])
    sim.add_department(4, "客服部", 1, leaders=["kefu1"])
    sim.add_department(5, "华南销售组", 2, leaders=["zhangsan"])
    sim.add_user("zhangsan", "张三", [5], is_leader_in_dept=[1], direct_leader=["wangjl"])
    sim.add_user("liuzz", "刘组长", [3], is_leader_in_dept=[0], direct_leader=["wangjl"])
    sim.add_user("kefu1", "客服一", [4], is_leader_in_dept=[1], direct_leader=["boss"])
    sim.add_user("wangjl", "王经理", [2], is_leader_in_dept=[0], direct_leader=["boss"])
    sim.add_user("newbie", "新人", [3], direct_leader=["liuzz"])
    sim.add_user("boss", "赵总", [1], is_leader_in_dept=[1], position="总经理", status=5)
    sim.remove_user("lisi")
    clock.advance(days=1)

    report = await sync_directory(client, sessions, now=clock.now())
    assert report.new == ["newbie"]
    assert sorted(report.changed) == ["boss", "kefu1", "liuzz", "wangjl", "zhangsan"]
    assert report.deactivated == ["boss", "lisi"]
    assert report.promoted == ["zhangsan"]  # kefu1 leads now, but an admin made them service
    assert report.demoted == ["liuzz"]  # a sync-made manager who leads nothing any more

    found = await people(sessions)
    assert found["zhangsan"]["departments"] == {5: True}
    assert (found["zhangsan"]["main"], found["zhangsan"]["role"]) == (5, "manager")
    assert found["liuzz"]["role"] == "rep"
    assert found["wangjl"]["role"] == "admin"  # no longer a leader, but set by hand
    assert found["kefu1"]["role"] == "service" and found["kefu1"]["departments"] == {4: True}
    assert found["newbie"]["role"] == "rep" and found["newbie"]["active"]
    assert not found["lisi"]["active"] and not found["boss"]["active"]
    assert (await departments(sessions))[5] == ("华南销售组", 2)

    async with sessions() as session:
        # Departed people keep their customers until someone hands them over.
        assert await session.scalar(select(Customer.owner_id).where(Customer.id == kept.id)) == (
            "lisi"
        )
        assert await load_actor(session, "lisi") is None
        mover = await load_actor(session, "zhangsan")
        assert mover is not None and mover.visible_department_ids == {5}


async def test_fallback_when_list_apis_are_refused(
    client: WeComClient,
    sim: WeComSimulator,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    sim.restrict_api("department/list", 48002)
    sim.restrict_api("user/list", 60011)
    report = await sync_directory(client, sessions, now=clock.now())
    assert report.fallbacks == ["department/simplelist", "user/list_id"]
    assert set(report.new) == EXPECTED_PEOPLE
    assert sim.calls["department/get"] == 4
    assert sim.calls["user/get"] == len(EXPECTED_PEOPLE)
    assert sim.calls["user/list"] == 1  # refused once, then never asked again

    fallback = await people(sessions)
    assert await departments(sessions) == {
        1: ("总部", None),
        2: ("销售部", 1),
        3: ("华东销售组", 2),
        4: ("客服部", 1),
    }
    assert fallback["lisi"]["departments"] == {3: False, 4: False}
    assert {u for u, p in fallback.items() if p["role"] == "manager"} == {
        "boss",
        "wangjl",
        "liuzz",
    }

    # The same directory through the full APIs gives the same rows.
    sim.unrestrict_api("department/list")
    sim.unrestrict_api("user/list")
    clock.advance(hours=1)
    again = await sync_directory(client, sessions, now=clock.now())
    assert (again.fallbacks, again.changed, again.new) == ([], [], [])
    assert await people(sessions) == fallback


async def test_a_failed_read_changes_nothing(
    client: WeComClient,
    sim: WeComSimulator,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    await sync_directory(client, sessions, now=clock.now())
    before = await people(sessions)

    sim.restrict_api("department/list", 48002)
    sim.restrict_api("department/simplelist", 48002)
    with pytest.raises(SyncError, match="失败"):
        await sync_directory(client, sessions, now=clock.now())
    sim.unrestrict_api("department/list")
    sim.unrestrict_api("department/simplelist")

    sim.restrict_api("user/list", 48002)
    sim.restrict_api("user/get", 48002)
    with pytest.raises(SyncError, match="user/get"):
        await sync_directory(client, sessions, now=clock.now())
    sim.unrestrict_api("user/list")
    sim.unrestrict_api("user/get")

    # An app whose visibility was emptied must not deactivate the whole company.
    for userid in EXPECTED_PEOPLE:
        sim.remove_user(userid)
    with pytest.raises(SyncError, match="可见范围"):
        await sync_directory(client, sessions, now=clock.now())
    assert await people(sessions) == before


async def test_first_contact_is_fetched_with_user_get(
    client: WeComClient,
    sim: WeComSimulator,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    load = actor_loader_factory(client, sessions, clock)
    actor = await load("zhangsan")
    assert actor is not None
    assert (actor.userid, actor.role, actor.department_ids) == ("zhangsan", "rep", {3})
    leader = await load("liuzz")
    assert leader is not None and leader.role == "manager" and leader.led_department_ids == {3}
    assert sim.calls["user/get"] == 2

    # Known now: no more WeCom calls, and the departments wait as bare ids for the next sync.
    again = await load("zhangsan")
    assert again is not None and again.userid == "zhangsan"
    async with sessions() as session:
        assert (await session.get(Department, 3)) is not None
    assert sim.calls["user/get"] == 2
    assert (await departments(sessions))[3] == ("部门3", None)

    await sync_directory(client, sessions, now=clock.now())
    assert (await departments(sessions))[3] == ("华东销售组", 2)


async def test_first_contact_failures_leave_the_sender_unknown(
    client: WeComClient,
    sim: WeComSimulator,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    load = actor_loader_factory(client, sessions, clock)
    caplog.set_level(logging.DEBUG)
    assert await load("nobody") is None  # 60111: not in WeCom
    assert await load("gone") is None  # disabled in WeCom
    sim.restrict_api("user/get", 60011)
    assert await load("kefu1") is None
    assert await people(sessions) == {}
    assert "60111" in caplog.text and "60011" in caplog.text
    assert SECRET not in caplog.text
    assert "access_token" not in caplog.text


async def test_fallback_keeps_people_it_cannot_read(
    client: WeComClient,
    sim: WeComSimulator,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    await sync_directory(client, sessions, now=clock.now())
    before = await people(sessions)
    sim.restrict_api("user/list", 60011)
    first = sim.directory.members()[0].userid
    sim.fail_next("user/get", errcode=60011)  # listed by user/list_id, but not readable
    report = await sync_directory(client, sessions, now=clock.now())
    assert report.unreadable == [first] and report.deactivated == []
    assert await people(sessions) == before

    sim.fail_next("user/get", errcode=60111)  # left between user/list_id and user/get
    report = await sync_directory(client, sessions, now=clock.now())
    assert report.deactivated == [first]
