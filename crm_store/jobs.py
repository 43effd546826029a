"""Job runs: the once-only claim of a period, the skipped record, the history admins see.

The claim is an INSERT that does nothing on conflict, made in the transaction that also writes
the job's outbox rows: a worker that dies mid-run leaves no claim, and a second worker racing
for the same period waits on the unique key (PostgreSQL) or the write lock (SQLite), then finds
the period taken.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.dialect import insert_ignore
from crm_store.models.jobs import (
    RUN_DONE,
    RUN_SKIPPED,
    TRIGGER_MANUAL,
    TRIGGER_SCHEDULE,
    JobRun,
)


@dataclass(frozen=True)
class RunRecord:
    """One row of a job's history, as `wecrm jobs list` shows it."""

    job: str
    period: datetime
    status: str
    trigger: str
    worker: str
    started_at: datetime
    finished_at: datetime | None
    items: int
    recipients: int
    queued: int


def _record(row: JobRun) -> RunRecord:
    return RunRecord(
        job=row.job,
        period=row.period,
        status=row.status,
        trigger=row.trigger,
        worker=row.worker,
        started_at=row.started_at,
        finished_at=row.finished_at,
        items=row.items,
        recipients=row.recipients,
        queued=row.queued,
    )


def _rows(result: object) -> int:
    """Rows an INSERT/DELETE touched (execute() is typed as Result, DML returns CursorResult)."""
    return int(cast(CursorResult[Any], result).rowcount)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


async def claim(
    session: AsyncSession,
    *,
    job: str,
    period: datetime,
    worker: str,
    now: datetime,
    trigger: str = TRIGGER_SCHEDULE,
) -> bool:
    """Take the period for this transaction; False when another run already has it."""
    stmt = insert_ignore(session, JobRun.__table__, ["job", "period"]).values(
        job=job,
        period=_utc(period),
        status=RUN_DONE,
        trigger=trigger,
        worker=worker[:64],
        started_at=now,
        finished_at=None,
        items=0,
        recipients=0,
        queued=0,
    )
    return bool(_rows(await session.execute(stmt)))


async def claim_manual(
    session: AsyncSession, *, job: str, period: datetime, worker: str, now: datetime
) -> bool:
    """An admin's run: claims the period, or takes over its record if it ran or was skipped.

    Returns True when the period had no record yet. Its outbox keys still hold, so a manual
    re-run only reaches the recipients the earlier run did not.
    """
    if await claim(
        session, job=job, period=period, worker=worker, now=now, trigger=TRIGGER_MANUAL
    ):
        return True
    await session.execute(
        update(JobRun)
        .where(JobRun.job == job, JobRun.period == _utc(period))
        .values(status=RUN_DONE, trigger=TRIGGER_MANUAL, worker=worker[:64], started_at=now)
    )
    return False


async def finish(
    session: AsyncSession,
    *,
    job: str,
    period: datetime,
    now: datetime,
    items: int,
    recipients: int,
    queued: int,
) -> None:
    """Write what the run produced; `queued` adds up over a period's manual re-runs."""
    await session.execute(
        update(JobRun)
        .where(JobRun.job == job, JobRun.period == _utc(period))
        .values(
            finished_at=now,
            items=items,
            recipients=recipients,
            queued=JobRun.queued + queued,
        )
    )


async def skip(
    session: AsyncSession, *, job: str, periods: Iterable[datetime], worker: str, now: datetime
) -> int:
    """Record periods missed beyond the grace window, so no later worker sends them."""
    count = 0
    for period in periods:
        stmt = insert_ignore(session, JobRun.__table__, ["job", "period"]).values(
            job=job,
            period=_utc(period),
            status=RUN_SKIPPED,
            trigger=TRIGGER_SCHEDULE,
            worker=worker[:64],
            started_at=now,
            finished_at=now,
            items=0,
            recipients=0,
            queued=0,
        )
        count += _rows(await session.execute(stmt))
    return count


async def recorded_periods(
    session: AsyncSession, *, job: str, since: datetime, until: datetime
) -> set[datetime]:
    """Periods in [since, until] that have a record (done or skipped), in UTC."""
    query = select(JobRun.period).where(
        JobRun.job == job, JobRun.period >= _utc(since), JobRun.period <= _utc(until)
    )
    return {_utc(p) for p in (await session.scalars(query)).all()}


async def latest_period(session: AsyncSession, *, job: str) -> datetime | None:
    """The newest period with a record: where a restarted scheduler picks up."""
    found = await session.scalar(select(func.max(JobRun.period)).where(JobRun.job == job))
    return None if found is None else _utc(found)


async def last_run(session: AsyncSession, *, job: str) -> RunRecord | None:
    """The newest record of a job, whatever its status."""
    row = await session.scalar(
        select(JobRun).where(JobRun.job == job).order_by(JobRun.period.desc()).limit(1)
    )
    return None if row is None else _record(row)


async def history(session: AsyncSession, *, job: str, limit: int = 20) -> list[RunRecord]:
    """A job's newest records first."""
    rows = await session.scalars(
        select(JobRun).where(JobRun.job == job).order_by(JobRun.period.desc()).limit(limit)
    )
    return [_record(row) for row in rows]


async def prune(session: AsyncSession, *, job: str, before: datetime) -> int:
    """Forget a poll's old slots (a 30 s poll would otherwise add 2,880 rows a day)."""
    stmt = delete(JobRun).where(JobRun.job == job, JobRun.period < _utc(before))
    return _rows(await session.execute(stmt))
