"""Lookup as the bot runs it: index build from the database, event-loop stalls during a burst
of lookups, and how soon another worker's new customer becomes findable.

    python -m bench.bench_lookup_service --customers 100000 --out docs/bench_lookup_service.md
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.common import fresh_pg_database, machine, summary_ms, today
from bench.corpus import generate_customers, generate_queries
from crm_store.migrate import upgrade
from crm_store.models import Customer, ScopeLevel
from crm_store.names import normalize_company_name
from crm_store.scope import Actor, Scope
from crm_store.search import CustomerSearch
from crm_store.session import create_engine, session_factory

ADMIN = Actor(
    userid="admin",
    role="admin",
    level=ScopeLevel.ALL,
    department_ids=frozenset(),
    visible_department_ids=None,
    visible_owner_ids=None,
    is_service=False,
)


async def _fill(url: str, n: int) -> list[str]:
    engine = create_engine(url)
    people = generate_customers(n)
    now = datetime.now(UTC) - timedelta(hours=1)  # written earlier, as in a running company
    async with engine.begin() as conn:
        for start in range(0, n, 5000):
            await conn.execute(
                insert(Customer),
                [
                    {
                        "name": c.name,
                        "name_core": normalize_company_name(c.name)[:200],
                        "aliases": list(c.aliases),
                        "in_pool": True,
                        "created_at": now,
                        "updated_at": now,
                        "tags": [],
                    }
                    for c in people[start : start + 5000]
                ],
            )
    await engine.dispose()
    return [q for q, _kind, _id in generate_queries(people, 20, 11)]


async def _stall_during_burst(
    search: CustomerSearch,
    sessions: async_sessionmaker[AsyncSession],
    queries: list[str],
) -> tuple[float, list[float]]:
    """The loop's worst lateness (ms) while 16 concurrent clients run every query once."""
    worst = 0.0
    stop = asyncio.Event()

    async def monitor() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, (loop.time() - before - 0.001) * 1000)

    latencies: list[float] = []
    pending = list(queries)

    async def client() -> None:
        while pending:
            query = pending.pop()
            started = time.perf_counter()
            # One session per lookup, as each chat message has its own transaction.
            async with sessions() as session:
                scope = Scope(ADMIN, now=datetime.now(UTC))
                await search.search(session, scope=scope, query=query)
            latencies.append(time.perf_counter() - started)

    watcher = asyncio.create_task(monitor())
    await asyncio.gather(*(client() for _ in range(16)))
    stop.set()
    await watcher
    return worst, latencies


async def _freshness(url: str) -> float:
    """Seconds from a commit by 'worker A' until 'worker B' (its own index) finds it."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    worker_b = CustomerSearch()
    async with sessions() as session:
        await worker_b.load(session)
    name = f"新鲜度测试{random.randint(10_000, 99_999)}科技有限公司"
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Customer),
            [
                {
                    "name": name,
                    "name_core": normalize_company_name(name),
                    "aliases": [],
                    "in_pool": True,
                    "created_at": now,
                    "updated_at": now,
                    "tags": [],
                }
            ],
        )
    committed = time.perf_counter()
    while time.perf_counter() - committed < 30:
        async with sessions() as session:
            found = await worker_b.search(
                session, scope=Scope(ADMIN, now=datetime.now(UTC)), query=name[:9]
            )
        if any(f.customer.name == name for f in found):
            break
        await asyncio.sleep(0.05)  # a rep asking again; real time is what we measure here
    else:
        raise RuntimeError("the new customer was not findable within 30 s")
    elapsed = time.perf_counter() - committed
    await engine.dispose()
    return elapsed


async def run(url: str, n: int) -> list[str]:
    queries = await _fill(url, n)
    engine = create_engine(url)
    sessions = session_factory(engine)
    search = CustomerSearch()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    async with sessions() as session:
        await search.load(session)
    build = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worst, latencies = await _stall_during_burst(search, sessions, queries)
    await engine.dispose()
    fresh = await _freshness(url)
    p50, p99, _ = summary_ms(latencies)
    return [
        f"| {n:,} | {build:.1f} | {rss_after - rss_before:.0f} | {p50:.1f} | {p99:.1f} | "
        f"{worst:.1f} | {fresh:.2f} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wecrm-lookup-"))
    databases = {
        "SQLite": f"sqlite:///{tmp / 'lookup.db'}",
        "PostgreSQL": fresh_pg_database("wecrm_bench_lookup"),
    }
    lines = [
        f"## Lookup in the bot ({today()})",
        "",
        f"Machine: {machine()}",
        "",
        f"{args.customers:,} customers; 16 concurrent lookups (admin scope) through "
        "`CustomerSearch.search` (database read of the hits included) while a 1 ms "
        "ticker measures the event loop's worst lateness; freshness is the time until "
        "a second process's index finds a customer another one committed.",
        "",
        "| database | customers | index build s | RSS MB | p50 ms | p99 ms | worst loop "
        "stall ms | new customer findable after s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, url in databases.items():
        upgrade(url)
        for row in asyncio.run(run(url, args.customers)):
            lines.append(f"| {name} {row}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
