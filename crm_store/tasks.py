"""To-dos and reminders: a person's open tasks, done and postponed from chat, pushed when due.

Tasks are personal, so the writes here take the owner's userid rather than a Scope: only the
owner completes or moves a task. Every write leaves an audit row and keeps the customer's
next follow-up time in step with its open tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import RowMapping, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit
from crm_store.dialect import insert_ignore
from crm_store.models.audit import AuditEntry
from crm_store.models.customer import Customer
from crm_store.models.org import Staff
from crm_store.models.sales import Followup, Opportunity, OpportunityState, Task, TaskSource
from crm_store.scope import Scope

# Tasks that plan the next contact with a customer; ticket and system tasks are not follow-ups.
FOLLOWUP_SOURCES = (TaskSource.FOLLOWUP.value, TaskSource.MANUAL.value)
_TASK_FIELDS = ("owner_id", "customer_id", "title", "due_at", "done_at", "source")
_TITLE_MAX = 200


class TaskOutcome(StrEnum):
    DONE = "done"
    MOVED = "moved"
    ALREADY_DONE = "already_done"
    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"


@dataclass(frozen=True)
class TodoItem:
    task_id: int
    title: str
    due_at: datetime | None
    customer_id: int | None
    customer_name: str | None
    overdue: bool


@dataclass(frozen=True)
class TaskChange:
    outcome: TaskOutcome
    task: TodoItem | None


@dataclass(frozen=True)
class Reminder:
    task_id: int
    owner_id: str
    title: str
    due_at: datetime
    customer_name: str | None


@dataclass(frozen=True)
class CustomerLine:
    id: int
    name: str
    next_followup_at: datetime | None
    last_followup_at: datetime | None
    stage: str | None
    overdue: bool = False  # the next follow-up is already past


# Customer follow-up times -----------------------------------------------------------------


async def lock_customer(session: AsyncSession, customer_id: int) -> None:
    """Serialise writers of one customer's follow-up times (PostgreSQL; SQLite has one writer).

    Taken before reading the tasks it summarises, so under READ COMMITTED the next writer
    sees this one's committed tasks and no sooner follow-up is lost to a race.
    """
    await session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())


async def next_followup_due(session: AsyncSession, customer_id: int) -> datetime | None:
    """The earliest open follow-up task due for the customer, overdue ones included."""
    return await session.scalar(
        select(func.min(Task.due_at)).where(
            Task.customer_id == customer_id,
            Task.done_at.is_(None),
            Task.due_at.is_not(None),
            Task.source.in_(FOLLOWUP_SOURCES),
        )
    )


async def refresh_followup_times(
    session: AsyncSession, customer_id: int, *, last: bool = False
) -> tuple[datetime | None, datetime | None]:
    """Recompute next_followup_at (and last_followup_at when asked) from the rows themselves.

    Returns (last_followup_at, next_followup_at) as stored.
    """
    await lock_customer(session, customer_id)
    values: dict[str, datetime | None] = {
        "next_followup_at": await next_followup_due(session, customer_id)
    }
    if last:
        values["last_followup_at"] = await session.scalar(
            select(func.max(Followup.created_at)).where(Followup.customer_id == customer_id)
        )
    await session.execute(update(Customer).where(Customer.id == customer_id).values(**values))
    stored = (
        await session.execute(
            select(Customer.last_followup_at, Customer.next_followup_at).where(
                Customer.id == customer_id
            )
        )
    ).one()
    return stored.last_followup_at, stored.next_followup_at


# Reads ----------------------------------------------------------------------------------------


_OPEN_TASK_COLUMNS = (
    Task.id,
    Task.title,
    Task.due_at,
    Task.customer_id,
    Customer.name.label("customer_name"),
)


def _todo(row: RowMapping, now: datetime) -> TodoItem:
    due_at: datetime | None = row["due_at"]
    return TodoItem(
        task_id=row["id"],
        title=row["title"],
        due_at=due_at,
        customer_id=row["customer_id"],
        customer_name=row["customer_name"],
        overdue=due_at is not None and due_at < now,
    )


def end_of_day(now: datetime, tz: ZoneInfo) -> datetime:
    """The next local midnight after `now` in the company's zone, as an aware datetime."""
    local_day = now.astimezone(tz).date()
    return datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=tz)


