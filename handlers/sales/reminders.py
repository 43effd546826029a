"""The reminders job: a card when a next step falls due, pushed once per task and due time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import tasks
from handlers.common.format import format_when
from handlers.kit.jobs import JobContext, Schedule, Scheduled
from handlers.kit.replies import Card, CardButton, CardReply
from handlers.kit.routing import Router
from handlers.sales.todo import DoneKey

router = Router("sales.reminders", audience="sales", title="待办")  # jobs only
CATCH_UP = timedelta(hours=24)  # a worker that was down still sends what fell due meanwhile

__all__ = ["CATCH_UP", "Scheduled", "due_reminders", "router", "send_due_reminders"]


async def due_reminders(session: AsyncSession, *, now: datetime, tz: ZoneInfo) -> list[Scheduled]:
    """Reminders for tasks that fell due in the catch-up window and are still open."""
    due = await tasks.due_reminders(session, now=now, since=now - CATCH_UP)
    scheduled: list[Scheduled] = []
    for item in due:
        lines = [("事项", item.title)]
        if item.customer_name:
            lines.append(("客户", item.customer_name))
        lines.append(("时间", format_when(item.due_at, now=now, tz=tz)))
        card = Card(
            title="跟进提醒",
            description="做完了点“完成”；要改时间请回复：待办，再按序号推迟",
            task_id=f"remind-{item.task_id}-{int(item.due_at.timestamp())}",
            buttons=(CardButton(text="完成", key=DoneKey(item.task_id).pack(), style=4),),
            lines=tuple(lines),
        )
        key = f"reminder:{item.task_id}:{int(item.due_at.timestamp())}"
        scheduled.append(Scheduled(key=key, reply=CardReply(item.owner_id, card)))
    return scheduled


@router.job("reminders", Schedule.every(timedelta(seconds=30)))
async def send_due_reminders(ctx: JobContext) -> list[Scheduled]:
    """A poll: each reminder carries its own task-and-due-time key, so slots may overlap."""
    return await due_reminders(ctx.session, now=ctx.now, tz=ctx.tz)
