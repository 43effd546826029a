"""A database that refuses, drops packets or cannot be opened: 503 within 1 s, one log line.

Each case is its own kind of outage (PostgreSQL on a closed port, PostgreSQL behind a black
hole, an SQLite file that cannot be opened), so these tests choose their database URL rather
than running on the shared `db_url` fixture.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.simulator import WeComSimulator
from crm_store.clock import FakeClock
from tests.e2e.conftest import make_settings

BUDGET = 1.0  # seconds: the ack answers within this whatever the database does


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def black_hole() -> AsyncIterator[int]:
    """A TCP listener that accepts connections and never says a word (dropped packets)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def app_on(
    sim: WeComSimulator, sim_base: str, clock: FakeClock, aiohttp_client: Any
) -> Callable[[str], Any]:
    async def make(database_url: str) -> TestClient:
        settings = make_settings(sim_base, database_url)
        app = create_app(
            settings,
            role="web",
            clock=clock,
            background=False,
            person_fetcher_factory=None,
        )
        client: TestClient = await aiohttp_client(app)
        sim.callback_url = str(client.make_url("/wecom/callback"))
        return client

    return make


async def _assert_refused_fast(
    sim: WeComSimulator, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    results = []
    for msg_id in range(5):
        started = time.monotonic()
        status, body = await sim.send_text("zhangsan", "帮助", msg_id=9000 + msg_id)
        results.append((status, time.monotonic() - started))
        assert "Traceback" not in body
    assert all(status == 503 for status, _ in results), results
    assert all(elapsed < BUDGET for _, elapsed in results), results
    # Five refusals of one kind, one log line, and no traceback anywhere.
    failures = [r for r in caplog.records if "inbox insert failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)

    started = time.monotonic()
    resp = await client.get("/readyz")
    report = await resp.json()
    assert time.monotonic() - started < BUDGET
    assert resp.status == 503 and report["status"] == "unavailable"
    assert report["database"].startswith("unreachable")


async def test_postgresql_on_a_closed_port_answers_503_at_once(
    app_on: Any, sim: WeComSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    client = await app_on(f"postgresql://postgres@127.0.0.1:{_free_port()}/wecrm")
    await _assert_refused_fast(sim, client, caplog)


async def test_postgresql_behind_a_black_hole_answers_503_within_a_second(
    app_on: Any, sim: WeComSimulator, black_hole: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = await app_on(f"postgresql://postgres@127.0.0.1:{black_hole}/wecrm")
    await _assert_refused_fast(sim, client, caplog)


async def test_sqlite_file_that_cannot_be_opened_answers_503(
    app_on: Any, sim: WeComSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await app_on(f"sqlite:///{tmp_path / 'missing-dir' / 'wecrm.db'}")
    await _assert_refused_fast(sim, client, caplog)
