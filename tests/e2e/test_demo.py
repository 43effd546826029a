"""`wecrm demo` as a newcomer meets it: SQLite, no Redis, the simulator, `帮助` answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from bot.demo import run_demo
from crm_store.migrate import upgrade


async def _messages(http: aiohttp.ClientSession, sim_url: str, user: str) -> list[str]:
    async with http.get(f"{sim_url}/sim/messages", params={"to": user}) as resp:
        return [m["text"] for m in (await resp.json())["messages"]]


async def test_demo_answers_help_through_the_encrypted_callback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)
    async with run_demo(url, port=0) as demo, aiohttp.ClientSession() as http:
        assert demo.runtime.settings.redis_url is None
        async with http.post(
            f"{demo.sim_url}/sim/say", json={"from": "zhangsan", "text": "帮助"}
        ) as resp:
            assert (await resp.json())["status"] == 200
        # The demo's worker and relay run in the background: wait (bounded) for the reply.
        for _ in range(500):
            seen = await _messages(http, demo.sim_url, "zhangsan")
            if seen:
                break
            await asyncio.sleep(0.02)
        assert seen and "CRM 助手" in seen[0]
        # The directory was synced at start, so the demo people can use the CRM at once.
        async with http.post(
            f"{demo.sim_url}/sim/say", json={"from": "zhangsan", "text": "我的客户"}
        ) as resp:
            assert resp.status == 200
        for _ in range(500):
            seen = await _messages(http, demo.sim_url, "zhangsan")
            if len(seen) > 1:
                break
            await asyncio.sleep(0.02)
        assert "名下还没有客户" in seen[1]
