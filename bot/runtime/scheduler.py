"""The scheduler loop: jobs declared as data, each producing keyed messages for the outbox.

Every worker may run every job: the outbox's unique key makes each message once-only, and
each job looks back over a catch-up window, so a worker that was down at 18:00 still sends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cache import Notifier
from bot.runtime.channels import OUTBOX_CHANNEL
from bot.runtime.outgoing import enqueue_replies
from crm_store.clock import Clock
from handlers.sales import reminders
from handlers.sales.reminders import Scheduled

log = logging.getLogger(__name__)

JobFn = Callable[[AsyncSession, datetime, ZoneInfo], Awaitable[list[Scheduled]]]


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    fn: JobFn


async def _reminders(session: AsyncSession, now: datetime, tz: ZoneInfo) -> list[Scheduled]:
    return await reminders.due_reminders(session, now=now, tz=tz)


JOBS: tuple[Job, ...] = (Job("reminders", timedelta(seconds=30), _reminders),)


class Scheduler:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        tz: ZoneInfo,
        notifier: Notifier,
        jobs: tuple[Job, ...] = JOBS,
        tick_seconds: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.tz = tz
        self.notifier = notifier
        self.jobs = jobs
        self.tick_seconds = tick_seconds
        self._next_run: dict[str, datetime] = {}

    async def run_due(self, *, force: bool = False) -> dict[str, int]:
        """Run every job whose time has come; returns how many new messages each queued."""
        now = self.clock.now()
        queued: dict[str, int] = {}
        for job in self.jobs:
            if not force and self._next_run.get(job.name, now) > now:
                continue
            self._next_run[job.name] = now + job.every
            async with self.sessions.begin() as session:
                items = await job.fn(session, now, self.tz)
                count = 0
                for item in items:
                    count += await enqueue_replies(
                        session, replies=[item.reply], source_key=item.key, clock=self.clock
                    )
            queued[job.name] = count
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
