"""Server-side timeouts of `wecrm serve`: raw sockets against the server it starts.

Short limits keep the test quick; the socket reads below wait for the server's answer (with a
deadline), they do not sleep for time to pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from sqlalchemy import func, select
from yarl import URL

from bot.app import create_app, runtime_key
from bot.serve import ServerLimits, bound_url, start_server
from bot.simulator import WeComSimulator
from crm_store.clock import FakeClock
from crm_store.models import InboxMessage
from tests.e2e.conftest import make_settings

LIMITS = ServerLimits(keepalive_timeout=0.5, body_timeout=0.5, lingering_time=0.2)
CUT_WITHIN = 3.0  # seconds: well below WeCom's 5 s, far below "never"


@pytest.fixture
async def served(
    sim: WeComSimulator, sim_base: str, db_url: str, clock: FakeClock
) -> AsyncIterator[tuple[web.Application, str]]:
    app = create_app(
        make_settings(sim_base, db_url),
        role="web",
        clock=clock,
        background=False,
        person_fetcher_factory=None,
        limits=LIMITS,
    )
    runner = await start_server(app, host="127.0.0.1", port=0, limits=LIMITS)
    url = bound_url(runner)
    sim.callback_url = f"{url}/wecom/callback"
    yield app, url
    await runner.cleanup()


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parsed = URL(url)
    return await asyncio.open_connection(parsed.host, parsed.port)


async def _trickle_until_cut(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, byte: bytes
) -> bytes:
    """Send one byte per 0.1 s until the server answers or hangs up; what it said."""
    answer = b""
    async with asyncio.timeout(CUT_WITHIN):
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.1)
            except TimeoutError:
                writer.write(byte)
                continue
            if not chunk:
                return answer
            answer += chunk


async def test_a_slow_loris_body_is_cut(served: tuple[web.Application, str]) -> None:
    _, url = served
    reader, writer = await _connect(url)
    writer.write(
        b"POST /wecom/callback?msg_signature=a&timestamp=1&nonce=1 HTTP/1.1\r\n"
        b"Host: bot\r\nContent-Type: text/xml\r\nContent-Length: 4000\r\n\r\n<"
    )
    answer = await _trickle_until_cut(reader, writer, b"x")
    assert answer.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_slow_headers_are_cut(served: tuple[web.Application, str]) -> None:
    _, url = served
    reader, writer = await _connect(url)
    writer.write(b"POST /wecom/callback HTTP/1.1\r\nHost: bot\r\nX-Slow: ")
    assert await _trickle_until_cut(reader, writer, b"a") == b""
    writer.close()


async def test_idle_connections_are_closed(served: tuple[web.Application, str]) -> None:
    _, url = served
    silent_reader, silent = await _connect(url)  # connects and never says a word
    reader, writer = await _connect(url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: keep-alive\r\n\r\n")
    async with asyncio.timeout(CUT_WITHIN):
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        while await reader.read(4096):  # the body, then the server closes the idle connection
            pass
        assert await silent_reader.read() == b""
    writer.close()
    silent.close()


async def test_a_real_callback_through_the_served_endpoint(
    served: tuple[web.Application, str], sim: WeComSimulator
) -> None:
    app, _ = served
    assert await sim.send_text("zhangsan", "帮助", msg_id=31337) == (200, "")
    async with app[runtime_key].sessions() as session:
        count = await session.scalar(select(func.count()).select_from(InboxMessage))
    assert count == 1
