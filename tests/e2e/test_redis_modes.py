"""Redis is an accelerator: absent, down at start or killed mid-run, answers come once."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.gateway.callback import callback_state_key
from tests.e2e.conftest import BotHarness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of our own, so the test may kill it without hurting anyone else."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            proc.poll()
            if proc.returncode is not None:
                pytest.fail("private redis-server did not start")
            import time

            time.sleep(0.02)  # waiting for a child process to listen, not for time to pass
    client.close()
    yield f"redis://127.0.0.1:{port}/0", proc
    proc.kill()
    proc.wait()


async def _say_twice(bot: BotHarness, user: str, msg_id: int) -> list[str]:
    first = await bot.say(user, "帮助", msg_id=msg_id)
    again = await bot.say(user, "帮助", msg_id=msg_id)  # WeCom's retry
    return first + again


async def test_with_real_redis(make_bot: Any, redis_url: str) -> None:
    bot: BotHarness = await make_bot(redis_url=redis_url)
    assert bot.runtime.cache.configured and bot.runtime.cache.healthy
    assert len(await _say_twice(bot, "zhangsan", 1)) == 1
    report = await (await bot.client.get("/readyz")).json()
    assert report["status"] == "ok" and "ok" in report["redis"]


async def test_redis_down_at_start(make_bot: Any) -> None:
    bot: BotHarness = await make_bot(redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    assert len(await _say_twice(bot, "zhangsan", 2)) == 1
    resp = await bot.client.get("/readyz")
    report = await resp.json()
    assert resp.status == 200 and report["status"] == "degraded" and "down" in report["redis"]


async def test_redis_killed_mid_run(make_bot: Any, private_redis: Any) -> None:
    url, proc = private_redis
    bot: BotHarness = await make_bot(redis_url=url)
    assert len(await bot.say("zhangsan", "帮助", msg_id=3)) == 1
    proc.kill()
    await asyncio.to_thread(proc.wait)
    # The retry of an already-answered message is still recognised (the database's key),
    # new messages are still answered, and tokens come from the local cache.
    assert await bot.say("zhangsan", "帮助", msg_id=3) == []
    assert len(await bot.say("lisi", "帮助", msg_id=4)) == 1
    assert bot.runtime.cache.healthy is False
    report = await (await bot.client.get("/readyz")).json()
    assert report["status"] == "degraded"


async def test_tokens_are_shared_through_redis(make_bot: Any, redis_url: str) -> None:
    """Two bot processes (here: two runtimes) share one token: one gettoken for both."""
    first: BotHarness = await make_bot(redis_url=redis_url)
    await first.say("zhangsan", "帮助")
    calls = first.sim.token_calls
    second: BotHarness = await make_bot(redis_url=redis_url)
    await second.say("lisi", "帮助")
    assert second.sim.token_calls == calls


async def test_without_redis_the_in_process_cache_answers_everything(bot: BotHarness) -> None:
    """The embedded default: no Redis, no fast path, the database's key dedups alone."""
    cache = bot.runtime.cache
    assert not cache.configured and cache.healthy and await cache.ping()
    assert await cache.exists_fast("wecrm:seen:x") is False
    await cache.set_fast("wecrm:seen:x", "1", 60)
    assert await cache.exists_fast("wecrm:seen:x") is False  # never claims "seen"
    assert len(await _say_twice(bot, "zhangsan", 5)) == 1
    report = await (await bot.client.get("/readyz")).json()
    assert report["status"] == "ok" and report["redis"] == "not configured (in-process cache)"


async def test_the_redis_fast_path_answers_a_retry_without_the_database(
    make_bot: Any, redis_url: str
) -> None:
    bot: BotHarness = await make_bot(redis_url=redis_url)
    assert len(await bot.say("zhangsan", "帮助", msg_id=6)) == 1
    assert await bot.runtime.cache.exists_fast("wecrm:seen:msg:6")
    batches = bot.app[callback_state_key].batcher.stats.batches
    assert await bot.say("zhangsan", "帮助", msg_id=6) == []
    assert bot.app[callback_state_key].batcher.stats.batches == batches  # Redis answered it
