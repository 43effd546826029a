"""`wecrm demo`: the bot on SQLite wired to the built-in WeCom simulator, over a seeded company.

A newcomer has no WeCom app yet; this shows the whole path (encrypted callback -> inbox ->
handlers -> outbox -> message/send) on one machine, with a chat page in the browser, a chat
prompt in the terminal and one movable clock for the bot and the simulator alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import func, or_, select

from bot.app import Runtime, create_app, runtime_key
from bot.demo.company import PEOPLE, populate
from bot.demo.seed import SeedReport, is_seeded, seed_company, set_roles
from bot.runtime.channels import OUTBOX_CHANNEL
from bot.settings import Settings, load_settings
from bot.simulator import WeComSimulator
from bot.simulator.clock import MovableClock
from bot.wecom.client import InProcessTokenCache, WeComClient
from bot.wecom.directory import sync_directory
from crm_store.models.messaging import (
    INBOX_PENDING,
    INBOX_PROCESSING,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    InboxMessage,
    OutboxMessage,
)
from crm_store.session import create_engine, session_factory

__all__ = ["DEMO_AGENT_ID", "Demo", "DemoCredentials", "demo_simulator", "main", "run_demo"]

DEMO_AGENT_ID = 1000002
DEFAULT_USER = "zhangwei"
SETTLE_POLL = 0.03  # seconds between "has the bot finished?" checks


@dataclass(frozen=True)
class DemoCredentials:
    corp_id: str
    secret: str
    token: str
    aes_key: str

    @classmethod
    def generate(cls) -> DemoCredentials:
        alphabet = string.ascii_letters + string.digits
        return cls(
            corp_id="wwdemo" + secrets.token_hex(6),
            secret=secrets.token_urlsafe(32),
            token=secrets.token_urlsafe(12),
            aes_key="".join(secrets.choice(alphabet) for _ in range(43)),
        )


def demo_simulator(creds: DemoCredentials, clock: MovableClock) -> WeComSimulator:
    sim = WeComSimulator(
        creds.corp_id, creds.secret, DEMO_AGENT_ID, creds.token, creds.aes_key, clock
    )
    populate(sim)
    return sim


@dataclass
class Demo:
    sim: WeComSimulator
    bot_url: str
    sim_url: str
    runtime: Runtime
    clock: MovableClock
    seeded: SeedReport | None  # None when the database already had the company

    @property
    def page_url(self) -> str:
        return f"{self.sim_url}/"


async def prepare(
    database_url: str, creds: DemoCredentials, sim_url: str, clock: MovableClock, tz: ZoneInfo
) -> SeedReport | None:
    """Sync the directory, set roles and seed the company once; the database is migrated."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with aiohttp.ClientSession() as http:
            client = WeComClient(
                base_url=f"{sim_url}/cgi-bin/",
                corp_id=creds.corp_id,
                secret=creds.secret,
                agent_id=DEMO_AGENT_ID,
                session=http,
                token_cache=InProcessTokenCache(clock),
                clock=clock,
            )
            await sync_directory(client, sessions, now=clock.now())
        await set_roles(sessions, now=clock.now())
        if await is_seeded(sessions):
            return None
        started = time.perf_counter()
        report = await seed_company(sessions, now=clock.now(), tz=tz)
        report.seconds = time.perf_counter() - started
        return report
    finally:
        await engine.dispose()


async def settle(runtime: Runtime) -> None:
    """Return once no message waits to be handled and no reply is due to be sent."""
    inbox_busy = InboxMessage.status.in_([INBOX_PENDING, INBOX_PROCESSING])
    while True:
        now = runtime.clock.now()
        outbox_busy = or_(
            OutboxMessage.status == OUTBOX_SENDING,
            (OutboxMessage.status == OUTBOX_PENDING) & (OutboxMessage.next_attempt_at <= now),
        )
        async with runtime.sessions() as session:
            waiting = await session.scalar(
                select(func.count()).select_from(InboxMessage).where(inbox_busy)
            )
            owed = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(outbox_busy)
            )
        if not waiting and not owed:
            return
        await asyncio.sleep(SETTLE_POLL)


@asynccontextmanager
async def run_demo(
    database_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    sim_port: int = 0,
    clock: MovableClock | None = None,
    background: bool = True,
) -> AsyncIterator[Demo]:
    """Start the simulator and the bot on one movable clock; the database must be migrated.

    background=False (the tour) leaves the worker, relay and scheduler to be driven by hand.
    """
    creds = DemoCredentials.generate()
    clock = clock or MovableClock()
    sim = demo_simulator(creds, clock)
    async with sim.serve(host=host, port=sim_port) as sim_url:
        settings: Settings = load_settings(
            WECOM_CORP_ID=creds.corp_id,
            WECOM_AGENT_ID=DEMO_AGENT_ID,
            WECOM_SECRET=creds.secret,
            WECOM_TOKEN=creds.token,
            WECOM_AES_KEY=creds.aes_key,
            WECOM_API_BASE=f"{sim_url}/cgi-bin/",
            WECRM_DATABASE_URL=database_url,
            WECRM_REDIS_URL="",
        )
        sim.tz = settings.tz
        report = await prepare(database_url, creds, sim_url, clock, settings.tz)
        app = create_app(
            settings,
            role="all" if background else "web",
            clock=clock,
            background=background,
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        address = runner.addresses[0]
        bot_url = f"http://{address[0]}:{address[1]}"
        sim.callback_url = f"{bot_url}/wecom/callback"
        runtime = app[runtime_key]

        async def wake() -> None:
            await runtime.notifier.notify("scheduler")
            await runtime.notifier.notify(OUTBOX_CHANNEL)

        async def settled() -> None:
            if background:  # a moved clock may have made reminders or SLA notices due
                await runtime.scheduler.run_due()
            await settle(runtime)

        sim.clock_listeners.append(wake)
        sim.settle_hook = settled
        try:
            yield Demo(sim, bot_url, sim_url, runtime, clock, report)
        finally:
            await sim.close()
            await runner.cleanup()


async def main(
    database_url: str, *, host: str, port: int, sim_port: int, interactive: bool
) -> None:
    from bot.cli.chat import TerminalChat

    async with run_demo(database_url, host=host, port=port, sim_port=sim_port) as demo:
        if demo.seeded is not None:
            s = demo.seeded
            print(
                f"演示公司已生成 (demo company seeded): {s.customers} 客户, {s.contacts} 联系人, "
                f"{s.followups} 跟进, {s.deals} 商机, {s.tickets} 工单, {s.seconds:.1f}s"
            )
        print(f"聊天页面 (chat page):  {demo.page_url}")
        print(f"bot callback:          {demo.bot_url}/wecom/callback")
        print(f"terminal chat:         wecrm chat --sim {demo.sim_url} --as {DEFAULT_USER}")
        print("people:                " + " ".join(p.userid for p in PEOPLE))
        if interactive and sys.stdin.isatty():
            await TerminalChat(demo.sim_url, DEFAULT_USER).run()
        else:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
