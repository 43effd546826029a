"""A small org shared by the store tests: two sales groups, a service desk, an admin.

公司(1) ─┬─ 销售部(2, leader 王经理) ─┬─ 销售一组(3, leader 李组长): 张三, 赵六, 孙八
         │                           └─ 销售二组(4): 钱七, 孙八
         ├─ 客服部(5): 周九 (service)
         └─ 吴十 (admin, in 公司)

Direct leaders: 张三, 赵六 → 李组长 → 王经理; 钱七 → 王经理; 孙八 → 钱七.
Each customer has one open opportunity whose amount is a distinct power of two, so a sum
names exactly the set of opportunities it counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import customers, staff
from crm_store.clock import FakeClock
from crm_store.models import Contact, Followup, Lead, Opportunity, Task, Ticket
from crm_store.scope import Scope, load_actor

DEPARTMENTS = [
    (1, "公司", None),
    (2, "销售部", 1),
    (3, "销售一组", 2),
    (4, "销售二组", 2),
    (5, "客服部", 1),
]
# userid: (name, departments, leader_in, direct_leaders, role)
PEOPLE: dict[str, tuple[str, list[int], list[int], list[str], str]] = {
    "wangjl": ("王经理", [2], [2], [], "manager"),
    "lizz": ("李组长", [3], [3], ["wangjl"], "rep"),
    "zhangsan": ("张三", [3], [], ["lizz"], "rep"),
    "zhaoliu": ("赵六", [3], [], ["lizz"], "rep"),
    "qianqi": ("钱七", [4], [], ["wangjl"], "rep"),
    "sunba": ("孙八", [4, 3], [], ["qianqi"], "rep"),
    "zhoujiu": ("周九", [5], [], [], "service"),
    "wushi": ("吴十", [1], [], [], "admin"),
}
# customer key: (owner, name)
CUSTOMERS: dict[str, tuple[str | None, str]] = {
    "c_zhang": ("zhangsan", "上海张记贸易有限公司"),
    "c_zhao": ("zhaoliu", "杭州赵氏科技有限公司"),
    "c_qian": ("qianqi", "钱塘江物流股份有限公司"),
    "c_sun": ("sunba", "孙氏建材集团"),
    "c_li": ("lizz", "李家电器有限公司"),
    "c_wang": ("wangjl", "王府井百货"),
    "c_zhou": ("zhoujiu", "周到服务有限公司"),
    "c_wu": ("wushi", "吴越软件有限公司"),
    "c_pool": (None, "公海无主有限公司"),
    "c_expired": ("zhangsan", "过期共享有限公司"),
    "c_active": ("zhaoliu", "有效共享有限公司"),
}
AMOUNTS: dict[str, Decimal] = {
    key: Decimal(2**i) for i, key in enumerate(k for k, (o, _) in CUSTOMERS.items() if o)
}
ALL_CUSTOMERS = frozenset(CUSTOMERS)


@dataclass
class Org:
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    ids: dict[str, int] = field(default_factory=dict)
    tickets: dict[str, int] = field(default_factory=dict)
    followups: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    leads: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)

    def keys(self, ids: set[int]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id[i] for i in ids}

    async def scope(self, session: AsyncSession, userid: str) -> Scope:
        actor = await load_actor(session, userid)
        assert actor is not None, userid
        return Scope(actor, now=self.clock.now())


async def build_org(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> Org:
    org = Org(sessions=sessions, clock=clock)
    now = clock.now()
    async with sessions.begin() as session:
        for department_id, name, parent in DEPARTMENTS:
            await staff.upsert_department(
                session, department_id=department_id, name=name, parent_id=parent, now=now
            )
        for userid, (name, departments, leads, leaders, role) in PEOPLE.items():
            await staff.upsert_staff(
                session,
                userid=userid,
                name=name,
                department_ids=departments,
                main_department_id=departments[0],
                leader_in=leads,
                direct_leaders=leaders,
                now=now,
            )
            await staff.set_role(session, userid=userid, role=role, by="test", now=now)
        admin = await load_actor(session, "wushi")
        assert admin is not None
        for key, (owner, name) in CUSTOMERS.items():
            customer = await customers.create_customer(
                session,
                actor=admin,
                name=name,
                owner_id=owner,
                in_pool=owner is None,
                phone=f"1380000{len(org.ids):04d}",
                now=now,
            )
            org.ids[key] = customer.id
            if owner is not None:
                session.add(
                    Opportunity(
                        customer_id=customer.id,
                        title=f"{name} 项目",
                        amount=AMOUNTS[key],
                        stage="方案报价",
                        probability=50,
                        owner_id=owner,
                        created_at=now,
                        updated_at=now,
                    )
                )
        # A won deal never counts in the open pipeline.
        session.add(
            Opportunity(
                customer_id=org.ids["c_zhang"],
                title="已签项目",
                amount=Decimal("100000"),
                stage="赢单",
                probability=100,
                owner_id="zhangsan",
                state="won",
                created_at=now,
                updated_at=now,
            )
        )
        await customers.share(
            session,
            customer_id=org.ids["c_expired"],
            userid="qianqi",
            access="read",
            until=now - timedelta(days=1),
            by="zhangsan",
            now=now - timedelta(days=8),
        )
        await customers.share(
            session,
            customer_id=org.ids["c_active"],
            userid="qianqi",
            access="read",
            until=now + timedelta(days=7),
            by="zhaoliu",
            now=now,
        )
        rows: dict[str, tuple[dict[str, int], Any]] = {
            "t_zhang": (
                org.tickets,
                Ticket(
                    number="T20261120-0001",
                    customer_id=org.ids["c_zhang"],
                    opened_by="zhoujiu",
                    assignee_id="zhoujiu",
                    priority="P2",
                    category="故障",
                    content="设备无法开机",
                    created_at=now,
                    updated_at=now,
                ),
            ),
            "t_qian": (
                org.tickets,
                Ticket(
                    number="T20261120-0002",
                    customer_id=org.ids["c_qian"],
                    opened_by="zhoujiu",
                    priority="P3",
                    category="咨询",
                    content="发票问题",
                    created_at=now,
                    updated_at=now,
                ),
            ),
            "f_zhang": (
                org.followups,
                Followup(
                    customer_id=org.ids["c_zhang"],
                    author_id="zhangsan",
                    kind="call",
                    content="电话沟通需求",
                    created_at=now,
                ),
            ),
            "f_qian": (
                org.followups,
                Followup(
                    customer_id=org.ids["c_qian"],
                    author_id="qianqi",
                    kind="visit",
                    content="上门拜访",
                    created_at=now,
                ),
            ),
            "k_zhang": (
                org.tasks,
                Task(owner_id="zhangsan", title="回电张记", created_at=now),
            ),
            "k_qian": (org.tasks, Task(owner_id="qianqi", title="寄样品", created_at=now)),
            "l_zhang": (
                org.leads,
                Lead(name="线索甲", owner_id="zhangsan", created_at=now),
            ),
            "l_pool": (org.leads, Lead(name="线索乙", owner_id=None, created_at=now)),
            "p_zhang": (
                org.contacts,
                Contact(customer_id=org.ids["c_zhang"], name="张总", created_at=now),
            ),
            "p_qian": (
                org.contacts,
                Contact(customer_id=org.ids["c_qian"], name="钱经理", created_at=now),
            ),
        }
        session.add_all(row for _, row in rows.values())
        await session.flush()
        for key, (row_map, row) in rows.items():
            row_map[key] = row.id
    return org


@pytest.fixture
async def org(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> Org:
    return await build_org(sessions, clock)
