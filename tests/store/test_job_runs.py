"""Job runs on both databases: a period is claimed once, even by two racing transactions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store import jobs as job_runs
from crm_store.clock import FakeClock
from crm_store.models import JobRun
from crm_store.session import create_engine, session_factory

SH = ZoneInfo("Asia/Shanghai")
NINE = datetime(2026, 10, 8, 9, 0, tzinfo=SH)


async def _claim(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, worker: str, period: datetime
) -> bool:
    async with sessions.begin() as session:
        return await job_runs.claim(
            session, job="digest", period=period, worker=worker, now=clock.now()
        )


async def test_a_period_is_claimed_once_and_finished_with_counts(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    assert await _claim(sessions, clock, "w1", NINE) is True
    assert await _claim(sessions, clock, "w2", NINE.astimezone(UTC)) is False  # same instant
    async with sessions.begin() as session:
        await job_runs.finish(
            session, job="digest", period=NINE, now=clock.now(), items=3, recipients=2, queued=3
        )
    async with sessions() as session:
        record = await job_runs.last_run(session, job="digest")
    assert record is not None
    assert (record.worker, record.status, record.trigger) == ("w1", "done", "schedule")
    assert (record.items, record.recipients, record.queued) == (3, 2, 3)
    assert record.period == NINE and record.finished_at == clock.now()


async def test_a_rolled_back_claim_leaves_the_period_free(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with sessions() as session:
        assert await job_runs.claim(
            session, job="digest", period=NINE, worker="crashed", now=clock.now()
        )
        await session.rollback()  # the worker died before its commit
    assert await _claim(sessions, clock, "w2", NINE) is True


async def test_two_racing_transactions_claim_once(db_url: str, clock: FakeClock) -> None:
    """Worker A holds an uncommitted claim; worker B's claim waits for it, then finds it taken."""
    engines = [create_engine(db_url), create_engine(db_url)]
    a_sessions, b_sessions = (session_factory(e) for e in engines)
    try:
        for outcome_of_a, b_expected in (("commit", False), ("rollback", True)):
            period = NINE + timedelta(days=1 if outcome_of_a == "rollback" else 0)
            async with a_sessions() as a:
                assert await job_runs.claim(
                    a, job="digest", period=period, worker="a", now=clock.now()
                )
                # B runs while A's claim is open: it must wait for A, not slip past it.
                b = asyncio.create_task(_claim(b_sessions, clock, "b", period))
                await (a.commit() if outcome_of_a == "commit" else a.rollback())
                assert await b is b_expected
        async with a_sessions() as session:
            rows = (await session.scalars(select(JobRun).order_by(JobRun.period))).all()
        assert [(r.worker, r.period) for r in rows] == [("a", NINE), ("b", NINE + timedelta(1))]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_skipped_periods_are_recorded_once_and_block_a_later_claim(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    periods = [NINE - timedelta(days=2), NINE - timedelta(days=1)]
    async with sessions.begin() as session:
        assert (
            await job_runs.skip(
                session, job="digest", periods=periods, worker="w1", now=clock.now()
            )
            == 2
        )
        assert (
            await job_runs.skip(
                session, job="digest", periods=periods, worker="w2", now=clock.now()
            )
            == 0
        )
    assert await _claim(sessions, clock, "w3", periods[0]) is False
    async with sessions() as session:
        record = await job_runs.last_run(session, job="digest")
        recorded = await job_runs.recorded_periods(
            session, job="digest", since=periods[0], until=NINE
        )
        latest = await job_runs.latest_period(session, job="digest")
        nothing = await job_runs.latest_period(session, job="other")
    assert record is not None and record.status == "skipped" and record.worker == "w1"
    assert recorded == {p.astimezone(UTC) for p in periods}
    assert latest == periods[1] and nothing is None


async def test_a_manual_run_takes_over_the_record_and_adds_up_queued(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    assert await _claim(sessions, clock, "w1", NINE)
    async with sessions.begin() as session:
        await job_runs.finish(
            session, job="digest", period=NINE, now=clock.now(), items=2, recipients=2, queued=2
        )
    clock.advance(hours=1)
    async with sessions.begin() as session:
        created = await job_runs.claim_manual(
            session, job="digest", period=NINE, worker="cli", now=clock.now()
        )
        await job_runs.finish(
            session, job="digest", period=NINE, now=clock.now(), items=3, recipients=3, queued=1
        )
        fresh = await job_runs.claim_manual(
            session, job="digest", period=NINE + timedelta(days=1), worker="cli", now=clock.now()
        )
    assert created is False and fresh is True
    async with sessions() as session:
        [older, newer] = sorted(
            await job_runs.history(session, job="digest"), key=lambda r: r.period
        )
    assert (older.trigger, older.worker, older.items, older.queued) == ("manual", "cli", 3, 3)
    assert older.started_at == clock.now() and newer.trigger == "manual"


async def test_prune_forgets_old_poll_slots_only_for_that_job(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    for minutes in (0, 1, 2):
        assert await _claim(sessions, clock, "w", NINE + timedelta(minutes=minutes))
    async with sessions.begin() as session:
        await job_runs.claim(session, job="other", period=NINE, worker="w", now=clock.now())
        removed = await job_runs.prune(session, job="digest", before=NINE + timedelta(minutes=2))
    assert removed == 2
    async with sessions() as session:
        left = (await session.scalars(select(JobRun.job).order_by(JobRun.job))).all()
    assert left == ["digest", "other"]
