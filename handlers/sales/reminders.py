"""Scheduled messages: a reminder when a next step falls due, pushed once per due time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import tasks
from handlers.common.format import format_when
from handlers.kit.replies import Card, CardButton, CardReply, Reply
from handlers.sales.todo import DoneKey

CATCH_UP = timedelta(hours=24)  # a worker that was down still sends what fell due meanwhile


@dataclass(frozen=True)
class Scheduled:
    """A reply and the key that makes it once-only across workers and re-runs."""

    key: str
    reply: Reply


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
