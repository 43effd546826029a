"""`wecrm demo --tour`: a scripted walk through what the bot can do, printed as a transcript.

Every step goes through the real path (encrypted callback, inbox, handlers, outbox, the
simulator's message/send); the loops are driven by hand and the clock is fixed, so the walk is
the same on every machine. A step whose reply lacks what it should say fails the tour (exit 1).
New capabilities add steps to STEPS (or their own list in TOURS); nothing else changes.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from bot.demo import Demo, run_demo
from bot.demo.company import SERVICE_AGENTS, person
from bot.simulator.clock import MovableClock, next_local
from crm_store.clock import FakeClock
from crm_store.migrate import upgrade

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai


@dataclass(frozen=True)
class Step:
    """One thing a person does, and words that what they then see must contain."""

    title: str
    user: str
    say: str | None = None
    tap: str | None = None  # a button's text on the newest card that has it
    clock: str | timedelta | None = None  # "09:00 tomorrow", "18:30", or a step forward
    expect: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()  # others whose screens count too (the people told)


SALES: tuple[Step, ...] = (
    Step("帮助：机器人能做什么", "zhangwei", say="帮助", expect=("CRM 助手", "跟进")),
    Step("按城市和首字母查客户", "zhangwei", say="查 hzyq", expect=("杭州云栖科技有限公司",)),
    Step("按全拼查客户", "zhangwei", say="查 hangzhouyunqi", expect=("杭州云栖科技有限公司",)),
    Step("打错字也能找到", "huangli", say="查 腾迅", expect=("腾讯",)),
    Step(
        "记跟进，带下一步和时间",
        "zhangwei",
        say="跟进 云栖 今天电话沟通了需求，明天上午9点打电话确认",
        expect=("已记录跟进", "打电话确认", "09:00"),
    ),
    Step("新建商机", "zhangwei", say="商机 云栖 二期扩容 50万", expect=("二期扩容", "50万")),
    Step("推进阶段", "zhangwei", say="阶段 二期扩容 方案报价", expect=("方案报价",)),
    Step(
        "新客户先查重（同事的客户）",
        "liuyang",
        say="新客户 杭州云栖科技有限公司 软件",
        expect=("张伟",),
    ),
)
SERVICE: tuple[Step, ...] = (
    Step("客服转发客户的话", "wuting", say="客户说你们的系统宕机了，全部无法使用"),
    Step(
        "转发的话变成一张工单",
        "wuting",
        say="工单 字节",
        expect=("已开工单", "P1"),
        watch=("liuyang",),
    ),
    Step(
        "时间过去 50 分钟：SLA 预警",
        "wuting",
        clock=timedelta(minutes=50),
        expect=("即将超时",),
        watch=SERVICE_AGENTS,
    ),
)
REMINDERS: tuple[Step, ...] = (
    Step(
        "到了明天 09:00：跟进提醒",
        "zhangwei",
        clock="09:00 tomorrow",
        expect=("跟进提醒", "打电话确认"),
    ),
    Step("提醒卡片上点“完成”", "zhangwei", tap="完成", expect=("已完成：打电话确认",)),
)
MANAGER: tuple[Step, ...] = (
    Step("主管随时要日报：本部门当天的数字", "wangjg", say="日报", expect=("跟进", "商机漏斗")),
    Step("主管看团队", "wangjg", say="团队", expect=("张伟",)),
)
# Audiences add their walk here (marketing leads, ...), in the order shown.
TOURS: list[tuple[Step, ...]] = [SALES, SERVICE, REMINDERS, MANAGER]


def steps() -> list[Step]:
    return [step for tour in TOURS for step in tour]


class TourRunner:
    """Drives one demo (background loops off) through steps, printing what people see."""

    def __init__(self, demo: Demo, out: Callable[[str], None] = print) -> None:
        self.demo = demo
        self.out = out

    async def drain(self) -> None:
        runtime = self.demo.runtime
        for _ in range(20):
            handled = await runtime.worker.run_until_idle()
            sent = await runtime.relay.run_until_idle()
            if not handled and not sent:
                return

    async def run(self, walk: list[Step]) -> int:
        """Run every step; the number that failed."""
        failed = 0
        await self.demo.runtime.search.load_from(self.demo.runtime.sessions)
        await self.demo.runtime.scheduler.run_due()  # what is due at the start, as a worker would
        await self.drain()
        for number, step in enumerate(walk, 1):
            self.out(f"\n── {number}. {step.title} ──")
            if not await self.step(step):
                failed += 1
        self.out(f"\n{len(walk) - failed}/{len(walk)} steps as expected")
        return failed

    async def step(self, step: Step) -> bool:
        sim = self.demo.sim
        people = (step.user, *(u for u in step.watch if u != step.user))
        before = {u: len(sim.screen(u)) for u in people}
        name = person(step.user).name
        if step.say is not None:
            self.out(f"{name} > {step.say}")
            status, _ = await sim.send_text(step.user, step.say)
            if status != 200:
                self.out(f"  ✗ callback refused: HTTP {status}")
                return False
        elif step.tap is not None:
            self.out(f"{name} 点击「{step.tap}」")
            if not await self._tap(step.user, step.tap):
                self.out(f"  ✗ no card with a button 「{step.tap}」")
                return False
        elif step.clock is not None:
            moved = self._move(step.clock)
            self.out(f"⏰ 时间移到 {moved.astimezone(sim.tz):%Y-%m-%d %H:%M}")
            await self.demo.runtime.scheduler.run_due()
        await self.drain()
        seen: list[str] = []
        for user in people:
            for text in sim.screen(user)[before[user] :]:
                label = "CRM" if user == step.user else f"CRM → {person(user).name}"
                self.out("\n".join(f"{label} > {line}" for line in text.splitlines()[:12]))
                seen.append(text)
        missing = [word for word in step.expect if not any(word in text for text in seen)]
        if missing:
            self.out(f"  ✗ expected to see: {'、'.join(missing)}")
            return False
        self.out("  ✓")
        return True

    def _move(self, clock: str | timedelta) -> datetime:
        moving = self.demo.clock
        if isinstance(clock, timedelta):
            return moving.advance(clock)
        at, _, day = clock.partition(" ")
        target = next_local(
            moving.now(), time.fromisoformat(at), self.demo.sim.tz, day=day or "next"
        )
        return moving.move_to(target)

    async def _tap(self, user: str, label: str) -> bool:
        sim = self.demo.sim
        for message in reversed(sim.messages_to(user)):
            for button in message.payload.get("button_list") or []:
                if button.get("text") == label:
                    task_id = str(message.payload["task_id"])
                    status, _ = await sim.click_card(user, task_id, str(button["key"]))
                    return status == 200
        return False


async def run_tour(database_url: str | None = None, out: Callable[[str], None] = print) -> int:
    """Seed a fresh company, walk every step; 0 when each reply said what it should."""
    with tempfile.TemporaryDirectory(prefix="wecrm-tour-") as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'tour.db'}"
        await asyncio.to_thread(upgrade, url)
        clock = MovableClock(FakeClock(START))
        async with run_demo(url, port=0, sim_port=0, clock=clock, background=False) as demo:
            failed = await TourRunner(demo, out).run(steps())
    return 1 if failed else 0