async def todos(
    session: AsyncSession, *, owner_id: str, now: datetime, tz: ZoneInfo, limit: int = 20
) -> list[TodoItem]:
    """Overdue first, then the rest of today (company day), then undated: the 待办 list order."""
    query = (
        select(*_OPEN_TASK_COLUMNS)
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .where(
            Task.owner_id == owner_id,
            Task.done_at.is_(None),
            or_(Task.due_at < end_of_day(now, tz), Task.due_at.is_(None)),
        )
        .order_by(Task.due_at.is_(None), Task.due_at, Task.created_at, Task.id)
        .limit(limit)
    )
    return [_todo(row, now) for row in (await session.execute(query)).mappings()]


async def _todo_item(session: AsyncSession, task_id: int, now: datetime) -> TodoItem | None:
    query = (
        select(*_OPEN_TASK_COLUMNS)
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .where(Task.id == task_id)
    )
    row = (await session.execute(query)).mappings().first()
    return None if row is None else _todo(row, now)


async def due_reminders(
    session: AsyncSession, *, now: datetime, since: datetime, limit: int = 500
) -> list[Reminder]:
    """Open tasks that fell due in (since, now], for active owners only (nobody else can read).

    The scheduler keys each push on task id plus due_at, so overlapping windows or a postponed
    task never push the same reminder twice, and a postponed one is pushed again when due.
    """
    query = (
        select(
            Task.id, Task.owner_id, Task.title, Task.due_at, Customer.name.label("customer_name")
        )
        .join(Staff, Staff.userid == Task.owner_id)
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .where(
            Task.done_at.is_(None),
            Task.due_at > since,
            Task.due_at <= now,
            Staff.active.is_(True),
        )
        .order_by(Task.due_at, Task.id)
        .limit(limit)
    )
    return [
        Reminder(
            task_id=row.id,
            owner_id=row.owner_id,
            title=row.title,
            due_at=row.due_at,
            customer_name=row.customer_name,
        )
        for row in await session.execute(query)
    ]


async def my_customers(
    session: AsyncSession, *, scope: Scope, owner_id: str, now: datetime, limit: int = 20
) -> list[CustomerLine]:
    """One owner's customers, soonest next follow-up first and undated last (我的客户)."""
    newest_stage = (
        select(Opportunity.stage)
        .where(
            Opportunity.customer_id == Customer.id,
            Opportunity.state == OpportunityState.OPEN.value,
            scope.opportunities(),
        )
        .order_by(Opportunity.created_at.desc(), Opportunity.id.desc())
        .limit(1)
        .correlate(Customer)
        .scalar_subquery()
    )
    query = (
        select(
            Customer.id,
            Customer.name,
            Customer.next_followup_at,
            Customer.last_followup_at,
            newest_stage.label("stage"),
        )
        .where(Customer.owner_id == owner_id, Customer.in_pool.is_(False), scope.customers())
        .order_by(Customer.next_followup_at.is_(None), Customer.next_followup_at, Customer.id)
        .limit(limit)
    )
    return [
        CustomerLine(
            id=row.id,
            name=row.name,
            next_followup_at=row.next_followup_at,
            last_followup_at=row.last_followup_at,
            stage=row.stage,
            overdue=row.next_followup_at is not None and row.next_followup_at < now,
        )
        for row in await session.execute(query)
    ]


# Writes ---------------------------------------------------------------------------------------


async def _audited(session: AsyncSession, *, action: str, task_id: int, source_key: str) -> bool:
    """Whether this message already made this change: a retry answers as the first call did."""
    found = await session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.entity == "task",
            AuditEntry.entity_id == str(task_id),
            AuditEntry.action == action,
            AuditEntry.source_key == source_key,
        )
        .limit(1)
    )
    return found is not None


async def _owned_task(
    session: AsyncSession, *, owner_id: str, task_id: int
) -> tuple[Task | None, TaskOutcome | None]:
    task = await session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None:
        return None, TaskOutcome.NOT_FOUND
    if task.owner_id != owner_id:
        return None, TaskOutcome.NOT_YOURS
    return task, None


async def due_of(session: AsyncSession, *, owner_id: str, task_id: int) -> datetime | None:
    """When the owner's open task is due; None for another's, a done or a missing task."""
    return await session.scalar(
        select(Task.due_at).where(
            Task.id == task_id, Task.owner_id == owner_id, Task.done_at.is_(None)
        )
    )


