"""A real `wecrm serve` process sent SIGTERM mid-batch: nothing is lost, nothing is doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.simulator import WeComSimulator
from crm_store.clock import SystemClock
from crm_store.models import InboxMessage, OutboxMessage
from crm_store.session import create_engine, session_factory
from tests.e2e.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN

USERS = [f"rep{i:02d}" for i in range(12)]
WECRM = Path(sys.executable).with_name("wecrm")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def live_sim() -> AsyncIterator[tuple[WeComSimulator, str]]:
    """The simulator on a real port, on the real clock (callbacks are signed with it)."""
    sim = WeComSimulator(CORP_ID, SECRET, AGENT_ID, TOKEN, AES_KEY, SystemClock())
    sim.add_department(1, "总部", 0)
    for user in USERS:
        sim.add_user(user, user, [1])
    async with sim.serve() as url:
        yield sim, url
    await sim.close()


async def start_serve(db_url: str, sim_url: str, port: int) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": str(AGENT_ID),
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": f"{sim_url}/cgi-bin/",
        "WECRM_DATABASE_URL": db_url,
        "WECRM_REDIS_URL": "",
        "WECRM_SHUTDOWN_GRACE": "1",
        "WECRM_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        str(WECRM),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        while True:  # a child process: poll until it listens
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            if process.returncode is not None:
                raise AssertionError(f"wecrm serve exited: {await _stderr(process)}")
            await asyncio.sleep(0.1)


async def _stderr(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    return (await process.stderr.read()).decode(errors="replace")[-4000:]


async def terminate(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        code = await process.wait()
    assert code == 0, await _stderr(process)


async def counts(db_url: str) -> dict[str, int]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            inbox_rows = await session.execute(
                select(InboxMessage.status, func.count()).group_by(InboxMessage.status)
            )
            outbox_rows = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            return {
                **{f"inbox:{s}": n for s, n in inbox_rows.all()},
                **{f"outbox:{s}": n for s, n in outbox_rows.all()},
            }
    finally:
        await engine.dispose()


async def wait_for(db_url: str, done: int) -> dict[str, int]:
    async with asyncio.timeout(120):
        while True:  # a child process: poll the database until it got there
            seen = await counts(db_url)
            if seen.get("inbox:done", 0) >= done and not (
                seen.get("outbox:pending") or seen.get("outbox:sending")
            ):
                return seen
            await asyncio.sleep(0.2)


async def test_sigterm_mid_batch_loses_nothing_and_doubles_nothing(
    db_url: str, live_sim: tuple[WeComSimulator, str]
) -> None:
    sim, sim_url = live_sim
    # Meeting each newcomer (user/get) takes 3 s, past the 1 s grace: batches are mid-way.
    sim.delay_next("user/get", 3.0, times=len(USERS))
    sim.delay_next("message/send", 0.3, times=1000)
    port = free_port()
    first = await start_serve(db_url, sim_url, port)
    sim.callback_url = f"http://127.0.0.1:{port}/wecom/callback"
    try:
        for _ in range(3):
            for user in USERS:
                assert await sim.send_text(user, "帮助") == (200, "")
        async with asyncio.timeout(60):
            while True:  # a child process: poll until it is meeting the first senders
                if sim.calls["user/get"]:
                    break
                await asyncio.sleep(0.05)
    finally:
        await terminate(first)
    stopped = await counts(db_url)
    assert not stopped.get("inbox:processing") and not stopped.get("outbox:sending")
    assert sum(v for k, v in stopped.items() if k.startswith("inbox:")) == 3 * len(USERS)
    assert stopped.get("inbox:pending", 0) > 0  # it was stopped mid-stream

    sim.faults.clear()
    sim.release_delays()
    second = await start_serve(db_url, sim_url, free_port())
    try:
        final = await wait_for(db_url, done=3 * len(USERS))
    finally:
        await terminate(second)
    assert final.get("inbox:done") == 3 * len(USERS) and not final.get("inbox:failed")
    owed = final["outbox:sent"]
    delivered = sum(len(sim.messages_to(user)) for user in USERS)
    assert delivered == owed  # every reply reached its person exactly once
    for user in USERS:
        assert len([t for t in sim.screen(user) if "CRM 助手" in t]) == 3, [
            t[:40] for t in sim.screen(user)
        ]
