"""The scheduler: every worker runs every job, and each job runs once per period and recipient.

Jobs come from the routers (`handlers.dispatch.dispatcher().jobs`), never from an audience's
module. A period is claimed by a `job_runs` row written in the same transaction as the job's
outbox rows, so a crash leaves neither and two racing workers send once. Redis, when present, is
only a fast path in front of that claim. On start, and on every tick, periods missed within a
job's grace window run once, in order; older ones are recorded as skipped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from bot.cache import Cache, Notifier
from bot.runtime.channels import OUTBOX_CHANNEL
from bot.runtime.leases import default_holder_id
from bot.runtime.outgoing import enqueue_replies
from crm_store import jobs as job_runs
from crm_store.clock import Clock
from crm_store.models.jobs import TRIGGER_CATCH_UP, TRIGGER_MANUAL, TRIGGER_SCHEDULE
from handlers.kit.jobs import Job, JobContext, Scheduled, by_name, period_key

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)  # how long a Redis claim keeps other workers off a period
RETRY_AFTER = timedelta(minutes=1)  # a job that raised is tried again after this
POLL_HISTORY = timedelta(days=1)  # a poll keeps this much of its job_runs history
SKIP_HORIZON = timedelta(days=7)  # skipped periods are recorded this far back at most
ON_TIME = timedelta(minutes=1)  # a run later than this after its period is a catch-up
_MAX_SOURCE_KEY = 88  # the outbox key adds ":r:m:<userid>" and must fit in 160 characters
_TINY = timedelta(microseconds=1)


def registered_jobs() -> list[Job]:
    """Every audience's jobs, as the routers declare them (the lead may point this elsewhere)."""
    from handlers.dispatch import dispatcher

    return dispatcher().jobs


@dataclass(frozen=True)
class RunOutcome:
    """What one job run did: `ran` is False when another run already had the period."""

    job: str
    period: datetime
    trigger: str
    ran: bool
    items: int = 0
    recipients: int = 0
    queued: int = 0


def source_key(job: Job, period: datetime, item: Scheduled) -> str:
    """The outbox key of one item: job, local period and recipient (a poll keeps its own key)."""
    if job.schedule.is_interval:
        return item.key
    key = f"job:{job.name}:{period_key(period)}:{item.reply.to_user}:{item.key}"
    if len(key) <= _MAX_SOURCE_KEY:
        return key
    return f"job:{job.name}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def recipients_of(items: Sequence[Scheduled]) -> set[str]:
    return {user for item in items for user in (item.reply.to_user, *item.reply.extra_to)}