async def complete_task(
    session: AsyncSession, *, owner_id: str, task_id: int, now: datetime, source_key: str
) -> TaskChange:
    """Mark the owner's task done (完成); a done task or a retried message changes nothing."""
    task, refused = await _owned_task(session, owner_id=owner_id, task_id=task_id)
    if task is None:
        return TaskChange(refused or TaskOutcome.NOT_FOUND, None)
    if task.done_at is not None:
        retried = await _audited(
            session, action="task.done", task_id=task_id, source_key=source_key
        )
        outcome = TaskOutcome.DONE if retried else TaskOutcome.ALREADY_DONE
        return TaskChange(outcome, await _todo_item(session, task_id, now))
    before = audit.snapshot(task, _TASK_FIELDS)
    task.done_at = now
    await _record_change(
        session,
        task,
        before=before,
        action="task.done",
        owner_id=owner_id,
        source_key=source_key,
        now=now,
    )
    return TaskChange(TaskOutcome.DONE, await _todo_item(session, task_id, now))


async def _record_change(
    session: AsyncSession,
    task: Task,
    *,
    before: dict[str, Any],
    action: str,
    owner_id: str,
    source_key: str,
    now: datetime,
) -> None:
    """After a task changed: its customer's next follow-up time, then the audit row."""
    await session.flush()
    if task.customer_id is not None:
        await refresh_followup_times(session, task.customer_id)
    await audit.record(
        session,
        actor_id=owner_id,
        action=action,
        entity="task",
        entity_id=task.id,
        before=before,
        after=audit.snapshot(task, _TASK_FIELDS),
        source_key=source_key,
        now=now,
    )


async def postpone_task(
    session: AsyncSession,
    *,
    owner_id: str,
    task_id: int,
    due_at: datetime,
    now: datetime,
    source_key: str,
) -> TaskChange:
    """Move the owner's open task to a new time (推迟); done tasks stay done."""
    if due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    task, refused = await _owned_task(session, owner_id=owner_id, task_id=task_id)
    if task is None:
        return TaskChange(refused or TaskOutcome.NOT_FOUND, None)
    if await _audited(session, action="task.postpone", task_id=task_id, source_key=source_key):
        return TaskChange(TaskOutcome.MOVED, await _todo_item(session, task_id, now))
    if task.done_at is not None:
        return TaskChange(TaskOutcome.ALREADY_DONE, await _todo_item(session, task_id, now))
    before = audit.snapshot(task, _TASK_FIELDS)
    task.due_at = due_at
    await _record_change(
        session,
        task,
        before=before,
        action="task.postpone",
        owner_id=owner_id,
        source_key=source_key,
        now=now,
    )
    return TaskChange(TaskOutcome.MOVED, await _todo_item(session, task_id, now))


async def create_task(
    session: AsyncSession,
    *,
    owner_id: str,
    title: str,
    due_at: datetime | None,
    customer_id: int | None,
    source: str,
    source_key: str,
    now: datetime,
) -> tuple[int, bool]:
    """Add a to-do; the same source_key again returns (existing id, False) and writes nothing."""
    existing = await session.scalar(select(Task.id).where(Task.source_key == source_key))
    if existing is not None:
        return existing, False
    title = title.strip()
    if not title:
        raise ValueError("a task needs a title")
    if due_at is not None and due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    values = {
        "owner_id": owner_id,
        "customer_id": customer_id,
        "title": title[:_TITLE_MAX],
        "due_at": due_at,
        "source": TaskSource(source).value,
        "source_key": source_key,
        "created_at": now,
    }
    task_id = await session.scalar(
        insert_ignore(session, Task.__table__, ["source_key"]).values(values).returning(Task.id)
    )
    if task_id is None:  # a concurrent retry of the same message won the insert
        existing = await session.scalar(select(Task.id).where(Task.source_key == source_key))
        assert existing is not None
        return existing, False
    if customer_id is not None and due_at is not None:
        await refresh_followup_times(session, customer_id)
    await audit.record(
        session,
        actor_id=owner_id,
        action="task.create",
        entity="task",
        entity_id=task_id,
        before=None,
        after={k: v for k, v in values.items() if k not in ("source_key", "created_at")},
        source_key=source_key,
        now=now,
    )
    return task_id, True
