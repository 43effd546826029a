"""A demo audience for the job tests: a morning note on working days, an evening cron, a
Monday summary, declared on their own router exactly as an audience declares its jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from crm_store.models import Task
from handlers.kit.jobs import Job, JobContext, Schedule, Scheduled
from handlers.kit.replies import TextReply
from handlers.kit.routing import Router

TEAM = ("zhangsan", "lisi")


@dataclass
class Calls:
    """What each run saw: (job, period key, local time of the run)."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def of(self, job: str) -> list[str]:
        return [period for name, period, _ in self.seen if name == job]


def demo_jobs(calls: Calls) -> list[Job]:
    router = Router("tests.demo", audience="test", title="测试")

    def note(ctx: JobContext, text: str) -> list[Scheduled]:
        calls.seen.append((ctx.job, ctx.period_key, f"{ctx.local_now():%m-%d %H:%M}"))
        return [Scheduled("note", TextReply(user, f"{text} {ctx.period_key}")) for user in TEAM]

    @router.job("demo.morning", Schedule.daily("09:00"), workdays_only=True)
    async def morning(ctx: JobContext) -> list[Scheduled]:
        return note(ctx, "早上好")

    @router.job("demo.evening", Schedule.cron("30 18 * * 1-5"), workdays_only=True)
    async def evening(ctx: JobContext) -> list[Scheduled]:
        return note(ctx, "下班前")

    @router.job("demo.monday", Schedule.weekly(0, "10:00"), grace=timedelta(hours=1))
    async def monday(ctx: JobContext) -> list[Scheduled]:
        # Rendered from a real template, as audiences do.
        calls.seen.append((ctx.job, ctx.period_key, f"{ctx.local_now():%m-%d %H:%M}"))
        return [Scheduled("todo", ctx.reply("zhangsan", "sales/todos_empty"))]

    return router.jobs


def writing_job(calls: Calls) -> Job:
    """A job that writes as well as replies: a dry run must leave no trace of either."""
    router = Router("tests.writer", audience="test", title="测试")

    @router.job("demo.writer", Schedule.daily("09:00"))
    async def writer(ctx: JobContext) -> list[Scheduled]:
        ctx.session.add(Task(owner_id="zhangsan", title="由任务创建", created_at=ctx.now))
        await ctx.session.flush()
        count = len((await ctx.session.scalars(select(Task))).all())
        calls.seen.append((ctx.job, ctx.period_key, str(count)))
        return [Scheduled("w", TextReply("zhangsan", f"任务数 {count}"))]

    return router.jobs[0]
