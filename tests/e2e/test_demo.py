"""`wecrm demo` as a newcomer meets it: a seeded company on SQLite with no Redis, the simulator,
the tour, and `wecrm chat` through standard input and through a pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.demo import Demo, run_demo
from bot.demo.tour import run_tour
from bot.simulator.clock import MovableClock
from crm_store.clock import FakeClock
from crm_store.migrate import upgrade
from crm_store.models import Customer, Followup, Opportunity, Task, Ticket

TUESDAY_10AM = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
CHAT = [sys.executable, "-c", "from bot.cli.main import main; main()", "chat"]


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)
    async with run_demo(url, port=0, clock=MovableClock(FakeClock(TUESDAY_10AM))) as running:
        yield running


async def _count(demo: Demo, model: type) -> int:
    async with demo.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_demo_company_is_seeded_once_and_answers(demo: Demo, tmp_path: Path) -> None:
    assert demo.runtime.settings.redis_url is None
    assert demo.seeded is not None and demo.seeded.customers == 500
    assert await _count(demo, Customer) == 500
    assert await _count(demo, Followup) > 500 and await _count(demo, Opportunity) > 100
    assert await _count(demo, Ticket) > 20 and await _count(demo, Task) > 100
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{demo.sim_url}/sim/say", json={"from": "zhangwei", "text": "我的客户"}
        ) as resp:
            assert (await resp.json())["status"] == 200
        async with http.post(f"{demo.sim_url}/sim/settle") as resp:
            assert (await resp.json())["settled"] is True
        async with http.get(
            f"{demo.sim_url}/sim/history", params={"user": "zhangwei", "after": "0"}
        ) as resp:
            entries = (await resp.json())["entries"]
    assert entries[0]["dir"] == "in" and entries[0]["text"] == "我的客户"
    answers = [e for e in entries if e["dir"] == "out"]
    assert answers and "名下还没有客户" not in answers[0]["text"]
    # Running again on the same database keeps the company instead of seeding a second one.
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    async with run_demo(url, port=0, clock=MovableClock(FakeClock(TUESDAY_10AM))) as again:
        assert again.seeded is None
        assert await _count(again, Customer) == 500


async def test_the_tour_walks_every_step() -> None:
    lines: list[str] = []
    assert await run_tour(out=lines.append) == 0
    transcript = "\n".join(lines)
    assert "✗" not in transcript and transcript.count("✓") >= 13
    assert "跟进提醒" in transcript and "即将超时" in transcript


async def _chat(demo: Demo, stdin: bytes, user: str = "zhangwei") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *CHAT,
        "--sim",
        demo.sim_url,
        "--as",
        user,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin), 60)
    return process.returncode or 0, out.decode()


async def test_wecrm_chat_reads_a_script_on_stdin(demo: Demo) -> None:
    script = "\n".join(
        [
            "查 hzyq",
            "跟进 云栖 今天电话沟通了需求，明天上午9点打电话确认",
            "/tap 1",
            "/as nobody",
            "/clock 09:00 明天",
            "/as lina",
            "/quit",
        ]
    )
    code, out = await _chat(demo, b"\xff\xfe broken\n" + script.encode())
    assert code == 0, out
    assert "抱歉，我没看懂“\ufffd\ufffd broken”" in out  # broken UTF-8 is replaced, not fatal
    assert "杭州云栖科技有限公司" in out and "已记录跟进" in out
    assert "(按下「撤销」)" in out and "撤销" in out.split("(按下「撤销」)")[1]
    assert "没有这个人：nobody" in out and "wuting" in out  # refused, with the people
    assert "时间已移到 2026-11-25 09:00" in out
    assert "你现在是 李娜" in out
    code, out = await _chat(demo, b"", user="nobody")
    assert code == 2 and "没有这个人：nobody" in out and "zhangwei" in out


async def test_the_terminal_prompt_takes_a_split_character_and_a_10kb_paste(demo: Demo) -> None:
    master, slave = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        *CHAT, "--sim", demo.sim_url, "--as", "zhangwei", stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    screen = bytearray()
    loop = asyncio.get_running_loop()

    def read_master() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = loop.run_in_executor(None, read_master)

    async def shows(text: str) -> None:
        for _ in range(600):
            if text in screen.decode("utf-8", errors="replace"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"never showed {text!r}: {screen.decode(errors='replace')[-600:]}")

    await shows("zhangwei> ")
    cha = "查".encode()
    os.write(master, cha[:2])  # a character split across two reads
    await asyncio.sleep(0.2)
    os.write(master, cha[2:] + b" hzyq\r")
    await shows("杭州云栖科技有限公司")
    paste = "长" * 3500  # 10.5 KB of UTF-8 on one line: beyond the terminal's 4 KB line cap
    for start in range(0, len(paste), 700):
        os.write(master, paste[start : start + 700].encode())
    os.write(master, b"\r")
    await shows("抱歉，我没看懂")
    os.write(master, b"/as nobody\r")
    await shows("没有这个人：nobody")
    os.write(master, b"/quit\r")
    assert await asyncio.wait_for(process.wait(), 30) == 0
    await reader
    os.close(master)
    text = screen.decode("utf-8", errors="replace")
    assert "Traceback" not in text
    said = [t for t in demo.sim.log.entries("zhangwei") if t.direction == "in"]
    assert said[0].data["text"] == "查 hzyq" and said[1].data["text"] == paste
