"""Opening a ticket vs a lookup, as a service agent's message through the whole bot.

    python -m bench.bench_ticket_open --customers 5000 --samples 100 --out /tmp/ticket.md

Both messages go the same way in the same run: an encrypted callback to the bot, the worker
(customer resolution, and for 工单 the ticket, its SLA clocks, audit, the owner's notice), the
relay to the simulator's message/send. Interleaved, so load on the machine hits both alike.
Goal: `工单 <客户> <问题>` adds no more than one lookup's latency (its p50 at most twice 查's).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select

from bench.common import machine, summary_ms, today
from bench.corpus import generate_customers
from bot.app import create_app, runtime_key
from bot.settings import load_settings
from bot.simulator import WeComSimulator
from crm_store import staff
from crm_store.clock import SystemClock
from crm_store.migrate import upgrade
from crm_store.models import Customer, Ticket
from crm_store.names import normalize_company_name

CORP_ID, SECRET, AGENT_ID = "wwbenchticket00001", "bench-secret-0123456789abcdef", 1000002
TOKEN, AES_KEY = "benchToken", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


async def _seed(sessions: Any, n: int) -> list[str]:
    now = datetime.now(UTC) - timedelta(hours=1)
    async with sessions.begin() as session:
        for dept, name in ((1, "总部"), (2, "销售部"), (5, "客服部")):
            await staff.upsert_department(
                session, department_id=dept, name=name, parent_id=None if dept == 1 else 1, now=now
            )
        for userid, dept in (("zhangsan", 2), ("kefu1", 5)):
            await staff.upsert_staff(
                session, userid=userid, name=userid, department_ids=[dept], now=now
            )
        await staff.set_role(session, userid="kefu1", role="service", by="bench", now=now)
        people = generate_customers(n)
        await session.execute(
            insert(Customer),
            [
                {"name": c.name, "name_core": normalize_company_name(c.name)[:200],
                 "aliases": list(c.aliases), "in_pool": False, "owner_id": "zhangsan",
                 "created_at": now, "updated_at": now, "tags": []}
                for c in people
            ],
        )  # fmt: skip
    return sorted({c.name for c in people})


async def main(customers: int, samples: int, out: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ticket.db'}"
        await asyncio.to_thread(upgrade, url)
        clock = SystemClock()
        sim = WeComSimulator(CORP_ID, SECRET, AGENT_ID, TOKEN, AES_KEY, clock)
        sim.add_department(1, "总部", 0)
        for userid in ("zhangsan", "kefu1"):
            sim.add_user(userid, userid, [1])
        sim_server = TestServer(sim.app)
        await sim_server.start_server(access_log=None)
        settings = load_settings(
            WECOM_CORP_ID=CORP_ID, WECOM_AGENT_ID=AGENT_ID, WECOM_SECRET=SECRET,
            WECOM_TOKEN=TOKEN, WECOM_AES_KEY=AES_KEY,
            WECOM_API_BASE=str(sim_server.make_url("/cgi-bin")), WECRM_DATABASE_URL=url,
            WECRM_MEDIA_DIR=str(Path(tmp) / "media"),
        )  # fmt: skip

        app = create_app(
            settings, role="web", clock=clock, background=False, person_fetcher_factory=None
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        sim.callback_url = str(client.make_url("/wecom/callback"))
        runtime = app[runtime_key]
        names = await _seed(runtime.sessions, customers)
        await runtime.search.load_from(runtime.sessions)

        async def timed(text: str) -> float:
            started = time.perf_counter()
            status, _ = await sim.send_text("kefu1", text)
            assert status == 200
            while await runtime.worker.run_until_idle() or await runtime.relay.run_until_idle():
                pass
            return time.perf_counter() - started

        lookups: list[float] = []
        opens: list[float] = []
        for i in range(samples + 5):
            name = names[(i * 7919) % len(names)]
            look = await timed(f"查 {name}")
            opened = await timed(f"工单 {name} 系统登录不上去，一直报错500，客户很着急")
            if i >= 5:  # the first few warm caches and the token
                lookups.append(look)
                opens.append(opened)
        async with runtime.sessions() as session:
            tickets = int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)
        await client.close()
        await sim_server.close()
        await sim.close()
    look_p50, look_p99, look_mean = summary_ms(lookups)
    open_p50, open_p99, open_mean = summary_ms(opens)
    added = open_p50 - look_p50
    verdict = "met" if added <= look_p50 else "not met"
    lines = [
        f"## Opening a ticket vs a lookup in the bot ({today()})",
        "",
        f"Machine: {machine()}",
        "",
        f"SQLite, {customers:,} customers, one service agent; {samples} of each message, "
        "interleaved. Time from the encrypted callback POST to the reply accepted by the "
        "simulator's message/send (ack, worker, relay; the owner's notice of the 工单 included).",
        "",
        "| message | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|",
        f"| `查 <客户>` | {look_p50:.1f} | {look_p99:.1f} | {look_mean:.1f} |",
        f"| `工单 <客户> <问题>` | {open_p50:.1f} | {open_p99:.1f} | {open_mean:.1f} |",
        "",
        f"Goal: opening a ticket adds no more than one lookup's latency: it adds "
        f"{added:.1f} ms at p50 to a lookup of {look_p50:.1f} ms ({verdict}); "
        f"{tickets} tickets opened for {samples + 5} messages.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if out is not None:
        await asyncio.to_thread(out.write_text, text, encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.samples, args.out))
