"""The chat page in a real browser (Debian's Chromium through Playwright), as a newcomer uses it:
pick a rep, chat, tap a card button, move the clock, see the reminder arrive. The screenshot is
the one the README shows (docs/chat-page.png)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.demo import Demo, run_demo
from bot.simulator.clock import MovableClock
from crm_store.clock import FakeClock
from crm_store.migrate import upgrade

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("WECRM_CHROMIUM", "/usr/bin/chromium")
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "chat-page.png"
TUESDAY_10AM = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
WAIT_MS = 20_000


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)
    clock = MovableClock(FakeClock(TUESDAY_10AM))
    async with run_demo(url, port=0, sim_port=0, clock=clock) as running:
        yield running


async def test_a_rep_chats_taps_and_sees_the_reminder_after_moving_the_clock(demo: Demo) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser.sh (apt-get install chromium)")
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_FLAGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{demo.page_url}?as=zhangwei")
            await expect(page.locator("#whoami")).to_contain_text("张伟", timeout=WAIT_MS)
            await expect(page.locator("#clock")).to_contain_text("2026-11-24 10:00")

            composer = page.locator("#input")
            await composer.fill("查 hzyq")
            await composer.press("Enter")
            found = page.locator(".bubble.markdown", has_text="杭州云栖科技有限公司")
            await expect(found.first).to_be_visible(timeout=WAIT_MS)
            await expect(page.locator(".bubble.me", has_text="查 hzyq")).to_be_visible()

            # A follow-up whose next step is at 09:00 tomorrow, then one undone by its button.
            await composer.fill("跟进 云栖 今天电话沟通了需求，明天上午9点打电话确认")
            await composer.press("Enter")
            logged = page.locator(".card", has_text="打电话确认")
            await expect(logged).to_be_visible(timeout=WAIT_MS)
            await composer.fill("跟进 紫金山 拜访了何总，下周一发方案")
            await composer.press("Enter")
            second = page.locator(".card", has_text="发方案")
            await expect(second).to_be_visible(timeout=WAIT_MS)
            await second.get_by_role("button", name="撤销").click()
            await expect(page.locator(".bubble.me.tap", has_text="撤销")).to_be_visible()
            undone = page.locator(".bubble.bot", has_text="撤销")
            await expect(undone.first).to_be_visible(timeout=WAIT_MS)

            await page.get_by_role("button", name="明天 09:00").click()
            await expect(page.locator("#clock")).to_contain_text("2026-11-25 09:00")
            reminder = page.locator(".card", has_text="跟进提醒").filter(has_text="打电话确认")
            await expect(reminder).to_be_visible(timeout=WAIT_MS)
            await reminder.get_by_role("button", name="完成").click()
            done = page.locator(".bubble", has_text="已完成：打电话确认")
            await expect(done).to_be_visible(timeout=WAIT_MS)
            SCREENSHOT.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))
            assert errors == []
        finally:
            await browser.close()
    # What the page showed came through the bot: the simulator received those messages.
    texts = "\n".join(demo.sim.screen("zhangwei"))
    assert "跟进提醒" in texts and "已完成：打电话确认" in texts
