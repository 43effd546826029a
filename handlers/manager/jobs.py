"""Pushed on schedule: each manager's digest at 18:30 on working days and on Monday at 09:00
for the week before, and each rep's morning at 09:00 on working days.

Scope is loaded again for every recipient at send time, so someone who moved departments gets
their new subtree. An empty digest or morning is not sent. The scheduler keys every message by
job, period and recipient, so a re-run or a second worker reaches nobody twice.
"""

from __future__ import annotations

from datetime import date, timedelta

from crm_store import kpi
from crm_store.scope import Scope, load_actor
from handlers.common.format import format_when
from handlers.kit.jobs import JobContext, Schedule, Scheduled
from handlers.kit.replies import MarkdownReply, card_from_template, card_reply
from handlers.manager import digest as digests
from handlers.manager.commands import router
from handlers.manager.digest import Period
from handlers.sales.todo import DoneKey

MORNING_BUTTONS = 6  # as many as 待办's card offers


async def pushed_digests(ctx: JobContext, period: Period, day: date) -> list[Scheduled]:
    """One digest per manager or leader, over their subtree as it is now; empty ones skipped."""
    scheduled: list[Scheduled] = []
    for userid in await kpi.digest_recipients(ctx.session):
        actor = await load_actor(ctx.session, userid)
        if actor is None:
            continue
        scope = Scope(actor, now=ctx.now)
        found = await digests.build(ctx.session, scope, period=period, day=day, tz=ctx.tz)
        parts = digests.sections(found, period=period, tz=ctx.tz)
        if parts:
            scheduled.append(Scheduled("digest", MarkdownReply(userid, digests.markdown(parts))))
    return scheduled


@router.job("manager.daily", Schedule.daily("18:30"), workdays_only=True)
async def push_daily(ctx: JobContext) -> list[Scheduled]:
    return await pushed_digests(ctx, Period.DAY, ctx.period.date())


@router.job("manager.weekly", Schedule.weekly(0, "09:00"))
async def push_weekly(ctx: JobContext) -> list[Scheduled]:
    """Monday morning: the week that just ended (Monday to Sunday)."""
    return await pushed_digests(ctx, Period.WEEK, ctx.period.date() - timedelta(days=7))


@router.job("rep.morning", Schedule.daily("09:00"), workdays_only=True)
async def push_mornings(ctx: JobContext) -> list[Scheduled]:
    """Each rep's open tasks due by tonight and customers gone quiet; nothing to say: nothing."""
    scheduled: list[Scheduled] = []
    for morning in await kpi.mornings(ctx.session, now=ctx.now, tz=ctx.tz):
        userid = morning.userid
        content = ctx.render(
            "manager/morning",
            tasks=[
                {
                    "title": t.title,
                    "customer": t.customer_name or "",
                    "overdue": t.overdue,
                    "due": format_when(t.due_at, now=ctx.now, tz=ctx.tz) if t.due_at else "",
                }
                for t in morning.tasks
            ],
            stale=[
                {
                    "name": c.name,
                    "days": (ctx.now - c.last_followup_at).days if c.last_followup_at else None,
                }
                for c in morning.stale
            ],
            more=morning.stale_total - len(morning.stale),
            stale_days=kpi.STALE_DAYS,
        )
        scheduled.append(Scheduled("morning", MarkdownReply(userid, content)))
        buttons = morning.tasks[:MORNING_BUTTONS]
        if buttons:
            card = card_from_template(
                "manager/morning_card",
                task_id=f"morning-{ctx.period:%Y%m%d}-{userid}"[:128],
                keys=tuple((DoneKey(t.task_id).pack(), 4) for t in buttons),
                count=len(buttons),
            )
            scheduled.append(Scheduled("morning-card", card_reply(userid, card)))
    return scheduled
