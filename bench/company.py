"""A company to benchmark against: sales staff in the simulator's directory, customers in the
database, and for every rep the messages they would type in a working hour.

Staff arrive the way an admin's do (the simulator's directory, then `wecrm sync-directory`);
customers are written with one bulk INSERT per chunk, which is what an import ends in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert

from bench.common import BENCH_CREDS
from bench.corpus import BRAND_CHARS, generate_customers, generate_queries
from bot.simulator import WeComSimulator
from crm_store.clock import SystemClock
from crm_store.models import Customer
from crm_store.models.messaging import InboxMessage, OutboxMessage
from crm_store.names import normalize_company_name
from crm_store.search.index import IndexedCustomer
from crm_store.session import create_engine

SALES_DEPARTMENT = 2
GROUP_SIZE = 20
FOLLOWUP_TEXTS = (
    "电话沟通了报价，客户有兴趣，下周三下午再联系",
    "今天拜访了采购负责人，需要补充资质材料，明天上午发过去",
    "微信确认了合同条款，月底前安排签约",
    "客户反馈价格偏高，下周一再跟进一次",
)


def rep_id(index: int) -> str:
    return f"rep{index:04d}"


@dataclass
class Script:
    """One rep's messages, in the order they type them, each with the kind it exercises."""

    user: str
    messages: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)


@dataclass
class Company:
    reps: int
    customers: int
    seed: int = 7
    scripts: list[Script] = field(default_factory=list)
    lookup_queries: list[tuple[str, str]] = field(default_factory=list)  # (user, query)

    @property
    def groups(self) -> int:
        return -(-self.reps // GROUP_SIZE)

    def simulator(self) -> WeComSimulator:
        """The WeCom side: this company's directory, the bench credentials."""
        sim = WeComSimulator(
            str(BENCH_CREDS["WECOM_CORP_ID"]),
            str(BENCH_CREDS["WECOM_SECRET"]),
            int(BENCH_CREDS["WECOM_AGENT_ID"]),
            str(BENCH_CREDS["WECOM_TOKEN"]),
            str(BENCH_CREDS["WECOM_AES_KEY"]),
            SystemClock(),
        )
        sim.add_department(1, "压测公司", 0)
        sim.add_department(SALES_DEPARTMENT, "销售部", 1)
        for g in range(self.groups):
            sim.add_department(10 + g, f"销售{g + 1}组", SALES_DEPARTMENT)
        for r in range(self.reps):
            sim.add_user(rep_id(r), f"销售{r:04d}", [10 + r // GROUP_SIZE], position="销售")
        return sim


def _ambiguous_brand(index: int) -> str:
    """A rep's own pair of look-alike customers share this brand (so 查 <brand> asks)."""
    size = len(BRAND_CHARS)
    return BRAND_CHARS[index % size] + BRAND_CHARS[(index // size) % size] + "泰和"


async def seed_customers(database_url: str, company: Company) -> None:
    """Insert the customers and build every rep's script from what that rep owns."""
    people = generate_customers(company.customers, seed=company.seed)
    owner_of = [rep_id(i % company.reps) for i in range(len(people))]
    written = datetime.now(UTC) - timedelta(days=1)
    rows = []
    for i, c in enumerate(people):
        rep = i % company.reps
        rows.append(
            {
                "name": c.name,
                "name_core": normalize_company_name(c.name)[:200],
                "aliases": list(c.aliases),
                "owner_id": owner_of[i],
                "department_id": 10 + rep // GROUP_SIZE,
                "in_pool": False,
                "created_at": written,
                "updated_at": written,
                "tags": [],
            }
        )
    for r in range(company.reps):
        brand = _ambiguous_brand(r)
        for industry, city in (("物流", "杭州"), ("电子科技", "深圳")):
            name = f"{brand}{industry}有限公司"
            rows.append(
                {
                    "name": name,
                    "name_core": normalize_company_name(name),
                    "aliases": [],
                    "owner_id": rep_id(r),
                    "department_id": 10 + r // GROUP_SIZE,
                    "city": city,
                    "in_pool": False,
                    "created_at": written,
                    "updated_at": written,
                    "tags": [],
                }
            )
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(Customer), rows[start : start + 5000])
    await engine.dispose()
    _write_scripts(company, people, owner_of)


def _write_scripts(company: Company, people: list[IndexedCustomer], owner_of: list[str]) -> None:
    rng = random.Random(company.seed)
    per_kind = max(4, -(-3 * company.reps // 11))
    asked = generate_queries(people, per_kind, seed=company.seed + 1)
    by_rep: dict[str, list[str]] = {}
    for text, _kind, customer_id in asked:
        if any(ch.isspace() for ch in text.strip()) or not text.strip():
            continue
        owner = owner_of[(customer_id - 100_000) // 3]
        by_rep.setdefault(owner, []).append(text)
    cores: dict[str, list[str]] = {}
    for i, c in enumerate(people):
        core = normalize_company_name(c.name)
        if core and not core.isascii() and not any(ch.isspace() for ch in core):
            cores.setdefault(owner_of[i], []).append(core)
    company.scripts.clear()
    company.lookup_queries.clear()
    for r in range(company.reps):
        user = rep_id(r)
        mine = cores.get(user) or [_ambiguous_brand(r) + "物流"]
        queries = by_rep.get(user, []) + [rng.choice(mine)]
        company.lookup_queries += [(user, q) for q in queries]
        script = Script(user)
        script.messages += [
            ("lookup", f"查 {queries[0]}"),
            ("ambiguous lookup", f"查 {_ambiguous_brand(r)}"),
            ("choice", "2"),
            ("follow-up", f"跟进 {rng.choice(mine)} {rng.choice(FOLLOWUP_TEXTS)}"),
            ("lookup", f"查 {queries[-1]}"),
            ("help", "帮助"),
        ]
        company.scripts.append(script)


async def clear_queues(database_url: str) -> None:
    """Forget every inbox and outbox row (between runs on one seeded database)."""
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(delete(OutboxMessage))
        await conn.execute(delete(InboxMessage))
    await engine.dispose()
