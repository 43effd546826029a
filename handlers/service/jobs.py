"""Scheduled SLA notices: at 80 % of a target the assignee is warned; at breach the assignee
and the service department's leader are told. Keys make each once per ticket, target,
threshold and deadline, with any number of workers and re-runs (the outbox is unique on them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import templates
from crm_store import sla, tickets
from handlers.common.format import format_when
from handlers.kit.jobs import JobContext, Schedule, Scheduled
from handlers.kit.replies import MarkdownReply
from handlers.service.steps import TARGET_TEXT
from handlers.service.tickets import router

NOTICE_TEMPLATE = "service/sla_notice.md.j2"
CATCH_UP = timedelta(hours=24)  # a scheduler that was down still sends what fell due meanwhile


async def sla_notices(session: AsyncSession, *, now: datetime, tz: ZoneInfo) -> list[Scheduled]:
    """Warnings and breaches due now, in four queries whatever the number of open tickets."""
    due = await sla.due_notices(session, now=now, since=now - CATCH_UP)
    if not due:
        return []
    rules = await tickets.get_rules(session)
    assignees = {n.assignee_id for n in due if n.assignee_id}
    leaders = await tickets.service_leaders(
        session, userids=assignees, department_id=rules.department_id
    )
    # One template lookup for the pass: render() would stat the file for each of thousands.
    notice_template = templates.environment(markdown=True).get_template(NOTICE_TEMPLATE)
    scheduled: list[Scheduled] = []
    for notice in due:
        recipients: list[str] = [notice.assignee_id] if notice.assignee_id else []
        if notice.kind == "breach" or not recipients:
            recipients += [u for u in leaders.get(notice.assignee_id, []) if u not in recipients]
        if not recipients:
            continue
        content = notice_template.render(
            kind=notice.kind,
            number=notice.number,
            priority=notice.priority,
            target=TARGET_TEXT.get(notice.target, notice.target),
            due=format_when(notice.due_at, now=now, tz=tz),
            customer=notice.customer_name or "—",
            content=notice.content[:60],
        ).strip()
        due_ts = int(notice.due_at.timestamp())
        key = f"sla:{notice.ticket_id}:{notice.target}:{notice.kind}:{due_ts}"
        reply = MarkdownReply(recipients[0], content, extra_to=tuple(recipients[1:]))
        scheduled.append(Scheduled(key=key, reply=reply))
    return scheduled


@router.job("service.sla", Schedule.every(timedelta(seconds=30)))
async def send_sla_notices(ctx: JobContext) -> list[Scheduled]:
    """A poll: each notice carries its own ticket-target-threshold key, so slots may overlap."""
    return await sla_notices(ctx.session, now=ctx.now, tz=ctx.tz)
