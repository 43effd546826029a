"""Fixtures for the simulator and client tests: a populated local WeCom served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.gateway.crypto import CryptoError, WeComCrypto
from bot.simulator import WeComSimulator
from bot.wecom.client import InProcessTokenCache, WeComClient
from crm_store.clock import FakeClock

CORP_ID = "wwsimcorp0123456789"
SECRET = "app-secret-Zq8xR2vB7nK4mW1pL6tY9cJ3hF5dS0gA"
AGENT_ID = 1000002
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def populate(sim: WeComSimulator) -> None:
    """A small company: HQ with a sales subtree and a service department."""
    sim.add_department(1, "总部", 0, leaders=["boss"])
    sim.add_department(2, "销售部", 1, leaders=["wangjl"], order=100)
    sim.add_department(3, "华东销售组", 2, leaders=["liuzz"])
    sim.add_department(4, "客服部", 1)
    sim.add_user("boss", "赵总", [1], is_leader_in_dept=[1], position="总经理")
    sim.add_user("wangjl", "王经理", [2], is_leader_in_dept=[1], direct_leader=["boss"])
    sim.add_user("liuzz", "刘组长", [3], is_leader_in_dept=[1], direct_leader=["wangjl"])
    sim.add_user("zhangsan", "张三", [3], direct_leader=["liuzz"], position="销售")
    sim.add_user("lisi", "李四", [3, 4], main_department=3, direct_leader=["liuzz"])
    sim.add_user("kefu1", "客服一", [4], direct_leader=["boss"])
    sim.add_user("gone", "已停用", [4], status=2)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[WeComSimulator]:
    simulator = WeComSimulator(CORP_ID, SECRET, AGENT_ID, TOKEN, AES_KEY, clock)
    populate(simulator)
    yield simulator
    await simulator.close()


@pytest.fixture
async def sim_server(sim: WeComSimulator) -> AsyncIterator[TestServer]:
    server = TestServer(sim.app)
    # WeCom's own access log is not ours to keep: it would show tokens in query strings
    await server.start_server(access_log=None)
    yield server
    await server.close()


@pytest.fixture
def api_base(sim_server: TestServer) -> str:
    return str(sim_server.make_url("/cgi-bin"))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def make_client(
    api_base: str, http: aiohttp.ClientSession, clock: FakeClock
) -> Callable[..., WeComClient]:
    def make(**overrides: Any) -> WeComClient:
        options: dict[str, Any] = {
            "base_url": api_base,
            "corp_id": CORP_ID,
            "secret": SECRET,
            "agent_id": AGENT_ID,
            "session": http,
            "token_cache": InProcessTokenCache(clock),
            "clock": clock,
            "timeout": 5.0,
        }
        options.update(overrides)
        return WeComClient(**options)

    return make


@pytest.fixture
def client(make_client: Callable[..., WeComClient]) -> WeComClient:
    return make_client()


class Api:
    """Raw calls to the simulator, the way any WeCom client would make them."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def token(self) -> str:
        answer = await self.get("gettoken", corpid=CORP_ID, corpsecret=SECRET)
        assert answer["errcode"] == 0, answer
        return str(answer["access_token"])

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/{path}", params=params) as resp:
            assert resp.status == 200
            return dict(await resp.json())

    async def post(self, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        async with self.http.post(f"{self.base}/{path}", params=params, json=body) as resp:
            assert resp.status == 200
            return dict(await resp.json())

    async def send(self, token: str, **body: Any) -> dict[str, Any]:
        body.setdefault("agentid", AGENT_ID)
        return await self.post("message/send", body, access_token=token)

    async def text(self, token: str, touser: str, content: str, **extra: Any) -> dict[str, Any]:
        return await self.send(
            token, touser=touser, msgtype="text", text={"content": content}, **extra
        )


@pytest.fixture
def api(api_base: str, http: aiohttp.ClientSession) -> Api:
    return Api(api_base, http)


@dataclass
class FakeBot:
    """A minimal callback endpoint: verifies and decrypts with our crypto, records plaintexts."""

    crypto: WeComCrypto
    url: str = ""
    received: list[str] = field(default_factory=list)
    raw_queries: list[str] = field(default_factory=list)
    errors: list[CryptoError] = field(default_factory=list)
    reply: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/wecom/callback", self.verify)
        app.router.add_post("/wecom/callback", self.receive)
        return app

    async def verify(self, request: web.Request) -> web.Response:
        self.raw_queries.append(request.raw_path)
        q = request.query
        try:
            echo = self.crypto.verify_url(
                q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]
            )
        except CryptoError as exc:
            self.errors.append(exc)
            return web.Response(status=403)
        return web.Response(text=echo)

    async def receive(self, request: web.Request) -> web.Response:
        self.raw_queries.append(request.raw_path)
        q = request.query
        try:
            plain = self.crypto.decrypt_post(
                await request.read(), q["msg_signature"], q["timestamp"], q["nonce"]
            )
        except CryptoError as exc:
            self.errors.append(exc)
            return web.Response(status=403)
        self.received.append(plain)
        if self.reply:
            return web.Response(
                text=self.crypto.encrypt_reply(self.reply, timestamp=q["timestamp"], nonce="n1")
            )
        return web.Response(text="")


@pytest.fixture
async def bot(sim: WeComSimulator) -> AsyncIterator[FakeBot]:
    fake = FakeBot(WeComCrypto(TOKEN, AES_KEY, CORP_ID))
    server = TestServer(fake.app())
    await server.start_server(access_log=None)
    fake.url = sim.callback_url = str(server.make_url("/wecom/callback"))
    yield fake
    await server.close()
