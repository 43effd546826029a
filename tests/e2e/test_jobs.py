"""Jobs against the real databases with an injected clock: a week with a holiday and a 调休
Saturday, two workers racing, a missed run caught up once, Redis as a fast path only."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cache import Cache, LocalCache, Notifier, RedisCache
from bot.runtime.scheduler import RETRY_AFTER, Scheduler
from crm_store import staff
from crm_store.clock import FakeClock
from crm_store.models import JobRun, OutboxMessage, Task
from crm_store.session import create_engine, session_factory
from handlers.kit.jobs import Job, JobContext, Schedule, Scheduled
from handlers.kit.replies import TextReply
from handlers.kit.routing import Router
from tests.e2e.conftest import BotHarness
from tests.e2e.demo_jobs import TEAM, Calls, demo_jobs, writing_job

SH = ZoneInfo("Asia/Shanghai")


def shanghai(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def scheduler(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    jobs: list[Job],
    worker: str = "w1",
    cache: Cache | None = None,
) -> Scheduler:
    return Scheduler(
        sessions=sessions,
        clock=clock,
        tz=SH,
        notifier=Notifier(LocalCache()),
        jobs=jobs,
        cache=cache,
        worker_id=worker,
    )


async def outbox_keys(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return sorted((await session.scalars(select(OutboxMessage.dedup_key))).all())


async def runs(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str, str]]:
    async with sessions() as session:
        rows = (await session.scalars(select(JobRun).order_by(JobRun.job, JobRun.period))).all()
    return [
        (r.job, r.period.astimezone(SH).strftime("%m-%d %H:%M"), r.status, r.trigger) for r in rows
    ]


async def test_a_week_with_a_holiday_and_a_tiaoxiu_saturday(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    calls = Calls()
    worker = scheduler(sessions, clock, demo_jobs(calls))
    clock.set(shanghai("2026-10-04", "12:00"))  # Sunday, in the middle of National Day
    while clock.now() < shanghai("2026-10-12", "00:00"):
        await worker.run_due()
        clock.advance(minutes=30)
    # Mon-Wed 10-05..07 are holidays; Thu, Fri and the 调休 Saturday 10-10 are working days.
    assert calls.of("demo.morning") == [f"2026-10-{d:02d}T09:00+08:00" for d in (8, 9, 10)]
    # The cron says Mon-Fri and the job says working days: the Saturday is not in 1-5.
    assert calls.of("demo.evening") == [f"2026-10-{d:02d}T18:30+08:00" for d in (8, 9)]
    assert calls.of("demo.monday") == ["2026-10-05T10:00+08:00"]  # not workdays-only
    assert {seen for _, _, seen in calls.seen} >= {"10-08 09:00", "10-05 10:00"}
    keys = await outbox_keys(sessions)
    assert len(keys) == 3 * 2 + 2 * 2 + 1
    assert "job:demo.morning:2026-10-10T09:00+08:00:lisi:note:0:0:lisi" in keys
    assert {trigger for *_, trigger in await runs(sessions)} == {"schedule"}


async def test_two_workers_racing_send_once(db_url: str, clock: FakeClock) -> None:
    """Two workers (own engines, as two processes) reach 09:00 together: one run, one message
    per recipient. The run in progress holds its claim until the other worker has tried."""
    entered, release = asyncio.Event(), asyncio.Event()
    calls = Calls()
    router = Router("tests.race", audience="test", title="测试")

    @router.job("race.morning", Schedule.daily("09:00"))
    async def morning(ctx: JobContext) -> list[Scheduled]:
        calls.seen.append((ctx.job, ctx.period_key, ""))
        entered.set()
        await release.wait()
        return [Scheduled("m", TextReply(u, "早")) for u in TEAM]

    engines = [create_engine(db_url), create_engine(db_url)]
    a, b = (
        scheduler(session_factory(e), clock, router.jobs, worker=name)
        for e, name in zip(engines, "ab", strict=True)
    )

    async def open_the_gate() -> None:
        await entered.wait()
        release.set()

    try:
        clock.set(shanghai("2026-10-08", "09:00"))
        first, second, _ = await asyncio.gather(a.run_due(), b.run_due(), open_the_gate())
        assert sorted([first["race.morning"], second["race.morning"]]) == [0, 2]
        assert len(calls.seen) == 1
        clock.advance(seconds=5)
        assert (await a.run_due(force=True), await b.run_due(force=True)) == (
            {"race.morning": 0},
            {"race.morning": 0},
        )
        keys = await outbox_keys(a.sessions)
        assert len(keys) == 2 and len(await runs(a.sessions)) == 1
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_missed_run_is_caught_up_once_and_older_ones_are_skipped(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    calls = Calls()
    jobs = [j for j in demo_jobs(calls) if j.name == "demo.morning"]  # 09:00, 6 h grace
    clock.set(shanghai("2026-10-08", "08:00"))
    await scheduler(sessions, clock, jobs, "early").run_due()  # then every worker goes down
    clock.set(shanghai("2026-10-08", "13:00"))
    assert await scheduler(sessions, clock, jobs, "w2").run_due() == {"demo.morning": 2}
    assert calls.seen == [("demo.morning", "2026-10-08T09:00+08:00", "10-08 13:00")]
    # Any number of workers starting now find it done.
    for name in ("w3", "w4"):
        assert await scheduler(sessions, clock, jobs, name).run_due() == {"demo.morning": 0}
    # Down again from Thursday afternoon until Saturday (调休) noon: Friday 09:00 is past the
    # grace window and is recorded as skipped; Saturday 09:00 is caught up.
    clock.set(shanghai("2026-10-10", "12:00"))
    assert await scheduler(sessions, clock, jobs, "w5").run_due() == {"demo.morning": 2}
    assert await runs(sessions) == [
        ("demo.morning", "10-08 09:00", "done", "catch-up"),
        ("demo.morning", "10-09 09:00", "skipped", "schedule"),
        ("demo.morning", "10-10 09:00", "done", "catch-up"),
    ]
    assert calls.of("demo.morning") == ["2026-10-08T09:00+08:00", "2026-10-10T09:00+08:00"]
    assert len(await outbox_keys(sessions)) == 4


async def test_a_job_with_a_short_grace_skips_rather_than_sends_late(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    calls = Calls()
    [monday] = [j for j in demo_jobs(calls) if j.name == "demo.monday"]  # 10:00, 1 h grace
    clock.set(shanghai("2026-10-05", "09:59"))
    worker = scheduler(sessions, clock, [monday])
    await worker.run_due()
    clock.set(shanghai("2026-10-12", "11:30"))  # the worker slept through a week
    assert await worker.run_due() == {"demo.monday": 0}
    assert await runs(sessions) == [
        ("demo.monday", "10-05 10:00", "skipped", "schedule"),
        ("demo.monday", "10-12 10:00", "skipped", "schedule"),
    ]
    assert calls.seen == []


async def test_a_failing_job_is_retried_later_and_does_not_hold_up_others(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    failures = [RuntimeError("template broke")]
    router = Router("tests.flaky", audience="test", title="测试")

    @router.job("flaky", Schedule.daily("09:00"))
    async def flaky(ctx: JobContext) -> list[Scheduled]:
        if failures:
            raise failures.pop()
        return [Scheduled("f", TextReply("zhangsan", "好了"))]

    jobs = [*router.jobs, *(j for j in demo_jobs(calls) if j.name == "demo.morning")]
    worker = scheduler(sessions, clock, jobs)
    clock.set(shanghai("2026-10-08", "09:00"))
    with caplog.at_level(logging.ERROR, logger="bot.runtime.scheduler"):
        assert await worker.run_due() == {"flaky": 0, "demo.morning": 2}
    assert any("job flaky failed" in r.getMessage() for r in caplog.records)
    assert await runs(sessions) == [("demo.morning", "10-08 09:00", "done", "schedule")]
    clock.advance(seconds=30)
    assert await worker.run_due() == {"demo.morning": 0}  # flaky waits for its retry time
    clock.advance(RETRY_AFTER.total_seconds())
    assert await worker.run_due() == {"flaky": 1, "demo.morning": 0}
    assert ("flaky", "10-08 09:00", "done", "catch-up") in await runs(sessions)


async def test_redis_is_a_fast_path_in_front_of_the_database(
    db_url: str, clock: FakeClock, redis_url: str
) -> None:
    """With Redis a worker that sees another's claim steps aside at once; the database still
    settles it, and a claim whose worker failed is released for the others."""
    calls = Calls()
    failures = [RuntimeError("worker a fails mid-run")]
    router = Router("tests.redis", audience="test", title="测试")

    @router.job("redis.morning", Schedule.daily("09:00"))
    async def morning(ctx: JobContext) -> list[Scheduled]:
        calls.seen.append((ctx.job, ctx.period_key, ""))
        if failures:
            raise failures.pop()
        return [Scheduled("m", TextReply(u, "早")) for u in TEAM]

    engine = create_engine(db_url)
    caches = [RedisCache(redis_url), RedisCache(redis_url)]
    sessions = session_factory(engine)
    a, b, c = (
        scheduler(sessions, clock, router.jobs, worker=name, cache=cache)
        for name, cache in zip("abc", [*caches, caches[1]], strict=True)
    )
    try:
        clock.set(shanghai("2026-10-08", "09:00"))
        assert await a.run_due() == {"redis.morning": 0}  # failed, and released its claim
        assert await b.run_due() == {"redis.morning": 2}
        assert await c.run_due() == {"redis.morning": 0}  # Redis says taken: no DB claim
        assert len(calls.seen) == 2
        # When that claim's lease is over, the database answers: done, nothing to send.
        await caches[1].delete(f"wecrm:job:redis.morning:{int(clock.now().timestamp())}")
        clock.advance(seconds=5)
        assert await c.run_due() == {"redis.morning": 0}
        assert len(calls.seen) == 2 and len(await outbox_keys(sessions)) == 2
        assert await runs(sessions) == [("redis.morning", "10-08 09:00", "done", "schedule")]
    finally:
        for cache in caches:
            await cache.close()
        await engine.dispose()


async def test_a_dry_run_writes_nothing_and_a_manual_run_sends_once(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with sessions.begin() as session:
        await staff.upsert_staff(
            session, userid="zhangsan", name="张三", department_ids=[], now=clock.now()
        )
    calls = Calls()
    job = writing_job(calls)
    worker = scheduler(sessions, clock, [job])
    nine = shanghai("2026-10-08", "09:00")
    [preview] = await worker.preview(job, nine)
    assert preview.reply.content == "任务数 1"
    async with sessions() as session:
        assert (await session.scalars(select(Task))).all() == []
    assert await outbox_keys(sessions) == [] and await runs(sessions) == []
    clock.set(nine + timedelta(hours=2))
    first = await worker.run_now(job, nine)
    again = await worker.run_now(job, nine)
    assert (first.queued, again.queued) == (1, 0)  # the recipient already has it
    assert await runs(sessions) == [("demo.writer", "10-08 09:00", "done", "manual")]
    # The scheduler then finds the period done.
    assert await worker.run_due() == {"demo.writer": 0}


async def test_scheduled_messages_reach_wecom_and_reminders_are_the_bots_job(
    bot: BotHarness,
) -> None:
    assert [j.name for j in bot.runtime.scheduler.jobs] == [
        "reminders",
        "service.sla",
        "manager.daily",
        "manager.weekly",
        "rep.morning",
    ]
    calls = Calls()
    jobs = [j for j in demo_jobs(calls) if j.name in ("demo.morning", "demo.monday")]
    worker = scheduler(bot.runtime.sessions, bot.clock, jobs)
    bot.clock.set(shanghai("2026-10-12", "10:00"))  # Monday: both are due
    assert await worker.run_due() == {"demo.morning": 2, "demo.monday": 1}
    await bot.runtime.relay.run_until_idle()
    assert bot.sim.screen("lisi") == ["早上好 2026-10-12T09:00+08:00"]
    screen = bot.sim.screen("zhangsan")
    assert screen[0] == "早上好 2026-10-12T09:00+08:00" and "今天没有待办" in screen[1]


def test_keys_stay_within_the_outbox_limit() -> None:
    from bot.runtime.scheduler import source_key

    calls = Calls()
    [morning] = [j for j in demo_jobs(calls) if j.name == "demo.morning"]
    period = shanghai("2026-10-08", "09:00").astimezone(UTC)
    long_user = "u" * 64
    item = Scheduled("k" * 40, TextReply(long_user, ""))
    key = source_key(morning, period.astimezone(SH), item)
    assert key.startswith("job:demo.morning:") and len(key) + len(f":0:0:{long_user}") <= 160
    other = source_key(morning, period.astimezone(SH), Scheduled("k" * 41, item.reply))
    assert other != key
    short = Scheduled("note", TextReply("lisi", ""))
    assert source_key(morning, period.astimezone(SH), short) == (
        "job:demo.morning:2026-10-08T09:00+08:00:lisi:note"
    )
