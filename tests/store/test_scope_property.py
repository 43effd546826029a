"""Property: for random department trees, memberships and leader chains, the scope the store
computes equals a brute-force walk up each owner's departments and leaders."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_store import config_data, customers, staff
from crm_store.clock import FakeClock
from crm_store.config_data import LEADER
from crm_store.models import Customer, ScopeLevel
from crm_store.scope import Scope, load_actor
from crm_store.session import create_engine, session_factory

NOW = FakeClock().now()


@dataclass(frozen=True)
class Person:
    userid: str
    departments: tuple[int, ...]
    leads: tuple[int, ...]
    leaders: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    parents: dict[int, int | None]
    people: tuple[Person, ...]
    actor: str
    level: ScopeLevel
    custom: tuple[int, ...]
    leader_level: ScopeLevel
    unowned_department: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    count = draw(st.integers(1, 8))
    ids = [10 + i for i in range(count)]
    parents: dict[int, int | None] = {}
    for i, department in enumerate(ids):
        parents[department] = draw(st.sampled_from([None, *ids[:i]])) if i else None
    userids = [f"u{i}" for i in range(draw(st.integers(1, 6)))]
    people = []
    for userid in userids:
        departments = draw(st.lists(st.sampled_from(ids), max_size=3, unique=True))
        leads = [d for d in departments if draw(st.booleans())]
        leaders = draw(st.lists(st.sampled_from(userids), max_size=2, unique=True))
        people.append(
            Person(
                userid, tuple(departments), tuple(leads), tuple(u for u in leaders if u != userid)
            )
        )
    level = draw(
        st.sampled_from(
            [
                ScopeLevel.SELF,
                ScopeLevel.SELF_AND_SUBORDINATES,
                ScopeLevel.DEPARTMENT,
                ScopeLevel.DEPARTMENT_TREE,
                ScopeLevel.CUSTOM,
            ]
        )
    )
    custom = tuple(draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True)))
    return Case(
        parents=parents,
        people=tuple(people),
        actor=draw(st.sampled_from(userids)),
        level=level,
        custom=custom if level is ScopeLevel.CUSTOM else (),
        leader_level=draw(
            st.sampled_from([ScopeLevel.SELF, ScopeLevel.DEPARTMENT, ScopeLevel.DEPARTMENT_TREE])
        ),
        unowned_department=draw(st.sampled_from(ids)),
    )


def _up(department: int, parents: dict[int, int | None]) -> set[int]:
    """The department and every ancestor, by walking parent links."""
    found: set[int] = set()
    current: int | None = department
    while current is not None and current not in found:
        found.add(current)
        current = parents.get(current)
    return found


def _reports_to(person: str, boss: str, leaders: dict[str, tuple[str, ...]]) -> bool:
    """Whether boss is somewhere up person's direct-leader chain."""
    seen: set[str] = set()
    stack = list(leaders.get(person, ()))
    while stack:
        leader = stack.pop()
        if leader == boss:
            return True
        if leader not in seen:
            seen.add(leader)
            stack.extend(leaders.get(leader, ()))
    return False


def _in_departments(level: ScopeLevel, basis: set[int], departments: set[int], case: Case) -> bool:
    if level is ScopeLevel.DEPARTMENT:
        return bool(departments & basis)
    if level is ScopeLevel.DEPARTMENT_TREE:
        return any(_up(d, case.parents) & basis for d in departments)
    if level is ScopeLevel.CUSTOM:
        return any(_up(d, case.parents) & set(case.custom) for d in departments)
    return False


def _brute_force(case: Case) -> tuple[set[str], set[str]]:
    """(people whose records the actor sees, customers the actor sees) by brute force."""
    by_id = {p.userid: p for p in case.people}
    me = by_id[case.actor]
    leaders = {p.userid: p.leaders for p in case.people}
    grants = [(case.level, set(me.departments))]
    if me.leads:
        grants.append((case.leader_level, set(me.leads)))

    def sees_owner(owner: str) -> bool:
        if owner == case.actor:
            return True
        for level, basis in grants:
            if level is ScopeLevel.SELF_AND_SUBORDINATES and _reports_to(
                owner, case.actor, leaders
            ):
                return True
            if _in_departments(level, basis, set(by_id[owner].departments), case):
                return True
        return False

    people = {p.userid for p in case.people if sees_owner(p.userid)}
    visible = {f"c-{u}" for u in people} | {"pool"}
    if any(
        _in_departments(level, basis, {case.unowned_department}, case) for level, basis in grants
    ):
        visible.add("unowned")
    return people, visible


async def _check(engine: AsyncEngine, case: Case) -> None:
    async with session_factory(engine)() as session:
        try:
            for department, parent in case.parents.items():
                await staff.upsert_department(
                    session,
                    department_id=department,
                    name=f"D{department}",
                    parent_id=parent,
                    now=NOW,
                )
            for person in case.people:
                await staff.upsert_staff(
                    session,
                    userid=person.userid,
                    name=person.userid,
                    department_ids=person.departments,
                    main_department_id=person.departments[0] if person.departments else None,
                    leader_in=person.leads,
                    direct_leaders=person.leaders,
                    now=NOW,
                )
            await config_data.set_role_scope(
                session, role="rep", level=case.level, department_ids=case.custom, by="t", now=NOW
            )
            await config_data.set_role_scope(
                session, role=LEADER, level=case.leader_level, by="t", now=NOW
            )
            names: dict[int, str] = {}
            rows = [
                (f"c-{p.userid}", p.userid, p.departments[0] if p.departments else None, False)
                for p in case.people
            ]
            rows += [("unowned", None, case.unowned_department, False), ("pool", None, None, True)]
            for name, owner, department, in_pool in rows:
                customer = Customer(
                    name=name,
                    name_core=name,
                    owner_id=owner,
                    department_id=department,
                    in_pool=in_pool,
                    created_at=NOW,
                    updated_at=NOW,
                )
                session.add(customer)
                await session.flush()
                names[customer.id] = name

            actor = await load_actor(session, case.actor)
            assert actor is not None
            scope = Scope(actor, now=NOW)
            people, expected = _brute_force(case)
            seen = {names[i] for i in await customers.visible_ids(session, scope)}
            assert seen == expected, case
            assert await customers.count_visible(session, scope) == len(expected)
            assert actor.member_ids == frozenset(people), case
        finally:
            await session.rollback()


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for all examples: Hypothesis calls the test synchronously."""
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture
def loop_engine(db_url: str, runner: asyncio.Runner) -> Iterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    runner.run(engine.dispose())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_scope_matches_brute_force(
    loop_engine: AsyncEngine, runner: asyncio.Runner, case: Case
) -> None:
    runner.run(_check(loop_engine, case))
