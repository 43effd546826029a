"""Follow-ups: what a rep did with a customer, the next step as a task, and a short undo.

Each follow-up is unique on its message key, so a WeCom retry logs nothing twice; its task
carries the same key plus ":task", which is also how undo finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit, config_data
from crm_store.customers import NotAllowed, UndoResult
from crm_store.dialect import insert_ignore
from crm_store.models.audit import AuditEntry
from crm_store.models.customer import Customer
from crm_store.models.sales import Followup, Task, TaskSource
from crm_store.scope import Scope
from crm_store.tasks import lock_customer, refresh_followup_times

TASK_KEY_SUFFIX = ":task"
_KEY_MAX = 128  # the width of every source_key column
_TITLE_FROM_CONTENT = 50
_TITLE_MAX = 200
_FOLLOWUP_FIELDS = (
    "customer_id",
    "author_id",
    "kind",
    "content",
    "next_step",
    "next_step_at",
    "created_at",
)
_TASK_FIELDS = ("owner_id", "customer_id", "title", "due_at", "done_at", "source")


@dataclass(frozen=True)
class LoggedFollowup:
    followup_id: int
    task_id: int | None
    customer_id: int
    created: bool  # False: this message was logged before (a WeCom retry), nothing changed


def task_key(source_key: str) -> str:
    """The key of the task a follow-up creates: one message, two rows, two unique keys."""
    return source_key + TASK_KEY_SUFFIX


async def _logged(session: AsyncSession, source_key: str) -> LoggedFollowup | None:
    row = (
        await session.execute(
            select(Followup.id, Followup.customer_id).where(Followup.source_key == source_key)
        )
    ).first()
    if row is None:
        return None
    task_id = await session.scalar(select(Task.id).where(Task.source_key == task_key(source_key)))
    return LoggedFollowup(
        followup_id=row.id, task_id=task_id, customer_id=row.customer_id, created=False
    )


async def log_followup(
    session: AsyncSession,
    *,
    scope: Scope,
    customer_id: int,
    kind: str,
    content: str,
    next_step: str | None,
    next_step_at: datetime | None,
    source_key: str,
    now: datetime,
) -> LoggedFollowup:
    """Record a follow-up on a customer the actor may change, with a task for the next step.

    `kind` is a follow-up kind's code, label or synonym (config_data); unknown ones raise
    ValueError. A hidden or missing customer raises NotAllowed, as one the actor may only read.
    """
    previous = await _logged(session, source_key)
    if previous is not None:
        return previous
    if len(task_key(source_key)) > _KEY_MAX:
        raise ValueError(f"source_key longer than {_KEY_MAX - len(TASK_KEY_SUFFIX)} characters")
    content = content.strip()
    if not content:
        raise ValueError("a follow-up needs content")
    if next_step_at is not None and next_step_at.tzinfo is None:
        raise ValueError("next_step_at must be timezone-aware")
    found = config_data.resolve_followup_kind(await config_data.get_followup_kinds(session), kind)
    if found is None:
        raise ValueError(f"unknown follow-up kind {kind!r}")
    writable = await session.scalar(
        select(Customer.id)
        .where(Customer.id == customer_id, scope.customer_writable())
        .with_for_update(of=Customer)
    )
    if writable is None:
        raise NotAllowed(f"{scope.actor.userid} may not log follow-ups on customer {customer_id}")
    actor_id = scope.actor.userid
    next_step = (next_step or "").strip() or None
    followup_values = {
        "customer_id": customer_id,
        "author_id": actor_id,
        "kind": found.code,
        "content": content,
        "next_step": next_step,
        "next_step_at": next_step_at,
        "source_key": source_key,
        "created_at": now,
    }
    followup_id = await session.scalar(
        insert_ignore(session, Followup.__table__, ["source_key"])
        .values(followup_values)
        .returning(Followup.id)
    )
    if followup_id is None:  # a concurrent run of the same message got there first
        raced = await _logged(session, source_key)
        assert raced is not None
        return raced

    task_id: int | None = None
    task_values: dict[str, Any] | None = None
    if next_step_at is not None:
        task_values = {
            "owner_id": actor_id,
            "customer_id": customer_id,
            "title": (next_step or content[:_TITLE_FROM_CONTENT])[:_TITLE_MAX],
            "due_at": next_step_at,
            "source": TaskSource.FOLLOWUP.value,
            "source_key": task_key(source_key),
            "created_at": now,
        }
        task_id = await session.scalar(
            insert_ignore(session, Task.__table__, ["source_key"])
            .values(task_values)
            .returning(Task.id)
        )
    before = (
        await session.execute(
            select(Customer.last_followup_at, Customer.next_followup_at).where(
                Customer.id == customer_id
            )
        )
    ).one()
    await session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(last_followup_at=now, updated_at=now)
    )
    _, next_at = await refresh_followup_times(session, customer_id)
    await audit.record(
        session,
        actor_id=actor_id,
        action="followup.create",
        entity="followup",
        entity_id=followup_id,
        before={
            "customer.last_followup_at": before.last_followup_at,
            "customer.next_followup_at": before.next_followup_at,
        },
        after={
            **{k: v for k, v in followup_values.items() if k != "source_key"},
            "task_id": task_id,
            "task": None if task_values is None else {"title": task_values["title"]},
            "customer.last_followup_at": now,
            "customer.next_followup_at": next_at,
        },
        source_key=source_key,
        now=now,
    )
    return LoggedFollowup(
        followup_id=followup_id, task_id=task_id, customer_id=customer_id, created=True
    )


async def _undo_recorded(session: AsyncSession, followup_id: int) -> AuditEntry | None:
    return await session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.entity == "followup",
            AuditEntry.entity_id == str(followup_id),
            AuditEntry.action == "followup.undo",
        )
        .order_by(AuditEntry.id)
        .limit(1)
    )


async def undo_followup(
    session: AsyncSession,
    *,
    actor_id: str,
    followup_id: int,
    now: datetime,
    window: timedelta = timedelta(minutes=10),
    source_key: str,
) -> UndoResult:
    """Take back one's own follow-up (and its task) within the undo window (撤销).

    A retry of the same undo message answers UNDONE again; any later attempt ALREADY_UNDONE.
    """
    followup = await session.scalar(
        select(Followup).where(Followup.id == followup_id).with_for_update()
    )
    if followup is None:
        undone = await _undo_recorded(session, followup_id)
        if undone is None:
            return UndoResult.NOT_FOUND
        if (undone.before or {}).get("author_id") != actor_id:
            return UndoResult.NOT_YOURS
        if undone.source_key == source_key:
            return UndoResult.UNDONE
        return UndoResult.ALREADY_UNDONE
    if followup.author_id != actor_id:
        return UndoResult.NOT_YOURS
    if now - followup.created_at > window:
        return UndoResult.TOO_LATE

    customer_id = followup.customer_id
    task: Task | None = None
    if followup.source_key is not None:
        # Task before customer, the order complete_task and postpone_task lock them in.
        task = await session.scalar(
            select(Task).where(Task.source_key == task_key(followup.source_key)).with_for_update()
        )
    await lock_customer(session, customer_id)
    before: dict[str, Any] = {
        "id": followup.id,
        **audit.snapshot(followup, _FOLLOWUP_FIELDS),
        "source_key": followup.source_key,
        "task": None if task is None else {"id": task.id, **audit.snapshot(task, _TASK_FIELDS)},
    }
    if task is not None:
        await session.execute(delete(Task).where(Task.id == task.id))
    await session.execute(delete(Followup).where(Followup.id == followup_id))
    last_at, next_at = await refresh_followup_times(session, customer_id, last=True)
    await audit.record(
        session,
        actor_id=actor_id,
        action="followup.undo",
        entity="followup",
        entity_id=followup_id,
        before=before,
        after={
            "customer.last_followup_at": last_at,
            "customer.next_followup_at": next_at,
        },
        source_key=source_key,
        now=now,
    )
    return UndoResult.UNDONE


async def recent_followups(
    session: AsyncSession, *, scope: Scope, customer_id: int, limit: int = 3
) -> list[Followup]:
    """The newest follow-ups on a customer card, only those the actor's scope lets them read."""
    rows = await session.scalars(
        select(Followup)
        .where(Followup.customer_id == customer_id, scope.followups())
        .order_by(Followup.created_at.desc(), Followup.id.desc())
        .limit(limit)
    )
    return list(rows)