class Scheduler:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        tz: ZoneInfo,
        notifier: Notifier,
        jobs: Sequence[Job] | None = None,
        cache: Cache | None = None,
        worker_id: str | None = None,
        tick_seconds: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.tz = tz
        self.notifier = notifier
        self.jobs = list(registered_jobs() if jobs is None else jobs)
        by_name(self.jobs)  # refuse two jobs of one name before anything runs
        self.cache = cache
        self.worker_id = worker_id or default_holder_id("scheduler")
        self.tick_seconds = tick_seconds
        # Per job: periods up to here are settled (ran, taken by another worker, or skipped).
        self._settled_until: dict[str, datetime] = {}
        self._retry_at: dict[str, datetime] = {}

    async def run_due(self, *, force: bool = False) -> dict[str, int]:
        """Run every period that is due; returns how many new messages each job queued.

        `force` forgets what this worker remembers and asks the database, as a fresh worker
        would on start.
        """
        now = self.clock.now()
        queued: dict[str, int] = {}
        for job in self.jobs:
            if not force and self._retry_at.get(job.name, now) > now:
                continue
            try:
                queued[job.name] = await self._run_periods(job, now, force=force)
            except Exception:  # one failing job must not hold up the others
                log.exception("job %s failed; retrying after %s", job.name, RETRY_AFTER)
                self._retry_at[job.name] = now + RETRY_AFTER
                queued[job.name] = 0
        if any(queued.values()):
            await self.notifier.notify(OUTBOX_CHANNEL)
        return queued

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:  # one bad tick must not stop reminders for good
                log.exception("scheduler tick failed")
            await self.notifier.wait("scheduler", self.tick_seconds)

    async def run_now(self, job: Job, period: datetime) -> RunOutcome:
        """An admin's run of one period (`wecrm jobs run`), even one already run or skipped."""
        period = period.astimezone(self.tz)  # keys name the period in the company's zone
        now = self.clock.now()
        async with self.sessions.begin() as session:
            await job_runs.claim_manual(
                session, job=job.name, period=period, worker=self.worker_id, now=now
            )
            outcome = await self._run_claimed(session, job, period, now, TRIGGER_MANUAL)
        if outcome.queued:
            await self.notifier.notify(OUTBOX_CHANNEL)
        return outcome

    async def preview(self, job: Job, period: datetime) -> list[Scheduled]:
        """What a run of `period` would send; the transaction is rolled back, nothing is kept."""
        period = period.astimezone(self.tz)
        async with self.sessions() as session:
            try:
                return await job.fn(self._context(session, job, period, self.clock.now()))
            finally:
                await session.rollback()

    async def _run_periods(self, job: Job, now: datetime, *, force: bool) -> int:
        since = None if force else self._settled_until.get(job.name)
        if since is None:
            since = await self._start_point(job, now)
        periods = job.fire_times(since, now, self.tz)
        if job.schedule.is_interval:
            periods = periods[-1:]  # a poll looks back on its own; only its current slot runs
        if not periods:
            self._settled_until[job.name] = now
            return 0
        async with self.sessions.begin() as session:
            recorded = await job_runs.recorded_periods(
                session, job=job.name, since=periods[0], until=now
            )
        due = [p for p in periods if p.astimezone(UTC) not in recorded]
        late = [p for p in due if p < now - job.grace and not job.schedule.is_interval]
        if late:
            async with self.sessions.begin() as session:
                await job_runs.skip(
                    session, job=job.name, periods=late, worker=self.worker_id, now=now
                )
            log.warning(
                "job %s: %d period(s) missed beyond the %s grace window were skipped (%s)",
                job.name,
                len(late),
                job.grace,
                ", ".join(period_key(p) for p in late),
            )
        queued = 0
        unsettled: datetime | None = None
        for period in due:
            if period in late:
                continue
            trigger = TRIGGER_CATCH_UP if now - period > ON_TIME else TRIGGER_SCHEDULE
            outcome = await self._claim_and_run(job, period, now, trigger)
            if outcome is None:
                unsettled = unsettled or period
                continue
            queued += outcome.queued
        self._settled_until[job.name] = now if unsettled is None else unsettled - _TINY
        return queued

    async def _start_point(self, job: Job, now: datetime) -> datetime:
        """Where a worker with no memory of a job looks back from: its last record, bounded."""
        if job.schedule.is_interval:
            return now - job.schedule.interval
        async with self.sessions() as session:
            latest = await job_runs.latest_period(session, job=job.name)
        if latest is None:
            return now - job.grace  # nothing recorded yet: nothing to call skipped
        return max(latest, now - max(SKIP_HORIZON, job.grace))

    async def _claim_and_run(
        self, job: Job, period: datetime, now: datetime, trigger: str
    ) -> RunOutcome | None:
        """Claim and run one period; None when another worker holds it in Redis right now."""
        fast_key = f"wecrm:job:{job.name}:{int(period.timestamp())}"
        if self.cache is not None and not await self.cache.set_nx(
            fast_key, self.worker_id, CLAIM_LEASE.total_seconds()
        ):
            return None  # settled later: by the database once that claim's lease is over
        try:
            async with self.sessions.begin() as session:
                if not await job_runs.claim(
                    session,
                    job=job.name,
                    period=period,
                    worker=self.worker_id,
                    now=now,
                    trigger=trigger,
                ):
                    return RunOutcome(job.name, period, trigger, ran=False)
                outcome = await self._run_claimed(session, job, period, now, trigger)
                if job.schedule.is_interval:
                    await job_runs.prune(session, job=job.name, before=now - POLL_HISTORY)
        except Exception:
            if self.cache is not None:
                await self.cache.delete(fast_key)  # let the next tick, here or elsewhere, retry
            raise
        if outcome.ran:
            metrics.job_ran(job.name, trigger)
        if outcome.items or not job.schedule.is_interval:  # an idle poll is not news
            log.info(
                "job %s %s (%s): %d item(s) for %d recipient(s), %d message(s) queued",
                job.name,
                period_key(period),
                trigger,
                outcome.items,
                outcome.recipients,
                outcome.queued,
            )
        return outcome

    async def _run_claimed(
        self, session: AsyncSession, job: Job, period: datetime, now: datetime, trigger: str
    ) -> RunOutcome:
        items = await job.fn(self._context(session, job, period, now))
        queued = 0
        for item in items:
            queued += await enqueue_replies(
                session,
                replies=[item.reply],
                source_key=source_key(job, period, item),
                clock=self.clock,
            )
        recipients = len(recipients_of(items))
        await job_runs.finish(
            session,
            job=job.name,
            period=period,
            now=self.clock.now(),
            items=len(items),
            recipients=recipients,
            queued=queued,
        )
        return RunOutcome(job.name, period, trigger, True, len(items), recipients, queued)

    def _context(
        self, session: AsyncSession, job: Job, period: datetime, now: datetime
    ) -> JobContext:
        return JobContext(
            session=session,
            clock=self.clock,
            tz=self.tz,
            job=job.name,
            period=period.astimezone(self.tz),
            now=now,
        )
