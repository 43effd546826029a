"""A bot wired to the local WeCom simulator: encrypted callbacks in, captured messages out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Runtime, create_app, runtime_key
from bot.settings import Settings, load_settings
from bot.simulator import WeComSimulator
from crm_store import staff
from crm_store.clock import FakeClock

CORP_ID = "wwe2ecorp000000001"
SECRET = "e2e-secret-7Hq2Lm9Xv4Bn8Cz1Dw6Fy3Gt5Jk0Pa"
AGENT_ID = 1000002
TOKEN = "e2eToken42"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
DEFAULT_PEOPLE = [("zhangsan", "张三"), ("lisi", "李四"), ("wangwu", "王五")]


@dataclass
class BotHarness:
    """What an end-to-end test needs: the simulator, the bot's client and its runtime."""

    sim: WeComSimulator
    client: TestClient
    app: web.Application
    clock: FakeClock

    @property
    def runtime(self) -> Runtime:
        return self.app[runtime_key]

    @property
    def callback_url(self) -> str:
        return str(self.client.make_url("/wecom/callback"))

    async def add_person(self, userid: str, name: str) -> None:
        """Someone new in WeCom and in the bot's directory (as a sync would leave them)."""
        self.sim.add_user(userid, name, [1])
        await _seed_people(self, [(userid, name)])

    async def drain(self) -> None:
        """Run the worker and the relay until nothing is due now (arq's burst mode)."""
        for _ in range(20):
            handled = await self.runtime.worker.run_until_idle()
            sent = await self.runtime.relay.run_until_idle()
            if not handled and not sent:
                return

    async def say(self, user: str, text: str, msg_id: int | None = None) -> list[str]:
        """Send a text as `user` and return the texts that user newly sees."""
        before = len(self.sim.screen(user))
        status, body = await self.sim.send_text(user, text, msg_id=msg_id)
        assert (status, body) == (200, "")
        await self.drain()
        return self.sim.screen(user)[before:]

    async def tap(self, user: str, key_prefix: str) -> list[str]:
        """Press the newest button of `user` whose key starts with `key_prefix`."""
        for message in reversed(self.sim.messages_to(user)):
            for button in message.payload.get("button_list") or []:
                if str(button.get("key", "")).startswith(key_prefix):
                    before = len(self.sim.screen(user))
                    status, _ = await self.sim.click_card(
                        user, message.payload["task_id"], button["key"]
                    )
                    assert status == 200
                    await self.drain()
                    return self.sim.screen(user)[before:]
        raise AssertionError(f"{user} has no button {key_prefix!r}")


def make_settings(
    api_base: str, db_url: str, redis_url: str | None = None, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": AGENT_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": api_base,
        "WECRM_DATABASE_URL": db_url,
        "WECRM_REDIS_URL": redis_url,
        **extra,
    }
    return load_settings(**values)


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[WeComSimulator]:
    simulator = WeComSimulator(CORP_ID, SECRET, AGENT_ID, TOKEN, AES_KEY, clock)
    simulator.add_department(1, "总部", 0)
    for userid, name in DEFAULT_PEOPLE:
        simulator.add_user(userid, name, [1])
    yield simulator
    await simulator.close()


@pytest.fixture
async def sim_base(sim: WeComSimulator) -> AsyncIterator[str]:
    server = TestServer(sim.app)
    await server.start_server(access_log=None)
    yield str(server.make_url("/cgi-bin"))
    await server.close()


BotFactory = Callable[..., "AsyncIterator[BotHarness]"]


@pytest.fixture
def make_bot(
    sim: WeComSimulator, sim_base: str, db_url: str, clock: FakeClock, aiohttp_client: Any
) -> Callable[..., Any]:
    """Build a bot (role web, loops driven by hand) with optional Redis and extra settings.

    Staff come from the database only unless a `fetcher` factory meets newcomers from WeCom."""

    async def make(redis_url: str | None = None, fetcher: Any = None, **extra: Any) -> BotHarness:
        settings = make_settings(sim_base, db_url, redis_url, **extra)
        app = create_app(
            settings,
            role="web",
            clock=clock,
            background=False,
            person_fetcher_factory=fetcher,
        )
        client = await aiohttp_client(app)
        sim.callback_url = str(client.make_url("/wecom/callback"))
        harness = BotHarness(sim=sim, client=client, app=app, clock=clock)
        await _seed_people(harness)
        return harness

    return make


async def _seed_people(bot: BotHarness, people: list[tuple[str, str]] | None = None) -> None:
    """The simulator's people are in the bot's directory too, as reps (a synced company)."""
    now = bot.clock.now()
    async with bot.runtime.sessions.begin() as session:
        await staff.upsert_department(
            session, department_id=1, name="总部", parent_id=None, now=now
        )
        for userid, name in people or DEFAULT_PEOPLE:
            await staff.upsert_staff(
                session,
                userid=userid,
                name=name,
                department_ids=[1],
                main_department_id=1,
                leader_in=[],
                direct_leaders=[],
                now=now,
            )


@pytest.fixture
async def bot(make_bot: Callable[..., Any]) -> BotHarness:
    return await make_bot()
