"""One pass of the SLA notice job over many open tickets, on SQLite and PostgreSQL.

    python -m bench.bench_sla --tickets 100000

Every ticket has three clocks; about 1 % cross a warning or breach in the catch-up window.
Reports the pass time and the number of SQL statements it ran (bounded, whatever the count).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert

from bench.common import fresh_pg_database, machine, today
from crm_store.migrate import upgrade
from crm_store.models import Department, Staff, StaffDepartment
from crm_store.models.service import Ticket, TicketSla
from crm_store.session import create_engine, session_factory
from handlers.service.jobs import sla_notices

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
AGENTS = [f"kf{i}" for i in range(20)]


async def _fill(url: str, n: int) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Department), [{"id": 5, "parent_id": None, "name": "客服", "order": 0}]
        )
        await conn.execute(
            insert(Staff),
            [
                {"userid": u, "name": u, "role": "service", "active": True, "direct_leaders": [],
                 "created_at": NOW, "updated_at": NOW}
                for u in [*AGENTS, "leader"]
            ],
        )  # fmt: skip
        await conn.execute(
            insert(StaffDepartment),
            [
                {"userid": u, "department_id": 5, "is_leader": u == "leader"}
                for u in [*AGENTS, "leader"]
            ],
        )
        for start in range(0, n, 5000):
            rows, clocks = [], []
            for i in range(start, min(n, start + 5000)):
                # 1 in 100 crosses a threshold within the last hour, the rest are due later
                offset = (
                    timedelta(minutes=-(i % 60)) if i % 100 == 0 else timedelta(hours=2 + i % 500)
                )
                rows.append(
                    {"id": i + 1, "number": str(i + 1), "opened_by": AGENTS[i % 20],
                     "assignee_id": AGENTS[i % 20], "priority": "P3", "category": "故障",
                     "status": "in_progress", "content": f"问题{i}", "attachments": [],
                     "created_at": NOW - timedelta(days=1), "updated_at": NOW,
                     "sla_due_at": NOW + offset}
                )  # fmt: skip
                for target in ("first_response", "next_response", "resolution"):
                    clocks.append(
                        {"ticket_id": i + 1, "target": target, "state": "running",
                         "budget_seconds": 32400, "business_hours": True, "used_seconds": 0,
                         "started_at": NOW - timedelta(days=1), "warn_at": NOW + offset,
                         "due_at": NOW + offset + timedelta(hours=2), "breached": False}
                    )  # fmt: skip
            await conn.execute(insert(Ticket), rows)
            await conn.execute(insert(TicketSla), clocks)
    await engine.dispose()


async def _pass(url: str) -> tuple[float, int, int]:
    engine = create_engine(url)
    statements = 0

    def count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    sessions = session_factory(engine)
    async with sessions() as session:
        await sla_notices(session, now=NOW, tz=TZ)  # warm the caches once
    statements = 0
    async with sessions() as session:
        started = time.perf_counter()
        found = await sla_notices(session, now=NOW, tz=TZ)
        elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed, statements, len(found)


async def main(n: int, pg_url: str, out: Path | None) -> None:
    print(machine())
    lines = [
        f"## SLA scan (bench/bench_sla.py, {today()})",
        "",
        f"Machine: {machine()}",
        "",
        f"One pass of the service.sla job over {n:,} open tickets with three running clocks "
        "each, 1 % of them crossing a warning or breach in the window (rendering the notices "
        "included, writing them not).",
        "",
        "| database | open tickets | one pass ms | SQL statements | notices |",
        "|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'sla.db'}"
        for name, url in (("SQLite", sqlite_url), ("PostgreSQL", pg_url)):
            await asyncio.to_thread(upgrade, url)
            await _fill(url, n)
            elapsed, statements, found = await _pass(url)
            print(f"{name}: {n} open tickets, one pass {elapsed * 1000:.0f} ms, "
                  f"{statements} SQL statements, {found} notices")  # fmt: skip
            lines.append(f"| {name} | {n:,} | {elapsed * 1000:.0f} | {statements} | {found:,} |")
    lines += ["", "Goal: one pass under 1 s on SQLite and PostgreSQL.", ""]
    if out is not None:
        await asyncio.to_thread(out.write_text, "\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    asyncio.run(main(args.tickets, fresh_pg_database("wecrm_bench_sla"), args.out))
